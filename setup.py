"""The compiled parts of the package. Everything else is in pyproject.toml; `pip install .` / `uv pip install -e .`
build them (a C compiler and the Python headers are needed):

- the order book's levels in C (mdplatform/book/_native.c);
- the collector's compiled receive path (mdplatform/collector/_batcher.pyx), a picows listener in Cython: built
  when Cython and picows are importable at build time (pyproject's [build-system] asks for both). Without it the
  collector receives in Python (same rows, slower); it is compiled against picows' own declarations, so it is
  used only with the picows version it was built against (mdplatform/collector/_connection.py checks).
"""

from setuptools import Extension, setup


def _receive_path() -> list[Extension]:
    try:
        from importlib.metadata import version

        from Cython.Build import cythonize

        picows = version("picows")
    except ImportError:  # (PackageNotFoundError is one) no Cython or no picows here: the pure-Python path
        return []
    ext = Extension(
        "mdplatform.collector._batcher",
        ["mdplatform/collector/_batcher.pyx"],
        extra_compile_args=["-O2"],
        define_macros=[("MDP_PICOWS_VERSION", f'"{picows}"')],
    )
    # the generated C goes to build/, not beside the source
    return list(cythonize([ext], build_dir="build/cython", compiler_directives={"language_level": 3}, quiet=True))


setup(
    ext_modules=[
        Extension(
            "mdplatform.book._native",
            ["mdplatform/book/_native.c"],
            # exact float semantics: no fused multiply-add, whatever CFLAGS say (the sums must equal numpy's)
            extra_compile_args=["-O2", "-ffp-contract=off", "-fno-fast-math"],
        ),
        *_receive_path(),
    ]
)
