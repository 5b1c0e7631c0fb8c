"""The one way a bench prints a figure for ``bench/run_all.py``: a ``BENCH {json}`` line (see run_all's docstring)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["bench_line"]


def bench_line(
    name: str,
    figure: object,
    unit: str,
    reference: object = None,
    ratio: float | None = None,
    limit: str | None = None,
    ok: bool | None = None,
    *,
    bench: str | None = None,
) -> None:
    """Print one figure: its reference measured in the same run, their ratio, the limit and whether it is met
    (``ok`` None: a figure without a limit). ``bench`` defaults to the running script's name."""
    row = {
        "bench": bench or Path(sys.argv[0]).stem,
        "name": name,
        "figure": round(figure, 3) if isinstance(figure, float) else figure,
        "unit": unit,
        "reference": round(reference, 3) if isinstance(reference, float) else reference,
        "ratio": None if ratio is None else round(ratio, 3),
        "limit": limit,
        "pass": ok,
    }
    print("BENCH " + json.dumps(row), flush=True)
