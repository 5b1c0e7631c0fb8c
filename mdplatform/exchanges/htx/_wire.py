"""HTX wire basics shared by the exchange, its books and its replay: gzip frames, topics, routes, exact numbers.

Followed (checked 2026-12 with the documentation search): HTX Public WebSocket API documentation (the spot
"Websocket Market Data / Introduction": "All return data of websocket Market APIs are compressed with GZIP", the
heartbeat ``{"ping": t}`` answered by ``{"pong": t}``, sub/unsub/req requests and their ``subbed``/``unsubbed`` acks,
the error codes); the USDT-margined swap market WebSocket reference (wss://api.hbdm.com/linear-swap-ws) alike.

Topics are ``market.$symbol.$rest``; a frame's route is (``$rest``, ``$symbol``): ("trade.detail", "btcusdt"),
("mbp.150", "btcusdt"), ("depth.size_150.high_freq", "BTC-USDT"). A ``req`` reply (``{"id":..,"rep":"market..."}``)
routes like a push of its topic, so a book snapshot asked over the WebSocket reaches the book's session and lands
beside the updates it is spliced with. Pings, acks and errors are "control".

HTX writes prices and sizes as JSON numbers (``9.2E-7``, ``4.0E7``, ``2.2569881997133624986364029626731768237``):
they are read as the text the exchange sent, never through a float (``plain_decimal`` turns exponent notation into
the same decimal digits).
"""

from __future__ import annotations

import gzip
import zlib

import polars as pl

from ...contract import Route

__all__ = [
    "CONTROL",
    "TOPIC_PREFIX",
    "gunzip_text",
    "gzip_text",
    "plain_decimal",
    "route_frame",
    "split_topic",
    "topic",
]

CONTROL: Route = ("control", "")
TOPIC_PREFIX = "market."
_CH = '{"ch":"market.'
_CH_LEN = len(_CH)
_CH_ANY = '"ch":"market.'
_REP = '"rep":"market.'
#: gzip's magic number: what every HTX frame starts with
_GZIP_MAGIC = b"\x1f\x8b"


def topic(channel: str, symbol: str) -> str:
    """``market.$symbol.$channel`` (HTX's own names)."""
    return f"{TOPIC_PREFIX}{symbol}.{channel}"


def split_topic(name: str) -> Route | None:
    """``market.btcusdt.mbp.150`` -> ("mbp.150", "btcusdt"); None when not a market topic."""
    if not name.startswith(TOPIC_PREFIX):
        return None
    symbol, sep, channel = name[len(TOPIC_PREFIX) :].partition(".")
    return (channel, symbol) if sep and symbol and channel else None


def gunzip_text(data: bytes) -> str | None:
    """The text of one gzip-compressed frame; None for data that is not gzip (raises on a damaged gzip stream)."""
    if not data.startswith(_GZIP_MAGIC):
        return None
    return zlib.decompress(data, 47).decode()  # 47: gzip header expected (32) with the largest window (15)


def gzip_text(text: str) -> bytes:
    """``text`` as HTX sends it: gzip (mtime 0, so one text always gives the same bytes)."""
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def route_frame(frame: str) -> Route:
    """(channel, symbol) of a decoded frame, with string operations only."""
    if frame.startswith(_CH):
        dot = frame.find(".", _CH_LEN)
        end = frame.find('"', _CH_LEN)
        if 0 < dot < end:
            return frame[dot + 1 : end], frame[_CH_LEN:dot]
        return CONTROL
    if frame.startswith('{"ping"') or '"subbed"' in frame or '"unsubbed"' in frame:
        return CONTROL
    for marker in (_REP, _CH_ANY):  # a req reply; a push with its keys in another order
        i = frame.find(marker)
        if i >= 0:
            start = i + len(marker)
            dot = frame.find(".", start)
            end = frame.find('"', start)
            if 0 < dot < end:
                return frame[dot + 1 : end], frame[start:dot]
    return CONTROL


def _zeros(n: pl.Expr) -> pl.Expr:
    return pl.lit("0").repeat_by(n.clip(lower_bound=0)).list.join("")


def plain_decimal(value: pl.Expr) -> pl.Expr:
    """A JSON number's text as a plain decimal string, digit for digit: ``9.2E-7`` -> ``0.00000092``, ``4.0E7`` ->
    ``40000000``; text without an exponent is returned as is (a sign or anything else is left for the decimal checks
    to refuse)."""
    parts = value.str.extract_groups(r"^([0-9]+)(?:\.([0-9]*))?[eE]([-+]?[0-9]+)$")
    whole = parts.struct.field("1")
    frac = parts.struct.field("2").fill_null("")
    exp = parts.struct.field("3").cast(pl.Int64, strict=False)
    digits = whole + frac
    point = whole.str.len_chars().cast(pl.Int64) + exp  # where the decimal point falls in ``digits``
    n = digits.str.len_chars().cast(pl.Int64)
    shifted = (
        pl.when(point <= 0)
        .then(pl.lit("0.") + _zeros(-point) + digits)
        .when(point >= n)
        .then(digits + _zeros(point - n))
        .otherwise(digits.str.slice(0, point) + pl.lit(".") + digits.str.slice(point))
    )
    return pl.when(whole.is_null() | exp.is_null() | (exp.abs() > 64)).then(value).otherwise(shifted)
