"""Coinbase Advanced Trade public market data: market_trades, level2 (l2_data), ticker, candles, heartbeats; REST
public market trades for backfill."""

from ._exchange import (
    BOOK_CHANNEL,
    FRAME_CHANNELS,
    HEARTBEATS,
    TRADES_CHANNEL,
    CoinbaseBookBuilder,
    CoinbaseExchange,
    CoinbaseSession,
    sequence_num,
    taker_side,
)
from ._history import COINBASE_HISTORY_PATH, COINBASE_PUBLIC_LIMIT, CoinbaseTradeHistory, history_path
from ._times import format_rfc3339, rfc3339_ns, rfc3339_ns_expr

__all__ = [
    "BOOK_CHANNEL",
    "COINBASE_HISTORY_PATH",
    "COINBASE_PUBLIC_LIMIT",
    "FRAME_CHANNELS",
    "HEARTBEATS",
    "TRADES_CHANNEL",
    "CoinbaseBookBuilder",
    "CoinbaseExchange",
    "CoinbaseSession",
    "CoinbaseTradeHistory",
    "format_rfc3339",
    "history_path",
    "rfc3339_ns",
    "rfc3339_ns_expr",
    "sequence_num",
    "taker_side",
]
