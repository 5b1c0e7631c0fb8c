"""Typical analyst queries on the published DuckDB warehouse of the demo lake, each beside its limit.

    .venv/bin/python bench/duckdb_queries.py [--lake PATH] [--runs N] [--widen-days D]

Without --lake, builds the demo lake in a temporary directory (demo/run.py, ~30 s). Every query runs on one read-only
connection to the published snapshot, as a notebook holds it (opening it is timed apart), its result fetched as
Arrow; the time is the median of N runs. The raw
count per minute of one hour through `raw_between` must stay within 2x of reading that hour's files directly.
The demo lake holds one hour of raw files; --widen-days D first copies the lake and adds D days of small synthetic
raw minutes before it (two exchanges), so the lake-size dependence of the whole-tree view `raw` shows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
LIMIT_S = 0.100


def _demo_lake() -> Path:
    home = Path(tempfile.mkdtemp(prefix="mdp-bench-duckdb-"))
    env = {**os.environ, "MDP_DEMO_DIR": str(home)}
    subprocess.run([sys.executable, str(REPO / "demo" / "run.py")], env=env, check=True, stdout=subprocess.DEVNULL)
    return home / "lake"


def _widen(lake: Path, days: int, before: datetime) -> int:
    """Add ``days`` of one-file minutes (20 frames each) per exchange to ``raw/``, ending at ``before``."""
    start = before - timedelta(days=days)
    n = 0
    for exchange in ("binance", "okx"):
        for i in range(days * 24 * 60):
            minute = start + timedelta(minutes=i)
            d = lake / "raw" / f"exchange={exchange}" / f"date={minute:%Y-%m-%d}" / f"hour={minute:%H}"
            d = d / f"minute={minute:%M}"
            d.mkdir(parents=True, exist_ok=True)
            base = int(minute.timestamp()) * 10**9
            rows = 20
            table = pa.table(
                {
                    "recv_ts": pa.array([base + k * 10**9 for k in range(rows)], pa.timestamp("ns", tz="UTC")),
                    "exchange": [exchange] * rows,
                    "channel": ["trade"] * rows,
                    "symbol": ["BTCUSDT"] * rows,
                    "conn_id": ["bench"] * rows,
                    "seq": pa.array(range(1, rows + 1), pa.int64()),
                    "payload": ["{}"] * rows,
                }
            )
            pq.write_table(table, d / "part-bench-0.parquet")
            n += 1
    return n


def _median(con: duckdb.DuckDBPyConnection, query: str, runs: int) -> tuple[float, int]:
    """Median seconds of ``query``, its result fetched as Arrow (what a DataFrame gets), and its row count."""
    times: list[float] = []
    rows = 0
    for _ in range(runs):
        began = time.perf_counter()
        rows = con.sql(query).to_arrow_table().num_rows
        times.append(time.perf_counter() - began)
    return statistics.median(times), rows


def _open_median(public: Path, runs: int) -> float:
    times: list[float] = []
    for _ in range(runs):
        began = time.perf_counter()
        duckdb.connect(str(public), read_only=True).close()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, help="lake root with a published warehouse (default: build the demo)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--widen-days", type=int, default=0)
    args = parser.parse_args()
    lake = (args.lake or _demo_lake()).resolve()
    public = lake / "warehouse.duckdb"
    sys.path.insert(0, str(REPO))
    from mdplatform.warehouse import Warehouse

    wh = Warehouse(str(public), lake=str(lake))
    last = wh.query("SELECT max(ts) AS t FROM trades").item()
    hour = last.replace(minute=0, second=0, microsecond=0, tzinfo=UTC)
    if args.widen_days:
        copy = Path(tempfile.mkdtemp(prefix="mdp-bench-wide-")) / "lake"
        shutil.copytree(lake, copy, symlinks=True)
        lake, public = copy, copy / "warehouse.duckdb"
        print(f"added {_widen(lake, args.widen_days, hour)} synthetic raw minute files to {lake}")
        wh = Warehouse(str(public), lake=str(lake))
    wh.refresh(force=True)
    day = hour.replace(hour=0)
    symbol = wh.query("SELECT symbol FROM candles GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").item()
    lo, hi = f"{hour:%Y-%m-%d %H:%M}", f"{hour + timedelta(hours=1):%Y-%m-%d %H:%M}"
    per_minute = "SELECT date_trunc('minute', recv_ts) AS m, count(*) FROM {} GROUP BY 1 ORDER BY 1"
    files = lake / "raw" / "*" / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}" / "*" / "*.parquet"
    queries = {
        "a day of 1m candles for a symbol": (
            f"SELECT * FROM candles WHERE timeframe = '1m' AND symbol = '{symbol}' "
            f"AND open_time >= '{day:%Y-%m-%d}' AND open_time < '{day + timedelta(days=1):%Y-%m-%d}' ORDER BY open_time"
        ),
        "the last hour of trades": f"SELECT * FROM trades WHERE ts >= TIMESTAMPTZ '{last}' - INTERVAL 1 HOUR",
    }
    relations = {name for (name,) in wh.query("SELECT view_name FROM duckdb_views() WHERE NOT internal").iter_rows()}
    for heatmap in sorted(r for r in relations if r.endswith("heatmap")):
        queries[f"a {heatmap} window (1 h)"] = f"SELECT * FROM {heatmap} WHERE {_time_column(wh, heatmap)} >= '{lo}'"
    print(f"lake {lake} ({args.runs} runs each, median)")
    print(f"  opening the published snapshot read-only    {_open_median(public, args.runs) * 1000:8.1f} ms")
    con = duckdb.connect(str(public), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    for name, query in queries.items():
        took, rows = _median(con, query, args.runs)
        verdict = "ok" if took <= LIMIT_S else "OVER"
        print(f"  {name:40s} {took * 1000:8.1f} ms  limit {LIMIT_S * 1000:.0f} ms  {verdict}  ({rows} rows)")
    direct, n_direct = _median(
        con, per_minute.format(f"(SELECT recv_ts::TIMESTAMPTZ AS recv_ts FROM '{files}')"), args.runs
    )
    macro, n_macro = _median(con, per_minute.format(f"raw_between('{lo}', '{hi}')"), args.runs)
    view, n_view = _median(
        con,
        per_minute.format(f"raw WHERE date = '{hour:%Y-%m-%d}' AND hour = {hour.hour} AND recv_ts < '{hi}'"),
        args.runs,
    )
    assert n_direct == n_macro == n_view, (n_direct, n_macro, n_view)
    print(f"  raw count per minute of {lo} UTC:")
    print(f"    the hour's files directly                {direct * 1000:8.1f} ms  (reference)")
    for label, took in (("raw_between(lo, hi)", macro), ("view raw, WHERE date/hour", view)):
        ratio = took / direct
        verdict = "ok" if ratio <= 2 else "OVER"
        print(f"    {label:40s} {took * 1000:8.1f} ms  {ratio:.2f}x  limit 2x  {verdict}")


def _time_column(wh: object, table: str) -> str:
    from mdplatform.warehouse import Warehouse

    assert isinstance(wh, Warehouse)
    cols = wh.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND data_type LIKE 'TIMESTAMP%' "
        "ORDER BY ordinal_position LIMIT 1",
        [table],
    )
    return str(cols.item())


if __name__ == "__main__":
    main()
