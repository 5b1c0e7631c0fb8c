"""The PostgreSQL sink behind the assets: with ``MDP_PG_DSN`` set, `mdp materialize` of the demo's bundled real
capture (Binance BTCUSDT spot, 11 minutes over two hours) leaves in PostgreSQL the same rows as in DuckDB, table
by table (re-runs replacing windows are tested with the loader, in test_pg_load.py)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
from click.testing import CliRunner

from assets.cli import materialize as materialize_cli
from mdplatform.capture import import_capture
from mdplatform.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[2]
TABLES = {
    # table: the columns compared (rows are sorted in Python: the two servers collate text differently)
    "trades": "exchange, symbol, trade_id, ts, price, size, side, fills",
    "candles": "exchange, symbol, timeframe, close_time, open, high, low, close, quote_volume, trade_count, complete",
    "coverage": "exchange, symbol, channel, start_time, end_time, status, reason",
    "book_snapshots": "exchange, symbol, ts, update_id, book_ts, bid_price, ask_size, mid, bid_depth_10bps, bid_px",
    "book_invalid": 'exchange, symbol, "start", "end", reason',
    "book_heatmap": "exchange, symbol, step, ts, side, price, bucket, size, intensity, samples, complete",
    "trade_heatmap": "exchange, symbol, minute, price_bucket, buy_size, sell_size, buy_count, intensity",
    "consolidated_book": "base, ts, best_bid, best_bid_exchange, exchange_count, exchanges, staleness_ms",
}


def _key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, v if v is not None else 0) for v in row)


@pytest.fixture(scope="module")
def loaded(migrated: str, tmp_path_factory: pytest.TempPathFactory, dagster_home: str) -> tuple[str, str]:
    lake = str(tmp_path_factory.mktemp("pg_sink") / "lake")
    import_capture(sorted((REPO / "demo" / "data" / "binance-spot").glob("btcusdt_*.gz")), "binance", lake)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_PG_DSN", migrated)
        mp.setenv("MDP_BOOKS", "1")
        result = CliRunner().invoke(materialize_cli, ["--lake", lake, "--no-progress"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return lake, migrated


@pytest.mark.parametrize("table", sorted(TABLES))
def test_postgres_rows_equal_duckdb_rows(loaded: tuple[str, str], table: str) -> None:
    lake, dsn = loaded
    cols = TABLES[table]
    duck = Warehouse(str(Path(lake) / "warehouse.duckdb")).query(f"SELECT {cols} FROM {table}")
    # PostgreSQL keeps microseconds: DuckDB's nanosecond times are compared at that precision
    times = [c for c, t in duck.schema.items() if isinstance(t, pl.Datetime)]
    expected = sorted(duck.with_columns(pl.col(times).dt.truncate("1us")).rows(), key=_key)
    with psycopg.connect(dsn) as conn:
        got = sorted((tuple(r) for r in conn.execute(f"SELECT {cols} FROM {table}").fetchall()), key=_key)
    assert len(got) == len(expected) > 0
    assert got == expected
    # exact decimals stay Decimals (no float on the way)
    assert all(type(a) is type(b) for a, b in zip(got[0], expected[0], strict=True) if isinstance(b, Decimal))
