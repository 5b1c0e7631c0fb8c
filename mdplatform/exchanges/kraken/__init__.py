"""Kraken spot WebSocket v2: trade (contiguous ids), book with CRC32 checksums, ticker, ohlc; REST Trades history."""

from ._book import KrakenBookBuilder, KrakenSession
from ._exchange import BOOK_DEPTHS, KrakenExchange
from ._history import KRAKEN_REST_LIMIT, KRAKEN_TRADES_PATH, KrakenTradeHistory, rest_pair
from ._wire import CHECKSUM_DEPTH, exact_loads, kraken_checksum, rfc3339, rfc3339_ns

__all__ = [
    "BOOK_DEPTHS",
    "CHECKSUM_DEPTH",
    "KRAKEN_REST_LIMIT",
    "KRAKEN_TRADES_PATH",
    "KrakenBookBuilder",
    "KrakenExchange",
    "KrakenSession",
    "KrakenTradeHistory",
    "exact_loads",
    "kraken_checksum",
    "rest_pair",
    "rfc3339",
    "rfc3339_ns",
]
