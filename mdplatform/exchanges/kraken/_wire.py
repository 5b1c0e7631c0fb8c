"""Kraken WebSocket v2 text, read exactly: JSON numbers kept as their digits, RFC 3339 times, the book checksum.

v2 sends prices and quantities as JSON numbers ("price":45283.5,"qty":0.10000000). A JSON parser turns them into
floats (orjson, polars), which loses digits and the trailing zeros the checksum is computed over, so before
parsing the ``price`` and ``qty`` numbers are quoted: they arrive as the exchange's own text, exactly.

Checksum (docs.kraken.com "Book checksum (WebSocket v2)", guides/websockets/book-checksum-v2, and the v1 page
guides/websockets/book-checksum-v1, which shares the algorithm): for each of the top 10 asks (price low to high)
then the top 10 bids (high to low), the price text and then the qty text with the decimal point removed and leading
zeros stripped are appended to one string; its CRC32, as an unsigned 32-bit integer, is the ``checksum``. v2 puts
the pair's full precision on the wire (the docs' tip: decode with a decimal or string decoder); where a feed's
numbers lost trailing zeros, ``price_precision``/``qty_precision`` (the pair's, from the ``instrument`` channel)
format each value first, as the docs' FIX page describes for float feeds.
"""

from __future__ import annotations

import calendar
import re
import time
import zlib
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

__all__ = [
    "CHECKSUM_DEPTH",
    "POLARS_QUOTED",
    "POLARS_QUOTE_NUMBERS",
    "exact_loads",
    "kraken_checksum",
    "rfc3339",
    "rfc3339_ns",
]

#: levels per side the checksum covers, whatever the subscribed depth
CHECKSUM_DEPTH = 10

#: a JSON number after "price"/"qty": quoted so that a parser keeps its text
_NUMBER_FIELDS = re.compile(r'("(?:price|qty)"\s*:\s*)(-?[0-9][0-9.eE+-]*)')
#: the same for polars (``str.replace_all``), trade ids too (decoded as text, then checked to be integers)
POLARS_QUOTE_NUMBERS = r'("(?:price|qty|trade_id)"\s*:\s*)(-?[0-9][0-9.eE+-]*)'
POLARS_QUOTED = '${1}"${2}"'


def exact_loads(text: str | bytes) -> Any:
    """A v2 frame decoded with every ``price``/``qty`` as the exchange's digits (a str), never a float."""
    if isinstance(text, bytes):
        text = text.decode()
    return orjson.loads(_NUMBER_FIELDS.sub(r'\1"\2"', text))


def rfc3339_ns(text: str) -> int | None:
    """``2023-09-25T07:48:36.925533Z`` (or ``+00:00``) -> UTC ns; None when it is not such a time."""
    if len(text) < 20 or text[4] != "-" or text[10] != "T":
        return None
    try:
        secs = calendar.timegm(
            (int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]), int(text[17:19]))
        )
    except ValueError:
        return None
    rest = text[19:]
    frac = ""
    if rest.startswith("."):
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        frac, rest = rest[1:end], rest[end:]
        if not frac or len(frac) > 9:
            return None
    if rest not in ("Z", "+00:00"):
        return None
    return secs * 1_000_000_000 + int((frac + "000000000")[:9])


def rfc3339(ns: int) -> str:
    """UTC ns -> ``2023-09-25T07:48:36.925533Z``: microseconds, as Kraken writes them (nine digits only when the
    time has finer ones)."""
    secs, sub = divmod(ns, 1_000_000_000)
    frac = f"{sub:09d}"
    frac = frac[:6] if frac.endswith("000") else frac
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac}Z"


def _digits(text: str, precision: int | None) -> str:
    if precision is not None:
        try:
            text = format(Decimal(text).quantize(Decimal(1).scaleb(-precision)), "f")
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal number: {text!r}") from exc
    return text.replace(".", "").lstrip("0")


def kraken_checksum(
    bids: Sequence[tuple[str, str]],
    asks: Sequence[tuple[str, str]],
    *,
    price_precision: int | None = None,
    qty_precision: int | None = None,
) -> int:
    """The unsigned CRC32 of the top ``CHECKSUM_DEPTH`` asks then bids (each best first), formatted as documented
    (module doc): ``bids``/``asks`` are (price, qty) texts as the exchange wrote them."""
    parts: list[str] = []
    for side in (asks[:CHECKSUM_DEPTH], bids[:CHECKSUM_DEPTH]):
        for price, qty in side:
            parts.append(_digits(price, price_precision))
            parts.append(_digits(qty, qty_precision))
    return zlib.crc32("".join(parts).encode()) & 0xFFFFFFFF
