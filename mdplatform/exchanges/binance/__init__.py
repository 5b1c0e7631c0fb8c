"""Binance spot, USD-M and COIN-M futures: streams in the URL, diff depth over a REST snapshot, trade history."""

from ._exchange import BinanceBookBuilder, BinanceExchange, BinanceSession, split_quote
from ._history import BinanceRestSpec, BinanceTradeHistory, binance_rest_spec

__all__ = [
    "BinanceBookBuilder",
    "BinanceExchange",
    "BinanceRestSpec",
    "BinanceSession",
    "BinanceTradeHistory",
    "binance_rest_spec",
    "split_quote",
]
