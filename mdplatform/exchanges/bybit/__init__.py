"""Bybit v5 public channels (spot, linear perpetuals, inverse): publicTrade, orderbook.{depth} with the ``u`` chain,
tickers and kline.1 recorded raw; REST recent-trade history (the last 60/1,000 trades only)."""

from ._book import BOOK_DEPTHS, BybitBookBuilder
from ._exchange import ARGS_PER_REQUEST, BybitExchange, BybitSession, Market
from ._history import BYBIT_HISTORY_PATH, HISTORY_DEPTH, BybitTradeHistory, HistoryHorizon, bybit_rest_limit

__all__ = [
    "ARGS_PER_REQUEST",
    "BOOK_DEPTHS",
    "BYBIT_HISTORY_PATH",
    "HISTORY_DEPTH",
    "BybitBookBuilder",
    "BybitExchange",
    "BybitSession",
    "BybitTradeHistory",
    "HistoryHorizon",
    "Market",
    "bybit_rest_limit",
]
