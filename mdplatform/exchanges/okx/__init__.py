"""OKX v5 public channels: trades, books with checksums, tickers; REST trade history."""

from ._exchange import CHECKSUM_DEPTH, OkxBookBuilder, OkxExchange, OkxSession, okx_checksum
from ._history import OKX_HISTORY_LIMIT, OKX_HISTORY_PATH, OkxTradeHistory

__all__ = [
    "CHECKSUM_DEPTH",
    "OKX_HISTORY_LIMIT",
    "OKX_HISTORY_PATH",
    "OkxBookBuilder",
    "OkxExchange",
    "OkxSession",
    "OkxTradeHistory",
    "okx_checksum",
]
