"""PostgreSQL sink load rate: ``mdplatform.pg.replace_window`` of 1M trades into the plain (non-TimescaleDB)
``trades`` table, beside a bare binary ``COPY`` of the same rows into the same table in the same run.

- bare COPY: the COPY BINARY stream encoded beforehand, then only ``COPY trades FROM STDIN (FORMAT BINARY)`` into
  the emptied table: what the server and the connection can take, the ceiling of any loader;
- replace_window (column-wise): the whole load as the assets run it: DELETE of the hour, encoding the polars frame
  (exact decimals without Python objects), COPY, commit;
- replace_window (psycopg dumpers): the same with a Python ``Decimal``/``datetime`` per value, for comparison.

The bench creates its own database on ``--admin`` (default: the local server, user postgres) and drops it after.
Aim (issue 9): at least 300,000 rows/s through replace_window.

    .venv/bin/python bench/pg_load.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mdplatform.pg import Window, close_pools, migrate, replace_window, replace_windows
from mdplatform.pg._copy import PgColumn, encode
from mdplatform.pg._load import table_columns
from mdplatform.schemas import TRADES

AIM = 300_000
H0 = 1723161600 * 10**9
HOUR = 3_600 * 10**9


def trades(n: int) -> pl.DataFrame:
    """``n`` trades in one hour: two exchanges' symbols, 12-decimal prices and sizes as exchanges send them."""
    rng = np.random.default_rng(7)
    ts = np.sort(rng.integers(H0, H0 + HOUR, n))
    price_units = rng.integers(60_000 * 10**4, 61_000 * 10**4, n) * 10**8  # 4 decimals, scale 12
    size_units = rng.integers(1, 5 * 10**8, n) * 10**4  # 8 decimals, scale 12
    return (
        pl.DataFrame(
            {
                "exchange": np.where(rng.random(n) < 0.5, "binance", "okx"),
                "symbol": np.where(rng.random(n) < 0.7, "BTC-USDT", "ETH-USDT"),
                "ts": ts,
                "recv_ts": ts + rng.integers(1_000_000, 50_000_000, n),
                "trade_id": pl.int_range(n, eager=True).cast(pl.String),
                "price": pl.Series(price_units, dtype=pl.Int64).cast(pl.Int128).cast(pl.Decimal(38, 0)),
                "size": pl.Series(size_units, dtype=pl.Int64).cast(pl.Int128).cast(pl.Decimal(38, 0)),
                "side": np.where(rng.random(n) < 0.5, "buy", "sell"),
                "fills": rng.integers(1, 4, n),
            }
        )
        .with_columns(
            pl.col("ts", "recv_ts").cast(pl.Datetime("ns", "UTC")),
            # the unscaled integers become Decimal(38, 12) values: the frame holds exactly what normalization makes
            (pl.col("price").cast(pl.Decimal(38, 12)) / 10**12).cast(pl.Decimal(38, 12)),
            (pl.col("size").cast(pl.Decimal(38, 12)) / 10**12).cast(pl.Decimal(38, 12)),
        )
        .cast(TRADES)
    )  # type: ignore[arg-type]


def best(repeat: int, run: Callable[[], None], before: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        before()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    name = f"mdp_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = str(psycopg.conninfo.make_conninfo(args.admin, dbname=name))
    try:
        migrate(dsn)
        df = trades(args.rows)
        n = df.height
        with psycopg.connect(dsn) as conn:
            catalog = table_columns(conn, "trades")
            server = conn.execute("SHOW server_version").fetchone()
        columns: list[PgColumn] = [catalog[c] for c in df.columns]

        started = time.perf_counter()
        payload = b"".join(bytes(chunk) for chunk in encode(df, columns))
        encode_s = time.perf_counter() - started

        with psycopg.connect(dsn) as conn:
            # the plain table: trades' columns and CHECKs, no index (a load's cost without index upkeep)
            conn.execute("CREATE TABLE trades_plain (LIKE trades INCLUDING CONSTRAINTS)")

        def figures(table: str, repeat: int) -> tuple[float, float]:
            def truncate() -> None:
                with psycopg.connect(dsn) as conn:
                    conn.execute(f"TRUNCATE {table}")

            def bare_copy() -> None:
                statement = f"COPY {table} ({', '.join(df.columns)}) FROM STDIN (FORMAT BINARY)"
                with psycopg.connect(dsn) as conn, conn.cursor() as cur, cur.copy(statement) as copy:
                    copy.write(payload)

            return best(repeat, bare_copy, truncate), best(repeat, load(table, True), truncate)

        def load(table: str, fast: bool) -> Callable[[], None]:
            def run() -> None:
                replace_windows([Window(table, df, "ts", H0, H0 + HOUR)], dsn=dsn, fast=fast)

            return run

        copy_s, fast_s = figures("trades_plain", args.repeat)
        rerun_s = best(args.repeat, load("trades_plain", True), lambda: None)  # the DELETE of the hour included
        slow_s = best(1, load("trades_plain", False), lambda: None)
        indexed_copy_s, indexed_fast_s = figures("trades", 1)
        replace_window("trades", df, "ts", H0, H0 + HOUR, dsn=dsn)
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM trades").fetchone() == (n,)
    finally:
        close_pools()
        with psycopg.connect(args.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print(f"PostgreSQL {server[0] if server else '?'}, {n:,} trades in one hour, median of {args.repeat}")
    print(f"  encode alone (column-wise, exact decimals):  {n / encode_s:>10,.0f} rows/s")
    print("  into a plain table (trades' columns and CHECKs, no index):")
    print(f"    bare binary COPY (pre-encoded):            {n / copy_s:>10,.0f} rows/s  (reference)")
    print(f"    replace_window, empty hour:                {n / fast_s:>10,.0f} rows/s  "
          f"= {copy_s / fast_s:.0%} of bare COPY  (aim >= {AIM:,})")  # fmt: skip
    print(f"    replace_window, re-run of the loaded hour: {n / rerun_s:>10,.0f} rows/s  (its DELETE included)")
    print(f"    replace_window, psycopg dumpers (1 run):   {n / slow_s:>10,.0f} rows/s")
    print("  into `trades` as migrated (btree on exchange, symbol, ts + BRIN on ts), 1 run:")
    print(f"    bare binary COPY (pre-encoded):            {n / indexed_copy_s:>10,.0f} rows/s  (reference)")
    print(f"    replace_window, empty hour:                {n / indexed_fast_s:>10,.0f} rows/s  "
          f"= {indexed_copy_s / indexed_fast_s:.0%} of bare COPY")  # fmt: skip
    if n / fast_s < AIM:
        print(f"BELOW AIM: {n / fast_s:,.0f} < {AIM:,} rows/s")


if __name__ == "__main__":
    main()
