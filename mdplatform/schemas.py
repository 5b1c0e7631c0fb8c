"""Column layouts shared by the lake, the transforms and the warehouse (polars and Arrow forms)."""

from __future__ import annotations

import polars as pl
import pyarrow as pa

__all__ = ["CANDLES", "RAW", "RAW_ARROW", "REJECTS", "TIMEFRAMES", "TRADES", "TS"]

#: every timestamp in the platform: nanoseconds, UTC, tz-aware
TS = pl.Datetime("ns", "UTC")

#: one row per received frame, exactly as received
RAW: dict[str, pl.DataType] = {
    "recv_ts": TS,
    "exchange": pl.String(),
    "channel": pl.String(),
    "symbol": pl.String(),
    "conn_id": pl.String(),
    "seq": pl.Int64(),
    "payload": pl.String(),
}

RAW_ARROW = pa.schema(
    [
        pa.field("recv_ts", pa.timestamp("ns", tz="UTC"), nullable=False),
        pa.field("exchange", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("conn_id", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("payload", pa.string(), nullable=False),
    ]
)

#: quarantined raw rows: the raw row as received plus why it could not be used
REJECTS: dict[str, pl.DataType] = {**RAW, "reason": pl.String()}

TRADES: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),  # BASE-QUOTE[-SUFFIX]
    "ts": TS,  # exchange trade time
    "recv_ts": TS,
    "trade_id": pl.String(),
    "price": pl.Float64(),
    "size": pl.Float64(),
    "side": pl.String(),  # taker side: "buy" | "sell"
}

#: timeframe -> length in nanoseconds
TIMEFRAMES: dict[str, int] = {
    "1m": 60 * 10**9,
    "5m": 5 * 60 * 10**9,
    "15m": 15 * 60 * 10**9,
    "1h": 3600 * 10**9,
    "4h": 4 * 3600 * 10**9,
    "1d": 24 * 3600 * 10**9,
}

CANDLES: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "timeframe": pl.String(),
    "open_time": TS,
    "close_time": TS,
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "quote_volume": pl.Float64(),
    "trade_count": pl.Int64(),
    "taker_buy_volume": pl.Float64(),
    "taker_buy_quote_volume": pl.Float64(),
    "vwap": pl.Float64(),
}
