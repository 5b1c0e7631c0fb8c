"""KuCoin spot WebSocket wire details shared by the exchange, its book and its replay: topics, ids, times.

Pages followed (KuCoin API docs, https://www.kucoin.com/docs-new, checked 2026-12): "WebSocket / Base Info /
Introduction" (token, welcome, ``{"id":..,"type":"ping"}`` -> ``pong``, subscribe/ack), "Get Public Token -
Classic Spot/Margin" (``POST /api/v1/bullet-public``), the spot public channels "Orderbook - Increment"
(``/market/level2``), "Trade" (``/market/match``), "Ticker" (``/market/ticker``), "Klines" (``/market/candles``).

Every push is ``{"topic":"/market/<channel>:<symbol>","type":"message","subject":..,"data":{..}}`` (the 2021
recordings put ``"data"`` first and ``"topic"`` near the end: both layouts are routed). Control frames are
``{"id":..,"type":"welcome"|"ack"|"pong"|"error",..}``. The ``time`` fields differ in unit per channel: level2 and
ticker milliseconds (a JSON number), match nanoseconds (a string), candles nanoseconds (a number): a value of 16 or
more digits is taken as ns, a shorter one as ms.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import polars as pl

__all__ = [
    "BULLET_PATH",
    "CANDLE_TYPE",
    "CHANNELS",
    "HISTORY_PATH",
    "PING",
    "SNAPSHOT_PATH",
    "TOPIC_PREFIX",
    "TOPIC_SYMBOLS",
    "find_topic",
    "message_id",
    "route_topic",
    "time_ns",
    "times_ns",
    "topic_of",
]

#: the REST host's endpoints the platform uses
BULLET_PATH = "/api/v1/bullet-public"
SNAPSHOT_PATH = "/api/v1/market/orderbook/level2_100"
HISTORY_PATH = "/api/v1/market/histories"
#: our channel names are KuCoin's topic names: "/market/level2:BTC-USDT" is ("level2", "BTC-USDT")
CHANNELS = ("level2", "match", "ticker", "candles")
TOPIC_PREFIX = "/market/"
#: the candle interval recorded (``/market/candles:BTC-USDT_1min``); its stream is ("candles", "BTC-USDT")
CANDLE_TYPE = "1min"
#: "A topic supports up to 100 symbols" (and 509 "exceed max subscription count limitation of 100 per time")
TOPIC_SYMBOLS = 100
#: the application ping KuCoin wants every pingInterval (answered ``{"id":"ping","type":"pong"}``)
PING = '{"id":"ping","type":"ping"}'

_TOPIC_KEY = '"topic":"'
_TIME = re.compile(r'"time":"?(\d+)')
#: 16+ digits: a nanosecond time (match, candles); fewer: milliseconds (level2, ticker, REST snapshots)
_NS_DIGITS = 16


def topic_of(channel: str, symbols: Sequence[str]) -> str:
    """``/market/level2:BTC-USDT,ETH-USDT``; candles take one ``SYMBOL_1min`` per symbol."""
    if channel == "candles":
        names = [f"{s}_{CANDLE_TYPE}" for s in symbols]
    else:
        names = list(symbols)
    return f"{TOPIC_PREFIX}{channel}:{','.join(names)}"


def message_id(kind: str, topic: str) -> str:
    """A deterministic id for a (un)subscribe request: its ack echoes it, so the ack names the topic again."""
    return f"{kind[0]}{zlib.crc32(topic.encode()):08x}"


def route_topic(topic: str) -> tuple[str, str]:
    """("level2", "BTC-USDT") for "/market/level2:BTC-USDT"; candles drop their interval suffix."""
    head, _, symbol = topic.partition(":")
    channel = head.rpartition("/")[2]
    if channel == "candles":
        symbol = symbol.rpartition("_")[0] or symbol
    return channel, symbol


def time_ns(frame: str) -> int | None:
    """The first ``time`` of a frame in ns (ms or ns by its digits); None when it has none."""
    m = _TIME.search(frame)
    if m is None:
        return None
    digits = m.group(1)
    return int(digits) if len(digits) >= _NS_DIGITS else int(digits) * 1_000_000


def times_ns(frames: pl.Series) -> pl.Series:
    """``time_ns`` of many frames at once (Int64, null where absent)."""
    digits = frames.str.extract(_TIME.pattern, 1)
    value = digits.cast(pl.Int64, strict=False)
    return (
        pl.select(
            pl.when(digits.str.len_chars() >= _NS_DIGITS).then(value).otherwise(value * 1_000_000).alias(frames.name)
        )
        .to_series()
        .cast(pl.Int64)
    )


def find_topic(frame: str) -> str | None:
    """The ``topic`` of a push, by string search: at the start (today's layout) or near the end (2021's)."""
    if frame.startswith('{"topic":"'):
        start = 10
    else:
        i = frame.rfind(_TOPIC_KEY)
        if i < 0:
            return None
        start = i + len(_TOPIC_KEY)
    end = frame.find('"', start)
    return frame[start:end] if end > start else None
