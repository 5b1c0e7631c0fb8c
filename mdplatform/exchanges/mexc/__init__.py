"""MEXC spot v3 public WebSocket (protocol buffers, landed as their JSON): aggregated deals, aggregated depth diffs over
a REST snapshot with the fromVersion/toVersion chain, aggregated book ticker; REST recent trades (no ids, proves
nothing complete)."""

from ._book import SNAPSHOT_CHANNEL, MexcBookBuilder
from ._exchange import BOOK_TICKER, DEALS, DEPTH, KLINE, STREAMS_PER_CONNECTION, MexcExchange, MexcSession, stream_name
from ._history import HISTORY_DEPTH, MEXC_TRADES_PATH, HistoryHorizon, MexcTradeHistory, mexc_rest_limit
from ._proto import decode as decode_push
from ._proto import encode as encode_push

__all__ = [
    "BOOK_TICKER",
    "DEALS",
    "DEPTH",
    "HISTORY_DEPTH",
    "KLINE",
    "MEXC_TRADES_PATH",
    "SNAPSHOT_CHANNEL",
    "STREAMS_PER_CONNECTION",
    "HistoryHorizon",
    "MexcBookBuilder",
    "MexcExchange",
    "MexcSession",
    "MexcTradeHistory",
    "decode_push",
    "encode_push",
    "mexc_rest_limit",
    "stream_name",
]
