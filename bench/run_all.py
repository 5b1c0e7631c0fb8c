"""Every bench in bench/, one after the other, and one summary table of their figures.

The convention: a bench prints each figure it measures as one line on stdout::

    BENCH {"name": "...", "figure": 12.3, "unit": "s", "reference": 6.1, "ratio": 0.5, "limit": ">= 0.5", "pass": true}

``name`` is required; ``figure`` and ``reference`` are numbers or short texts, ``ratio`` a number, ``limit`` a text
("< 500 MB", ">= 0.5"), ``pass`` true/false, or null for a figure without a limit; ``bench`` (optional) defaults
to the script's name. Everything else it prints is passed through as it comes. A bench exits non-zero when it could
not measure or found a wrong result; a missed limit is a ``"pass": false`` figure.

A bench is every ``bench/*.py`` except the helpers (``HELPERS``) and the long runs kept out of ``make bench``
(``SLOW``: ``--all`` adds them). The table ends with each bench's exit code and time, and the total against the
15-minute aim; the exit code is 1 if any bench failed or any figure missed its limit.

    .venv/bin/python bench/run_all.py [--only a,b] [--skip a,b] [--all] [--args NAME='--flag value']
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
#: modules other benches use, not benches
HELPERS = {"run_all", "testday", "reference_materialize"}
#: minutes of real time each: not part of `make bench`
SLOW = {"soak", "live_latency"}
#: the order `make bench` has always run them in; benches added since follow in name order
FIRST = ["ingest", "decimals", "import_memory", "book_rebuild", "duckdb_queries", "pg_load", "materialize"]
TOTAL_LIMIT_S = 15 * 60


@dataclass
class Outcome:
    name: str
    rc: int = 0
    seconds: float = 0.0
    rows: list[dict[str, object]] = field(default_factory=list)


def benches(include_slow: bool) -> list[str]:
    names = {p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_")} - HELPERS
    if not include_slow:
        names -= SLOW
    return [n for n in FIRST if n in names] + sorted(names - set(FIRST))


def run(name: str, extra: list[str]) -> Outcome:
    """Run one bench, passing its output through and keeping its ``BENCH`` lines."""
    out = Outcome(name)
    t0 = time.monotonic()
    print(f"\n===== {name} {' '.join(extra)}".rstrip(), flush=True)
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / f"{name}.py"), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.startswith("BENCH "):
            try:
                row = json.loads(line[6:])
            except json.JSONDecodeError:
                row = {"name": f"unreadable BENCH line: {line[6:80].strip()}", "pass": False}
            if isinstance(row, dict) and "name" in row:
                out.rows.append(row)
    out.rc = proc.wait()
    out.seconds = time.monotonic() - t0
    return out


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ok" if value else "FAIL"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(outcomes: list[Outcome], total_s: float) -> tuple[str, bool]:
    header = ["bench", "figure", "value", "unit", "reference", "ratio", "limit", "pass"]
    rows: list[list[str]] = []
    ok = True
    for o in outcomes:
        for r in o.rows:
            passed = r.get("pass")
            ok &= passed is not False
            rows.append(
                [
                    str(r.get("bench") or o.name),
                    str(r["name"]),
                    _cell(r.get("figure")),
                    str(r.get("unit") or ""),
                    _cell(r.get("reference")),
                    _cell(r.get("ratio")),
                    str(r.get("limit") or ""),
                    _cell(passed) if passed is not None else "",
                ]
            )
        ok &= o.rc == 0
        status = "exit 0" if o.rc == 0 else f"exit {o.rc} FAIL"
        rows.append([o.name, "(the bench's own run)", f"{o.seconds:,.0f}", "s", "", "", "", status])
    total_ok = total_s <= TOTAL_LIMIT_S
    rows.append(["all", "total time", f"{total_s:,.0f}", "s", "", "", f"<= {TOTAL_LIMIT_S} s", _cell(total_ok)])
    widths = [max(len(h), *(len(cols[i]) for cols in rows)) for i, h in enumerate(header)]
    widths[1] = min(widths[1], 60)
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    numeric = (2, 4, 5)  # right-aligned
    for cols in rows:
        cols[1] = cols[1][: widths[1]]
        cells = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines), ok and total_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated benches to run")
    parser.add_argument("--skip", default="", help="comma-separated benches to leave out")
    parser.add_argument("--all", action="store_true", help=f"include the long ones ({', '.join(sorted(SLOW))})")
    parser.add_argument("--args", action="append", default=[], metavar="NAME=ARGS", help="extra arguments for a bench")
    args = parser.parse_args()
    names = benches(args.all)
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - set(names) - SLOW
        if unknown:
            sys.exit(f"no such bench: {', '.join(sorted(unknown))} (benches: {', '.join(names)})")
        names = wanted
    skip = set(filter(None, args.skip.split(",")))
    names = [n for n in names if n not in skip]
    extra = {k: shlex.split(v) for k, _, v in (a.partition("=") for a in args.args)}
    t0 = time.monotonic()
    outcomes = [run(name, extra.get(name, [])) for name in names]
    text, ok = table(outcomes, time.monotonic() - t0)
    print(f"\n===== summary ({len(outcomes)} benches)\n{text}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
