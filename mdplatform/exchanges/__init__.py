"""Exchange folders and their registry.

``get_exchange("binance")`` returns the object implementing ``Exchange`` (see ``mdplatform.contract``) for that
registry id; ``EXCHANGES`` maps every id to its exchange; ``capabilities()`` tabulates them. Each exchange lives in
its own folder (``binance/``, ``okx/``, ...) with its protocol, book sync, REST history and replay adapter; adding
one is a folder and a line in ``_registry`` (``docs/adding-an-exchange.md``).
"""

from ..contract import (
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
    BookBuilder,
    BookRebuilding,
    Capabilities,
    CaptureHints,
    EventKind,
    Exchange,
    HistoryPage,
    KeepAlive,
    Route,
    SessionAction,
    StreamEvent,
    StreamSession,
    Subscription,
    SyncState,
    TradeHistory,
)
from ._depth_sync import DepthSync, DiffVerdict, SnapshotVerdict
from ._events import BookDelta, BookSnapshot, Event, Level, Ticker, Trade
from ._normalize import NORMALIZED_TRADES, empty_normalized_trades, empty_rejects
from ._registry import EXCHANGES, book_venues, capabilities, get_exchange, normalize_trades_with_rejects
from .binance import BinanceBookBuilder, BinanceExchange, BinanceSession
from .okx import OkxBookBuilder, OkxExchange, OkxSession, okx_checksum

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
    "BookBuilder",
    "BookDelta",
    "BookRebuilding",
    "BookSnapshot",
    "Capabilities",
    "CaptureHints",
    "DepthSync",
    "DiffVerdict",
    "Event",
    "EventKind",
    "Exchange",
    "HistoryPage",
    "KeepAlive",
    "Level",
    "OkxBookBuilder",
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
    "book_venues",
    "capabilities",
    "empty_normalized_trades",
    "empty_rejects",
    "get_exchange",
    "normalize_trades_with_rejects",
    "okx_checksum",
]
