"""HTX (Huobi) market WebSocket: gzip frames, JSON ping/pong, trades, MBP books (seqNum chain over a req refresh),
swap high_freq books (version chain), BBO; the REST history of the latest trades."""

from ._book import MBP_CHANNELS, HtxBookBuilder, HtxDepthBuilder, HtxMbpBuilder, HtxSession, HtxStepBuilder, req_message
from ._exchange import FEED_PATH, HtxExchange, Market
from ._history import (
    HTX_COINM_HISTORY_PATH,
    HTX_HISTORY_LIMIT,
    HTX_HISTORY_MAX,
    HTX_SPOT_HISTORY_PATH,
    HTX_SWAP_HISTORY_PATH,
    HtxTradeHistory,
)
from ._wire import gunzip_text, gzip_text, plain_decimal

__all__ = [
    "FEED_PATH",
    "HTX_COINM_HISTORY_PATH",
    "HTX_HISTORY_LIMIT",
    "HTX_HISTORY_MAX",
    "HTX_SPOT_HISTORY_PATH",
    "HTX_SWAP_HISTORY_PATH",
    "MBP_CHANNELS",
    "HtxBookBuilder",
    "HtxDepthBuilder",
    "HtxExchange",
    "HtxMbpBuilder",
    "HtxSession",
    "HtxStepBuilder",
    "HtxTradeHistory",
    "Market",
    "gunzip_text",
    "gzip_text",
    "plain_decimal",
    "req_message",
]
