"""Typed messages, one per exchange event, for tests and tools (the hot path never builds these).

Times are UTC nanoseconds (int); ``None`` where the exchange does not send one (Binance spot bookTicker and
REST snapshots carry no timestamp). ``symbol`` is the exchange's own instrument id, ``channel`` the exchange's
channel name the event came from ("trade", "aggTrade", "depth", "books", ...).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BookDelta", "BookSnapshot", "Event", "Level", "Ticker", "Trade"]

#: (price, size)
Level = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Trade:
    exchange: str
    channel: str
    symbol: str
    ts: int
    trade_id: str
    price: float
    size: float
    #: taker side: "buy" | "sell"
    side: str


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
