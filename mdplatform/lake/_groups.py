"""Channel groups: within every raw file, the rows of each group sit in row groups of their own, so a read of one
group's channels (an hour's trades, a book's frames) skips the other groups' bytes.

The groups come from the exchange registry: ``trades`` (``Capabilities.trade_channels``), ``books`` (the
``book_channels`` plus the channels the exchange's book builder reads, e.g. Binance ``depth`` and the REST
``depthSnapshot``: a book is rebuilt from both, interleaved in receive order) and ``other`` (tickers, ``control``,
``binary``, and every channel of an exchange the registry does not know). Each row group holds one group's rows in
the order they were received; ``GROUPS_KEY`` in the file's key-value metadata names the group of each row group.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import orjson
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "BOOKS",
    "GROUPS",
    "GROUPS_KEY",
    "OTHER",
    "TRADES",
    "channel_groups",
    "group_ids",
    "groups_of",
    "row_group_groups",
]

TRADES = "trades"
BOOKS = "books"
OTHER = "other"
#: in the order a file's groups are written when they are written at once
GROUPS: tuple[str, ...] = (TRADES, BOOKS, OTHER)
#: Parquet key-value metadata: JSON list, the group of each row group
GROUPS_KEY = b"mdp.groups"


@functools.cache
def channel_groups(exchange: str) -> tuple[frozenset[str], frozenset[str]]:
    """(trade channels, book channels) of a registry exchange; two empty sets for one it does not know."""
    from ..exchanges import EXCHANGES

    x = EXCHANGES.get(exchange)
    if x is None:
        return frozenset(), frozenset()
    caps = x.capabilities
    books = set(caps.book_channels)
    builder = getattr(x, "book_builder", None)
    if callable(builder):
        books |= builder("", keep_raw=False).channels
    return frozenset(caps.trade_channels), frozenset(books)


def groups_of(exchange: str, channels: Iterable[str]) -> set[str]:
    """The groups holding rows of ``channels`` of ``exchange``."""
    trades, books = channel_groups(exchange)
    return {TRADES if c in trades else BOOKS if c in books else OTHER for c in channels}


def group_ids(exchange: str, channel: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Index into ``GROUPS`` of each row of one exchange's ``channel`` column (int8)."""
    trades, books = channel_groups(exchange)
    ids = pc.if_else(
        pc.is_in(channel, pa.array(sorted(trades), pa.string())),
        pa.scalar(0, pa.int8()),
        pc.if_else(
            pc.is_in(channel, pa.array(sorted(books), pa.string())), pa.scalar(1, pa.int8()), pa.scalar(2, pa.int8())
        ),
    )
    return ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids


def row_group_groups(metadata: dict[bytes, bytes] | None, row_groups: int) -> Sequence[str] | None:
    """The group of each of a file's row groups from its key-value metadata; None when the file does not say
    (written before groups, or not a raw file): every row group may hold any channel."""
    raw = (metadata or {}).get(GROUPS_KEY)
    if raw is None:
        return None
    names = orjson.loads(raw)
    return names if isinstance(names, list) and len(names) == row_groups else None
