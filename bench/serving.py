"""Serving that does not grow with history: publishing an hour, and typical queries, with 1, 7 and 30 days in the
warehouse, each beside its reference measured in the same run.

The lake is filled day by day with the derived tables of the test day's density (``--trades-per-hour``, default
110,298: the bundled BTCUSDT recording tiled into 24 hours, 2.647M trades a day): per hour a trades partition
(exact decimals, nanosecond times), its coverage and its candles (1m..1d), written as the assets write them.
At 1, 7 and 30 days it measures:

- publish an hour: writing one more hour's three partition files and ``Warehouse.refresh`` (the catalog is
  republished only when a day folder appears; both cases are timed: an hour of an existing day, the first hour of
  a new day). Reference, the earlier design: a DuckDB file holding the same rows, ``CHECKPOINT`` and a copy to a
  new snapshot (what every write used to do, twice per hour run).
- typical queries on a read-only connection to the published catalog (median of ``--runs``): a day of 1m
  candles for a symbol, the last hour of trades (count, VWAP), the hour's coverage gaps; limit 100 ms each.

    .venv/bin/python bench/serving.py [--days 1,7,30] [--trades-per-hour N] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _report import bench_line  # noqa: E402

from mdplatform.schemas import CANDLES, COVERAGE, TRADES  # noqa: E402
from mdplatform.warehouse import Warehouse, partition_path, write_partition  # noqa: E402

HOUR_NS = 3600 * 10**9
DAY0 = datetime(2024, 8, 1, tzinfo=UTC)
LIMIT_QUERY_S = 0.100
TIMEFRAMES = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400}


def _hour_tables(trades_per_hour: int) -> dict[str, pl.DataFrame]:
    """One hour of each table starting at 0 ns (shifted per hour when written)."""
    rng = np.random.default_rng(7)
    n = trades_per_hour
    ts = np.sort(rng.integers(0, HOUR_NS, n))
    price = 60_000 + np.cumsum(rng.integers(-50, 51, n)) / 100
    trades = pl.DataFrame(
        {
            "exchange": "binance",
            "symbol": "BTC-USDT",
            "ts": ts,
            "recv_ts": ts + 1_300_000_000,
            "trade_id": (np.arange(n) + 1_000_000).astype(str),
            "price": [f"{p:.2f}" for p in price],
            "size": [f"{s:.5f}" for s in rng.integers(1, 200_000, n) / 100_000],
            "side": np.where(rng.random(n) < 0.5, "buy", "sell"),
            "fills": 1,
        }
    ).with_columns(pl.col("ts", "recv_ts").cast(pl.Datetime("ns", "UTC")))
    trades = trades.cast(TRADES)  # type: ignore[arg-type]
    coverage = pl.DataFrame(
        {
            "exchange": "binance",
            "symbol": "BTC-USDT",
            "channel": ["trade", "depth", "bookTicker"],
            "start_time": [0, 0, 0],
            "end_time": [HOUR_NS] * 3,
            "status": "covered",
            "reason": None,
            "detail": None,
            "missing": None,
            "filled": 0.0,
        }
    ).with_columns(pl.col("start_time", "end_time").cast(pl.Datetime("ns", "UTC")))
    candles = []
    for tf, seconds in TIMEFRAMES.items():
        count = max(1, 3600 // seconds)
        close = [(i + 1) * min(seconds, 3600) * 10**9 for i in range(count)]
        candles.append(
            pl.DataFrame(
                {
                    "exchange": "binance",
                    "symbol": "BTC-USDT",
                    "timeframe": tf,
                    "open_time": [c - seconds * 10**9 for c in close],
                    "close_time": close,
                    "open": "60000",
                    "high": "60100",
                    "low": "59900",
                    "close": "60050",
                    "volume": "12.5",
                    "quote_volume": "750000",
                    "trade_count": n // count,
                    "taker_buy_volume": "6",
                    "taker_buy_quote_volume": "360000",
                    "vwap": "60000",
                    "complete": True,
                    "coverage": 1.0,
                }
            )
        )
    c = pl.concat(candles).with_columns(pl.col("open_time", "close_time").cast(pl.Datetime("ns", "UTC")))
    return {"trades": trades, "coverage": coverage.cast(COVERAGE), "candles": c.cast(CANDLES)}  # type: ignore[arg-type]


_TIME_COLUMNS = {
    "trades": ("ts", "recv_ts"),
    "coverage": ("start_time", "end_time"),
    "candles": ("open_time", "close_time"),
}


def _write_hour(lake: Path, tables: dict[str, pl.DataFrame], hour_ns: int) -> None:
    for table, df in tables.items():
        shifted = df.with_columns(
            (pl.col(c).cast(pl.Int64) + hour_ns).cast(pl.Datetime("ns", "UTC")) for c in _TIME_COLUMNS[table]
        )
        write_partition(partition_path(str(lake), table, hour_ns), shifted)


def _median(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _reference_load(ref_db: Path, lake: Path, hours: list[int]) -> None:
    """The earlier design's warehouse: the same rows, in a DuckDB file."""
    con = duckdb.connect(str(ref_db))
    for table in ("trades", "coverage", "candles"):
        listed = "[" + ", ".join(f"'{partition_path(str(lake), table, h)}'" for h in hours) + "]"
        found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchone()
        if found and found[0]:
            con.execute(f"INSERT INTO {table} SELECT * FROM read_parquet({listed})")
        else:
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet({listed})")
    con.close()


def _reference_publish(ref_db: Path, runs: int) -> float:
    """The earlier design's publish: CHECKPOINT the DuckDB file and copy it to a new snapshot."""

    def publish() -> None:
        con = duckdb.connect(str(ref_db))
        con.execute("CHECKPOINT")
        shutil.copyfile(ref_db, ref_db.with_suffix(".snapshot"))
        con.close()

    took = _median(publish, runs)
    ref_db.with_suffix(".snapshot").unlink(missing_ok=True)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", default="1,7,30", help="warehouse sizes to measure at (days)")
    parser.add_argument("--trades-per-hour", type=int, default=110_298)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temporary lake")
    args = parser.parse_args()
    marks = sorted(int(d) for d in args.days.split(","))
    work = Path(tempfile.mkdtemp(prefix="mdp-bench-serving-"))
    lake = work / "lake"
    ref_db = work / "reference.duckdb"
    tables = _hour_tables(args.trades_per_hour)
    wh = Warehouse(str(lake / "warehouse.duckdb"), lake=str(lake))
    day0 = int(DAY0.timestamp()) * 10**9
    results = []
    print(f"serving: {args.trades_per_hour:,} trades an hour, {args.runs} runs each (median); lake {lake}")
    print(
        f"{'days':>5} {'lake MB':>8} | {'write hour':>10} {'publish':>9} {'new day':>8} | {'old: copy':>10} "
        f"{'ratio':>7} | queries (limit 100 ms)"
    )
    done_days = 0
    for mark in marks:
        began = time.perf_counter()
        for day in range(done_days, mark):
            hours = [day0 + (day * 24 + h) * HOUR_NS for h in range(24)]
            for hour in hours:
                _write_hour(lake, tables, hour)
            wh.refresh()
            _reference_load(ref_db, lake, hours)
        done_days = mark
        filled = time.perf_counter() - began
        # publish an hour of the last day again (an existing day: its files written, then the catalog refreshed),
        # and the first hour of the next day (a new catalog)
        last_hour = day0 + (mark * 24 - 1) * HOUR_NS
        write = _median(lambda h=last_hour: _write_hour(lake, tables, h), args.runs)
        same_day = _median(lambda: wh.refresh(), args.runs)
        next_day = day0 + mark * 24 * HOUR_NS
        _write_hour(lake, tables, next_day)
        began = time.perf_counter()
        assert wh.refresh() is True
        new_day = time.perf_counter() - began
        folder = datetime.fromtimestamp(next_day / 1e9, UTC).strftime("date=%Y-%m-%d")
        for table in tables:  # the extra day goes again: the next mark's days are written in order
            shutil.rmtree(lake / table / folder)
        wh.refresh()
        old = _reference_publish(ref_db, args.runs)
        lake_mb = sum(f.stat().st_size for f in lake.rglob("data.parquet")) / 1e6
        con = duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True)
        con.execute("SET TimeZone = 'UTC'")
        last_day = DAY0 + timedelta(days=mark - 1)
        last = DAY0 + timedelta(days=mark) - timedelta(hours=1)
        queries = {
            "1m candles of a day": (
                "SELECT * FROM candles WHERE timeframe = '1m' AND symbol = 'BTC-USDT' "
                f"AND open_time >= '{last_day:%Y-%m-%d}' AND open_time < '{last_day + timedelta(days=1):%Y-%m-%d}'"
            ),
            "last hour of trades": (
                "SELECT count(*), sum(price * size) / sum(size) FROM trades "
                f"WHERE ts >= '{last:%Y-%m-%d %H:%M}' AND ts < '{last + timedelta(hours=1):%Y-%m-%d %H:%M}'"
            ),
            "an hour's coverage gaps": (
                f"SELECT * FROM coverage_gaps WHERE start_time >= '{last:%Y-%m-%d %H:%M}' "
                f"AND start_time < '{last + timedelta(hours=1):%Y-%m-%d %H:%M}'"
            ),
        }
        # results fetched as Arrow, as a notebook takes them (.pl(), .df()); not as Python objects row by row
        timed = {name: _median(lambda q=q, c=con: c.sql(q).to_arrow_table(), args.runs) for name, q in queries.items()}
        rows = con.execute(queries["last hour of trades"]).fetchone()
        con.close()
        assert rows is not None and rows[0] == args.trades_per_hour, rows
        worst = max(timed.values())
        qtext = "  ".join(f"{n} {t * 1000:.1f} ms" for n, t in timed.items())
        print(
            f"{mark:>5} {lake_mb:>8.0f} | {write * 1000:>7.1f} ms {same_day * 1000:>6.1f} ms "
            f"{new_day * 1000:>5.0f} ms | "
            f"{old * 1000:>7.0f} ms {old / same_day:>6.0f}x | {qtext}  {'ok' if worst <= LIMIT_QUERY_S else 'OVER'}"
            f"   (filled in {filled:.0f} s)"
        )
        results.append(
            {
                "days": mark,
                "lake_mb": round(lake_mb),
                "write_hour_s": write,
                "publish_hour_s": same_day,
                "publish_new_day_s": new_day,
                "reference_copy_s": old,
                "queries_s": timed,
            }
        )
    first = results[0]
    for r in results:
        # constant with history: within 2x (or 5 ms) of the smallest warehouse's figure
        growth = r["publish_hour_s"] / first["publish_hour_s"]
        flat = growth <= 2 or r["publish_hour_s"] - first["publish_hour_s"] < 0.005
        bench_line(
            f"publish an hour, {r['days']} d in the warehouse",
            r["publish_hour_s"] * 1000,
            "ms",
            f"{r['reference_copy_s'] * 1000:.0f} ms (copy of the DuckDB file)",
            r["publish_hour_s"] / r["reference_copy_s"],
            f"~ {first['days']} d figure ({first['publish_hour_s'] * 1000:.1f} ms)",
            flat,
        )
        bench_line(f"publish a new day, {r['days']} d", r["publish_new_day_s"] * 1000, "ms", None, None, None, None)
        for name, took in r["queries_s"].items():
            bench_line(f"query: {name}, {r['days']} d", took * 1000, "ms", None, None, "< 100 ms", took < LIMIT_QUERY_S)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
