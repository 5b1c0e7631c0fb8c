"""Values come back exactly as loaded: decimals to their last digit at both scales, timestamps to the microsecond,
NULLs, float arrays of the book tables; the column-wise encoder and psycopg's own dumpers agree."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext

import polars as pl
import psycopg
import pytest
from pgdata import H0, HOUR, fetch

from mdplatform.pg import replace_window
from mdplatform.schemas import PRICE, QUOTE

EDGE_PRICES = [
    Decimal("99999999999999999999999999.999999999999"),  # the largest NUMERIC(38,12)
    Decimal("-99999999999999999999999999.999999999999"),
    Decimal("0.000000000001"),
    Decimal("-0.000000000001"),
    Decimal("0.1"),
    Decimal("0"),
    Decimal("60123.450000000000"),
    Decimal("10000"),
    Decimal("123456789.000000000001"),
]
EDGE_QUOTES = [
    Decimal("99999999999999999999.999999999999999999"),
    Decimal("-0.000000000000000001"),
    Decimal("0.1"),
    Decimal("6012.345000000000000001"),
    Decimal("0"),
    Decimal("1"),
    Decimal("-12345.678901234567891234"),
    Decimal("100000000"),
    Decimal("0.000000000000000009"),
]


@pytest.fixture
def dsn(migrated: str) -> str:
    with psycopg.connect(migrated) as conn:
        conn.execute("TRUNCATE trade_heatmap, book_snapshots, consolidated_book")
    return migrated


@pytest.mark.parametrize("fast", [True, False], ids=["column-wise", "psycopg-dumpers"])
def test_decimals_round_trip_exactly(dsn: str, fast: bool) -> None:
    from mdplatform.pg import Window, replace_windows

    n = len(EDGE_PRICES)
    df = pl.DataFrame(
        {
            "minute": [datetime.fromtimestamp(H0 / 1e9, UTC)] * n,
            "exchange": ["binance"] * n,
            "symbol": [f"S{i}" for i in range(n)],
            "price_bucket": pl.Series(EDGE_PRICES, dtype=PRICE),
            "bucket_size": pl.Series(EDGE_PRICES[::-1], dtype=PRICE),
            "buy_size": pl.Series(EDGE_QUOTES, dtype=QUOTE),  # rounds to the column's 12 places, as PostgreSQL does
            "sell_size": pl.Series([Decimal(0)] * n, dtype=PRICE),
            "buy_count": [2**62, -1, 0, 1, 2, 3, 4, 5, 6],
            "sell_count": [0] * n,
            "intensity": [0.1, None, math.inf, -0.0, 1e-300, 2.5, 0.3, 1.0, 7.0],
        }
    ).with_columns(pl.col("minute").cast(pl.Datetime("ns", "UTC")))
    replace_windows([Window("trade_heatmap", df, "minute", H0, H0 + HOUR)], dsn=dsn, fast=fast)
    got = fetch(
        dsn, "SELECT price_bucket, bucket_size, buy_size, buy_count, intensity FROM trade_heatmap ORDER BY symbol"
    )
    assert [r[0] for r in got] == EDGE_PRICES
    assert [str(r[0]) for r in got][:3] == [str(d) for d in EDGE_PRICES[:3]]  # same digits, not merely equal
    assert [r[1] for r in got] == EDGE_PRICES[::-1]
    with localcontext(prec=50, rounding=ROUND_HALF_UP):  # PostgreSQL rounds half away from zero
        assert [r[2] for r in got] == [q.quantize(Decimal("1e-12")) for q in EDGE_QUOTES]
    assert [r[3] for r in got] == df["buy_count"].to_list()
    assert [r[4] for r in got] == df["intensity"].to_list()


@pytest.mark.parametrize("fast", [True, False], ids=["column-wise", "psycopg-dumpers"])
def test_quote_amounts_keep_18_places(dsn: str, fast: bool) -> None:
    """Scale 18 is not a whole number of PostgreSQL's 4-digit groups: the encoder pads it; nothing is lost."""
    from mdplatform.pg import Window, replace_windows

    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS quote_probe (ts TIMESTAMPTZ NOT NULL, q NUMERIC(38,18))")
        conn.execute("TRUNCATE quote_probe")
    df = pl.DataFrame(
        {"ts": [datetime.fromtimestamp(H0 / 1e9, UTC)] * len(EDGE_QUOTES), "q": pl.Series(EDGE_QUOTES, dtype=QUOTE)}
    )
    replace_windows([Window("quote_probe", df, "ts", H0, H0 + HOUR)], dsn=dsn, fast=fast)
    got = [r[0] for r in fetch(dsn, "SELECT q FROM quote_probe")]
    assert sorted(got) == sorted(EDGE_QUOTES)
    assert {str(q) for q in got} >= {"99999999999999999999.999999999999999999", "-12345.678901234567891234"}


def test_timestamps_keep_microseconds(dsn: str) -> None:
    ns = H0 + 123_456_789  # .123456789 s: PostgreSQL keeps microseconds, the nanoseconds are truncated
    df = pl.DataFrame({"ts": [ns], "base": ["BTC"]}).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    replace_window("consolidated_book", df, "ts", H0, H0 + HOUR, dsn=dsn)
    assert fetch(dsn, "SELECT ts FROM consolidated_book") == [(datetime(2024, 8, 9, 0, 0, 0, 123456, tzinfo=UTC),)]


@pytest.mark.parametrize("fast", [True, False], ids=["column-wise", "psycopg-dumpers"])
def test_book_arrays_and_nulls_round_trip(dsn: str, fast: bool) -> None:
    from mdplatform.pg import Window, replace_windows

    ts = [datetime.fromtimestamp((H0 + i * 10**9) / 1e9, UTC) for i in range(4)]
    snapshots = pl.DataFrame(
        {
            "ts": ts,
            "exchange": ["okx"] * 4,
            "symbol": ["BTC-USDT"] * 4,
            "update_id": [1, None, 3, 4],
            "mid": [60000.5, None, 0.1, 1.0],
            "bid_px": [[60000.0, 59999.5], [], None, [1.0, None]],
            "ask_sz": [[0.5], [0.25, 0.125, 3.0], [], None],
        },
        schema_overrides={"bid_px": pl.List(pl.Float64), "ask_sz": pl.List(pl.Float64)},
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    consolidated = pl.DataFrame(
        {
            "ts": ts[:3],
            "base": ["BTC", "BTC", "ETH"],
            "exchanges": [["binance", "okx"], None, ["ünï", None]],
            "staleness_ms": [[1.5, 20.0], [], None],
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    replace_windows(
        [
            Window("book_snapshots", snapshots, "ts", H0, H0 + HOUR),
            Window("consolidated_book", consolidated, "ts", H0, H0 + HOUR),
        ],
        dsn=dsn,
        fast=fast,
    )
    got = fetch(dsn, "SELECT ts, exchange, symbol, update_id, mid, bid_px, ask_sz FROM book_snapshots ORDER BY ts")
    assert got == snapshots.rows()
    got = fetch(dsn, "SELECT ts, base, exchanges, staleness_ms FROM consolidated_book ORDER BY ts")
    assert got == consolidated.rows()
