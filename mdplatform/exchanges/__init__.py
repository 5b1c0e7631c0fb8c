"""Exchange modules and their registry.

``get_exchange("binance")`` returns the object implementing ``Exchange`` (see ``_base``) for that registry id;
``EXCHANGES`` maps every id to its exchange; ``capabilities()`` tabulates them.
"""

from ._base import (
    ALIVE,
    BACKFILLED,
    CHECKSUM,
    CLOSE,
    EVENT_KINDS,
    FRAME_ERROR,
    GAP,
    OPEN,
    START,
    SUB_ERROR,
    SUBSCRIBED,
    SYNCED,
    UNSUBSCRIBED,
    Capabilities,
    EventKind,
    Exchange,
    HistoryPage,
    KeepAlive,
    Route,
    SessionAction,
    StreamEvent,
    StreamSession,
    Subscription,
    TradeHistory,
)
from ._binance_sync import DepthSync, DiffVerdict, SnapshotVerdict, SyncState
from ._events import BookDelta, BookSnapshot, Event, Level, Ticker, Trade
from ._normalize import NORMALIZED_TRADES, empty_normalized_trades, empty_rejects
from ._registry import EXCHANGES, capabilities, get_exchange, normalize_trades_with_rejects
from .binance import BinanceBookBuilder, BinanceExchange, BinanceSession
from .okx import OkxExchange, OkxSession, okx_checksum

__all__ = [
    "ALIVE",
    "BACKFILLED",
    "CHECKSUM",
    "CLOSE",
    "EVENT_KINDS",
    "EXCHANGES",
    "FRAME_ERROR",
    "GAP",
    "NORMALIZED_TRADES",
    "OPEN",
    "START",
    "SUBSCRIBED",
    "SUB_ERROR",
    "SYNCED",
    "UNSUBSCRIBED",
    "BinanceBookBuilder",
    "BinanceExchange",
    "BinanceSession",
    "BookDelta",
    "BookSnapshot",
    "Capabilities",
    "DepthSync",
    "DiffVerdict",
    "Event",
    "EventKind",
    "Exchange",
    "HistoryPage",
    "KeepAlive",
    "Level",
    "OkxExchange",
    "OkxSession",
    "Route",
    "SessionAction",
    "SnapshotVerdict",
    "StreamEvent",
    "StreamSession",
    "Subscription",
    "SyncState",
    "Ticker",
    "Trade",
    "TradeHistory",
    "capabilities",
    "empty_normalized_trades",
    "empty_rejects",
    "get_exchange",
    "normalize_trades_with_rejects",
    "okx_checksum",
]
