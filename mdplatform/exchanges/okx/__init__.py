"""OKX v5 public channels: trades, books (seqId chain, checksum, REST snapshot splice), tickers; REST trade history."""

from ._book import MAX_CHECKSUM_FAILURES, REST_BOOKS_PATH, SNAPSHOT_CHANNEL, book_depth
from ._exchange import CHECKSUM_DEPTH, OkxBookBuilder, OkxExchange, OkxSession, okx_checksum
from ._history import OKX_HISTORY_LIMIT, OKX_HISTORY_PATH, OkxTradeHistory

__all__ = [
    "CHECKSUM_DEPTH",
    "MAX_CHECKSUM_FAILURES",
    "OKX_HISTORY_LIMIT",
    "OKX_HISTORY_PATH",
    "REST_BOOKS_PATH",
    "SNAPSHOT_CHANNEL",
    "OkxBookBuilder",
    "OkxExchange",
    "OkxSession",
    "OkxTradeHistory",
    "book_depth",
    "okx_checksum",
]
