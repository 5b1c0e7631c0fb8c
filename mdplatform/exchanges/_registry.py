"""The exchanges the platform knows, by registry id."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, cast

import polars as pl

if TYPE_CHECKING:
    from ..book import L2Book

from ..contract import BookRebuilding, Exchange
from .binance import BinanceExchange
from .bitfinex import BitfinexExchange
from .bybit import BybitExchange
from .coinbase import CoinbaseExchange
from .gateio import GateioExchange
from .htx import HtxExchange
from .kraken import KrakenExchange
from .kucoin import KucoinExchange
from .mexc import MexcExchange
from .okx import OkxExchange

__all__ = ["EXCHANGES", "book_venues", "capabilities", "get_exchange", "normalize_trades_with_rejects"]

#: one line per exchange (or market with its own endpoint); its folder holds everything else
_LISTED: tuple[Exchange, ...] = (
    BinanceExchange("spot"),
    BinanceExchange("usdm"),
    BinanceExchange("coinm"),
    BitfinexExchange(),
    OkxExchange(),
    CoinbaseExchange(),
    KrakenExchange(),
    KucoinExchange(),
    MexcExchange(),
    BybitExchange("spot"),
    BybitExchange("linear"),
    HtxExchange("spot"),
    HtxExchange("linear"),
    HtxExchange("inverse"),
    GateioExchange("spot"),
    GateioExchange("futures"),
)
_ALL: dict[str, Exchange] = {x.id: x for x in _LISTED}

#: registry id -> exchange ("binance", "binance-usdm", "binance-coinm", "okx")
EXCHANGES: Mapping[str, Exchange] = MappingProxyType(_ALL)


def get_exchange(exchange_id: str) -> Exchange:
    try:
        return EXCHANGES[exchange_id]
    except KeyError:
        raise KeyError(f"unknown exchange {exchange_id!r}; known: {', '.join(sorted(EXCHANGES))}") from None


def book_venues() -> dict[str, BookRebuilding[L2Book]]:
    """The exchanges whose books the platform rebuilds from the lake (they have a ``book_builder``), by id."""
    return {
        xid: cast("BookRebuilding[L2Book]", x)
        for xid, x in EXCHANGES.items()
        if callable(getattr(x, "book_builder", None))
    }


def normalize_trades_with_rejects(exchange_id: str, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(trades, rejects) for one exchange's raw rows; rejects = raw rows that did not parse + ``reason``."""
    return get_exchange(exchange_id).normalize_trades_with_rejects(raw)


def capabilities() -> pl.DataFrame:
    """One row per exchange: what it offers and how its books are kept in sync."""
    rows = []
    for xid, x in EXCHANGES.items():
        c = x.capabilities
        rows.append(
            {
                "id": xid,
                "channels": sorted(c.channels),
                "trade_channels": sorted(c.trade_channels),
                "book_channels": sorted(c.book_channels),
                "ticker_channels": sorted(c.ticker_channels),
                "book_sync": c.book_sync,
                "sequence_check": c.sequence_check,
                "checksum": c.checksum,
                "markets": sorted(c.markets),
                "ws_url": x.ws_url,
                "rest_url": x.rest_url,
            }
        )
    return pl.DataFrame(rows, schema_overrides={"rest_url": pl.String})
