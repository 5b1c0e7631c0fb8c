"""Rows for the PostgreSQL sink's tests."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import psycopg

from mdplatform.schemas import TRADES

HOUR = 3_600 * 10**9
#: 2024-08-09 00:00 UTC, an hour of the demo capture, in ns
H0 = 1723161600 * 10**9
TRADE_COLUMNS = ", ".join(TRADES)


def trades_frame(hour_ns: int, n: int, *, exchange: str = "binance", seed: int = 0) -> pl.DataFrame:
    """``n`` trades spread over the hour starting at ``hour_ns`` (TRADES schema), prices with 12 decimals."""
    step = HOUR // max(n, 1)
    ts = [hour_ns + i * step + 1_000 * (seed % 1000) for i in range(n)]
    return (
        pl.DataFrame(
            {
                "exchange": [exchange] * n,
                "symbol": ["BTC-USDT" if i % 3 else "ETH-USDT" for i in range(n)],
                "ts": ts,
                "recv_ts": [t + 5_000_000 for t in ts],
                "trade_id": [f"{seed}-{i}" for i in range(n)],
                "price": [Decimal(60000 + i % 500) + Decimal(i % 997) / Decimal(10**12) for i in range(n)],
                "size": [Decimal("0.1") * (1 + i % 7) for i in range(n)],
                "side": ["buy" if i % 2 else "sell" for i in range(n)],
                "fills": [1 + i % 3 for i in range(n)],
            },
            schema_overrides={"ts": pl.Int64, "recv_ts": pl.Int64},
        )
        .with_columns(pl.col("ts", "recv_ts").cast(pl.Datetime("ns", "UTC")))
        .cast(TRADES)
    )  # type: ignore[arg-type]


def fetch(dsn: str, query: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]
