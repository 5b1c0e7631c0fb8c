"""Small helpers shared by the Binance test modules."""

from __future__ import annotations

from mdplatform.exchanges import get_exchange
from mdplatform.exchanges.binance import BinanceExchange


def binance(xid: str) -> BinanceExchange:
    x = get_exchange(xid)
    assert isinstance(x, BinanceExchange)
    return x


def is_snapshot(frame: str) -> bool:
    return frame.startswith('{"lastUpdateId"')
