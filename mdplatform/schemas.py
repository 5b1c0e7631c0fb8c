"""Column layouts shared by the lake, the transforms and the warehouse (polars and Arrow forms).

Numbers are exact: prices and sizes are ``Decimal(38, 12)`` (``PRICE``), so any exchange string with up to 12
decimal places is held exactly (a value with more is quarantined, never rounded); quote amounts (price x size and
their sums) are ``Decimal(38, 18)`` (``QUOTE``): exact whenever price and size together have at most 18 decimal
places (Binance: at most 8 + 8), otherwise rounded half up at the 18th. ``vwap`` is a quotient and is rounded
half up to 12 places.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

__all__ = [
    "BACKFILL_CONN_PREFIX",
    "CANDLES",
    "COVERAGE",
    "EVENTS",
    "EVENTS_ARROW",
    "PRICE",
    "PRICE_SCALE",
    "QUOTE",
    "QUOTE_SCALE",
    "RAW",
    "RAW_ARROW",
    "REJECTS",
    "TIMEFRAMES",
    "TRADES",
    "TRADE_LINEAGE",
    "TS",
]

#: every timestamp in the platform: nanoseconds, UTC, tz-aware
TS = pl.Datetime("ns", "UTC")

PRICE_SCALE = 12
QUOTE_SCALE = 18
#: prices, sizes and their sums
PRICE = pl.Decimal(38, PRICE_SCALE)
#: price x size and its sums
QUOTE = pl.Decimal(38, QUOTE_SCALE)

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

#: ``conn_id`` of the rows ``mdp backfill`` lands (lake ``backfill/``): REST history, not a live connection, so
#: never liveness evidence nor "late"
BACKFILL_CONN_PREFIX = "backfill-"

#: the collector's own bookkeeping, beside the raw frames (lake ``events/``): what it was connected to and
#: subscribed to, and when it could prove the stream was flowing. Kinds: ``mdplatform.exchanges.EventKind``.
EVENTS: dict[str, pl.DataType] = {
    "recv_ts": TS,  # local time the event refers to
    "exchange": pl.String(),
    "conn_id": pl.String(),
    "kind": pl.String(),
    "channel": pl.String(),  # "" for connection-wide events
    "symbol": pl.String(),  # the exchange's own instrument id, "" for connection-wide events
    "seq": pl.Int64(),  # frames landed on the connection so far
    "exchange_ts": TS,  # exchange time of the newest frame that carried one (null: none yet)
    "frame_recv_ts": TS,  # when that frame was received
    "detail": pl.String(),
}

EVENTS_ARROW = pa.schema(
    [
        pa.field("recv_ts", pa.timestamp("ns", tz="UTC"), nullable=False),
        pa.field("exchange", pa.string(), nullable=False),
        pa.field("conn_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("exchange_ts", pa.timestamp("ns", tz="UTC"), nullable=True),
        pa.field("frame_recv_ts", pa.timestamp("ns", tz="UTC"), nullable=True),
        pa.field("detail", pa.string(), nullable=False),
    ]
)

#: quarantined raw rows: the raw row as received plus why it could not be used
REJECTS: dict[str, pl.DataType] = {**RAW, "reason": pl.String()}

TRADES: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),  # BASE-QUOTE[-SUFFIX]
    "ts": TS,  # exchange trade time
    "recv_ts": TS,
    #: the exchange's trade id; a row aggregating fills that have ids of their own says which ("first-last")
    "trade_id": pl.String(),
    "price": PRICE,
    "size": PRICE,
    "side": pl.String(),  # taker side: "buy" | "sell"
    "fills": pl.Int64(),  # matches the row aggregates (Binance aggTrade, OKX trades "count"); 1 for a single fill
}

#: what normalization adds to TRADES for the transforms (not stored): the raw row it came from (channel,
#: connection, frame counter ``seq``), the stream's own id when the exchange numbers it contiguously (``seq_id``:
#: a missing number is a lost message), and the range of fill ids the row holds (``fill_first``/``fill_last``:
#: one fill id space across channels, for de-duplication)
TRADE_LINEAGE: dict[str, pl.DataType] = {
    "channel": pl.String(),
    "conn_id": pl.String(),
    "seq": pl.Int64(),
    "seq_id": pl.Int64(),
    "fill_first": pl.Int64(),
    "fill_last": pl.Int64(),
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
    "open": PRICE,
    "high": PRICE,
    "low": PRICE,
    "close": PRICE,
    "volume": PRICE,
    "quote_volume": QUOTE,
    "trade_count": pl.Int64(),  # fills, not rows: an aggregated trade counts its matches
    "taker_buy_volume": PRICE,
    "taker_buy_quote_volume": QUOTE,
    "vwap": PRICE,
    #: every moment of the span was observed for the symbol's trades (and, above 1m, every minute is complete)
    "complete": pl.Boolean(),
    #: share of the span observed, 0..1
    "coverage": pl.Float64(),
}

#: per stream (exchange, symbol, channel), which stretches of exchange time were observed and which were not
COVERAGE: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),  # BASE-QUOTE[-SUFFIX], as in trades and candles
    "channel": pl.String(),  # the exchange's own channel name
    "start_time": TS,
    "end_time": TS,
    "status": pl.String(),  # "covered" | "gap"
    "reason": pl.String(),  # gaps: "not connected", "lost on crash", "silent", "id gap", "sequence gap", ...
    "detail": pl.String(),
    "missing": pl.Int64(),  # id gaps: how many ids are missing
    "filled": pl.Float64(),  # gaps: share of the gap observed through another stream of the same symbol
}
