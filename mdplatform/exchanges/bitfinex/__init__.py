"""Bitfinex public WebSocket v2: book (P0, checksums, connection sequence numbers), trades (te/tu), ticker; REST
trade history."""

from ._book import BOOK_CHANNEL, BitfinexBookBuilder, BitfinexSession, book_subscribe, sequence_breaks, tail_seq
from ._exchange import CONF_FLAGS, BitfinexExchange
from ._history import BITFINEX_HISTORY_LIMIT, BITFINEX_REST_BASE, BitfinexTradeHistory, history_path
from ._wire import CHECKSUM_DEPTH, OB_CHECKSUM, SEQ_ALL, bitfinex_checksum, exact, plain, split_seq

__all__ = [
    "BITFINEX_HISTORY_LIMIT",
    "BITFINEX_REST_BASE",
    "BOOK_CHANNEL",
    "CHECKSUM_DEPTH",
    "CONF_FLAGS",
    "OB_CHECKSUM",
    "SEQ_ALL",
    "BitfinexBookBuilder",
    "BitfinexExchange",
    "BitfinexSession",
    "BitfinexTradeHistory",
    "bitfinex_checksum",
    "book_subscribe",
    "exact",
    "history_path",
    "plain",
    "sequence_breaks",
    "split_seq",
    "tail_seq",
]
