"""Typed messages, one per exchange event, for tests and tools (the hot path never builds these).

Times are UTC nanoseconds (int); ``None`` where the exchange does not send one (Binance spot bookTicker and
REST snapshots carry no timestamp). ``symbol`` is the exchange's own instrument id, ``channel`` the exchange's
channel name the event came from ("trade", "aggTrade", "depth", "books", ...).

Trade prices and sizes are ``decimal.Decimal`` made from the exchange's strings, so they compare exactly with
normalized trades (``Decimal(38, 12)``); book and ticker levels are still floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["BookDelta", "BookSnapshot", "Event", "Level", "Ticker", "Trade"]

#: (price, size)
Level = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Trade:
    exchange: str
    channel: str
    symbol: str
    ts: int
    #: the exchange's trade id; Binance aggTrade: "f" for one fill, "f-l" for several (as normalized)
    trade_id: str
    price: Decimal
    size: Decimal
    #: taker side: "buy" | "sell"
    side: str
    #: matches this event aggregates (Binance aggTrade l - f + 1, OKX "count"); 1 for a single fill
    fills: int = 1


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    exchange: str
    channel: str
    symbol: str
    ts: int | None
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    #: Binance lastUpdateId, OKX seqId
    update_id: int | None = None
    checksum: int | None = None


@dataclass(frozen=True, slots=True)
class BookDelta:
    """Absolute sizes per level (0 removes the level)."""

    exchange: str
    channel: str
    symbol: str
    ts: int | None
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    #: Binance U (None on OKX)
    first_update_id: int | None = None
    #: Binance u, OKX seqId
    last_update_id: int | None = None
    #: Binance futures pu, OKX prevSeqId
    prev_update_id: int | None = None
    checksum: int | None = None


@dataclass(frozen=True, slots=True)
class Ticker:
    """Best bid/ask (Binance bookTicker, OKX tickers)."""

    exchange: str
    channel: str
    symbol: str
    ts: int | None
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float
    update_id: int | None = None
    last_price: float | None = None


Event = Trade | BookSnapshot | BookDelta | Ticker
