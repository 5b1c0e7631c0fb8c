"""The compiled part of the package: the order book's levels in C (mdplatform/book/_native.c). Everything else is in
pyproject.toml; `pip install .` / `uv pip install -e .` build it (a C compiler and the Python headers are needed)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "mdplatform.book._native",
            ["mdplatform/book/_native.c"],
            # exact float semantics: no fused multiply-add, whatever CFLAGS say (the sums must equal numpy's)
            extra_compile_args=["-O2", "-ffp-contract=off", "-fno-fast-math"],
        )
    ]
)
