"""Bitfinex v2 frames read exactly: numbers keep the exchange's text, the trailing sequence number, the checksum.

Bitfinex sends prices and amounts as JSON numbers (``0.0010262``, ``2e-8``, ``1.7023900800000002``): they are read
with ``json.loads(parse_float=str, parse_int=str)`` so every number stays the text the exchange wrote (never a
float), which the checksum needs too. ``plain`` turns an exponent form into a plain decimal exactly (``Decimal``).

Pages followed: "WebSocket Checksum" (https://docs.bitfinex.com/docs/ws-websocket-checksum) and the book guide it
links (Bitfinex blog "WebSocket checksums"): a signed CRC32 over ``price:amount`` of the top 25 bids and asks,
interleaved (bid 1, ask 1, bid 2, ask 2, ...; the longer side continues alone), amounts with their sign (asks
negative) as sent; "General" (https://docs.bitfinex.com/docs/ws-general) for ``conf`` flags (SEQ_ALL 65536: every
message carries a trailing per-connection sequence number; OB_CHECKSUM 131072).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "CHECKSUM_DEPTH",
    "OB_CHECKSUM",
    "SEQ_ALL",
    "bitfinex_checksum",
    "chan_id",
    "exact",
    "plain",
    "split_seq",
]

#: conf flags ("General": Configuration)
SEQ_ALL = 65536
OB_CHECKSUM = 131072
#: levels per side the checksum covers
CHECKSUM_DEPTH = 25

#: a level in text: (price, count, amount) as sent
RawTriple = tuple[str, str, str]


def exact(frame: str | bytes) -> Any:
    """A frame decoded with every number as its text (``"0.0010262"``, ``"232955"``)."""
    return json.loads(frame, parse_float=str, parse_int=str)


def chan_id(frame: str) -> str | None:
    """The channel id text of a data frame ``[chanId, ...]`` (string operations only); None for events."""
    if not frame.startswith("["):
        return None
    end = frame.find(",", 1)
    return frame[1:end].strip() if end > 1 else None


def split_seq(msg: list[Any], *, sequenced: bool | None = None) -> tuple[list[Any], int | None]:
    """(the message without its trailing sequence number, that number) of a decoded data frame.

    Shapes (``[chanId, ...]``): ``[c, [..]]`` data, ``[c, "hb"]``, ``[c, "cs", checksum]``, ``[c, "te"|"tu", [..]]``;
    with SEQ_ALL each one more element, the sequence number (an integer). ``sequenced`` None: told by the length.
    """
    if len(msg) < 2:
        return msg, None
    kind = msg[1]
    base = 3 if kind in ("cs", "te", "tu", "fte", "ftu") else 2
    if len(msg) > base and (sequenced is None or sequenced) and isinstance(msg[base], str) and msg[base].isdigit():
        return msg[:base], int(msg[base])
    return msg, None


def plain(text: str) -> str:
    """A JSON number's text as a plain decimal (``"2e-8"`` -> ``"0.00000002"``), exactly; other text unchanged."""
    if "e" not in text and "E" not in text:
        return text
    try:
        return format(Decimal(text), "f")
    except InvalidOperation:
        return text


def bitfinex_checksum(bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]]) -> int:
    """Signed CRC32 of ``bid1price:bid1amount:ask1price:ask1amount:...`` over the top 25 levels per side, on the
    texts as Bitfinex sent them (bids best first with positive amounts, asks best first with negative amounts)."""
    bids, asks = bids[:CHECKSUM_DEPTH], asks[:CHECKSUM_DEPTH]
    parts: list[str] = []
    for i in range(max(len(bids), len(asks))):
        if i < len(bids):
            parts += bids[i]
        if i < len(asks):
            parts += asks[i]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc
