"""Exact decimals cost: trades normalization and hourly materialization now against the Float64 version.

The Float64 version is this repository at ``BASELINE`` (the last commit before exact decimals, coverage and
completeness), checked out into a temporary git worktree and run by the same interpreter in the same run, on the
same bundled capture (demo/data: BTCUSDT and ETHUSDT spot, 2024-08-08 23:54 .. 08-09 00:05, 34,419 trades). Each
version imports the capture into its own lake, then the bench times, median of ``--repeat`` runs:

- normalize: the Binance normalizer over the hour windows' raw trade frames (JSON decode, validation, numbers);
- hour: the whole hourly materialization of both hours (raw read, trades window, lake + DuckDB writes, candles;
  now also the coverage of every stream), as `mdp materialize` runs it minus Dagster.

It prints trades/s for both and the ratio beside its limit: the decimal version must keep at least half the
Float64 throughput (issue 5: "within 2x").

    .venv/bin/python bench/decimals.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAPTURES = sorted((REPO / "demo/data/binance-spot").glob("*.gz"))
BASELINE = "3409350"
LIMIT = 2.0
H23 = 1723158000 * 10**9
HOURS = [H23, H23 + 3600 * 10**9]

#: run inside a child process whose sys.path starts with one version's source tree
_CHILD = r"""
import json, sys, tempfile, time, statistics
src, repeat, captures = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
sys.path.insert(0, src)
import polars as pl
from mdplatform.capture import import_capture
from mdplatform.exchanges import get_exchange
from mdplatform.lake import read_raw
from assets._hourly import materialize_candles_hour, materialize_trades_hour
from assets._settings import Settings

H23 = 1723158000 * 10**9
HOURS = [H23, H23 + 3600 * 10**9]
lake = tempfile.mkdtemp() + "/lake"
import_capture(captures, "binance", lake)
settings = Settings(lake=lake, warehouse=lake + "/warehouse.duckdb")
raw = read_raw(lake, HOURS[0] - 15 * 60 * 10**9, HOURS[-1] + 75 * 60 * 10**9, channels=["trade"])
normalize = get_exchange("binance").normalize_trades_with_rejects
trades = normalize(raw)[0].height
norm, hour = [], []
for _ in range(repeat):
    t0 = time.perf_counter()
    normalize(raw)
    norm.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    n = 0
    for h in HOURS:
        n += materialize_trades_hour(settings, h).window.trades.height
        materialize_candles_hour(settings, h)
    hour.append(time.perf_counter() - t0)
print(json.dumps({"trades": trades, "hour_trades": n, "normalize_s": statistics.median(norm),
                  "hour_s": statistics.median(hour)}))
"""


def measure(src: Path, repeat: int) -> dict[str, float]:
    env = {**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(src), str(repeat), *map(str, CAPTURES)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=src,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "float64"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(baseline), BASELINE], check=True
        )
        try:
            old = measure(baseline, args.repeat)
            new = measure(REPO, args.repeat)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)], check=True)
    print(f"capture: {', '.join(p.name for p in CAPTURES)}; median of {args.repeat} runs")
    print(f"{'stage':<12} {'Float64 (' + BASELINE + ')':>22} {'Decimal (now)':>16} {'ratio':>7} {'limit':>7}")
    worst = 0.0
    for stage, count in (("normalize", "trades"), ("hour", "hour_trades")):
        f_rate = old[count] / old[f"{stage}_s"]
        d_rate = new[count] / new[f"{stage}_s"]
        ratio = f_rate / d_rate
        worst = max(worst, ratio)
        print(f"{stage:<12} {f_rate:>18,.0f} t/s {d_rate:>12,.0f} t/s {ratio:>6.2f}x {LIMIT:>6.1f}x")
    print(
        f"trades: {int(new['trades']):,} normalized (Float64 version: {int(old['trades']):,}); "
        f"hourly partitions hold {int(new['hour_trades']):,} (Float64 version: {int(old['hour_trades']):,})"
    )
    print("within the limit" if worst <= LIMIT else f"OVER THE LIMIT: {worst:.2f}x > {LIMIT}x")
    return 0 if worst <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
