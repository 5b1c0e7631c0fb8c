"""A price-level (L2) order book, independent of any exchange's wire format.

The levels live in a compiled ``Book`` (``_native.c``): per side, prices, sizes and (``keep_raw``) the exchange's
text in arrays sorted best last, so writes at the top move few elements and every read walks from the best level
without building anything from the whole book. Prices and sizes are the floats ``float()`` gives for the same
strings; sums run best first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

from ._native import Book

__all__ = ["L2Book", "Level", "RawLevel", "Side"]

Side = Literal["bid", "ask"]
#: (price, size)
Level = tuple[float, float]
#: (price, size) exactly as the exchange wrote them (checksums are computed over these strings)
RawLevel = tuple[str, str]

_INF = float("inf")
_SIDES = {"bid": 0, "ask": 1}


class L2Book:
    """Aggregated price levels of one instrument.

    Sizes are absolute (an update replaces the level; size 0 removes it), which is what every exchange
    covered here sends. A level whose price is not finite and positive, or whose size is not finite and >= 0
    ("NaN", "inf", "-1"), raises ValueError naming the value; levels before it in the same call were applied, so
    the book is then in an unknown state and should be loaded again. ``update_id`` and ``ts`` (ns) are whatever
    sequence/time the feeding code tracks. With ``keep_raw=True`` the price/size strings are kept for checksum
    verification (OKX, Kraken).

    ``bid_floor``/``ask_ceiling``: the price range the last snapshot (``load``) covered. A snapshot holds a limited
    number of levels (Binance REST: 1000, about 35 bp of BTC) and diffs only tell of levels that change, so beyond
    those bounds the book is partial: a level unchanged since the snapshot is unknown there. Readers that aggregate
    far from the top (depth bands, heatmaps) stop at them; None before any snapshot.
    """

    __slots__ = ("_book", "ask_ceiling", "bid_floor", "symbol", "ts", "update_id")

    def __init__(self, symbol: str = "", *, keep_raw: bool = False) -> None:
        self.symbol = symbol
        self.update_id: int | None = None
        self.ts: int | None = None
        self.bid_floor: float | None = None
        self.ask_ceiling: float | None = None
        self._book = Book(keep_raw)

    def __repr__(self) -> str:
        return (
            f"L2Book({self.symbol!r}, bids={self._book.count(0)}, asks={self._book.count(1)}, "
            f"best_bid={self.best_bid()}, best_ask={self.best_ask()}, update_id={self.update_id})"
        )

    @property
    def levels(self) -> Book:
        """The compiled levels (``_native.Book``), for readers and writers that go through them in bulk."""
        return self._book

    def clear(self) -> None:
        self._book.clear()
        self.update_id = None
        self.ts = None
        self.bid_floor = None
        self.ask_ceiling = None

    def load(
        self,
        bids: Iterable[Sequence[str | float]],
        asks: Iterable[Sequence[str | float]],
        *,
        update_id: int | None = None,
        ts: int | None = None,
    ) -> None:
        """Replace the whole book with a snapshot (its worst levels become ``bid_floor``/``ask_ceiling``)."""
        self.clear()
        self.apply(bids, asks, update_id=update_id, ts=ts)
        # an empty side of a snapshot says nothing about how far it reaches: nothing is known there
        floor, ceiling = self._book.worst(0), self._book.worst(1)
        self.bid_floor = _INF if floor is None else floor
        self.ask_ceiling = 0.0 if ceiling is None else ceiling

    def apply(
        self,
        bids: Iterable[Sequence[str | float]],
        asks: Iterable[Sequence[str | float]],
        *,
        update_id: int | None = None,
        ts: int | None = None,
    ) -> None:
        """Apply level updates ``[price, size, ...]`` (extra fields ignored); size 0 removes the level."""
        self._book.apply(bids, asks)
        if update_id is not None:
            self.update_id = update_id
        if ts is not None:
            self.ts = ts

    def set_level(self, side: Side, price: str | float, size: str | float) -> None:
        levels = ((price, size),)
        if _side(side) == 0:
            self._book.apply(levels, ())
        else:
            self._book.apply((), levels)

    def truncate(self, depth: int) -> None:
        """Keep only the best ``depth`` levels per side (for feeds that stop updating levels out of range)."""
        self._book.truncate(depth)

    def best_bid(self) -> Level | None:
        return self._book.best(0)

    def best_ask(self) -> Level | None:
        return self._book.best(1)

    def bids(self, n: int | None = None) -> list[Level]:
        """The best ``n`` bids (all when None), best first."""
        return self._book.top(0, n)

    def asks(self, n: int | None = None) -> list[Level]:
        """The best ``n`` asks (all when None), best first."""
        return self._book.top(1, n)

    def arrays(self, side: Side) -> tuple[np.ndarray, np.ndarray]:
        """(prices, sizes) of one side's levels as numpy arrays, best first."""
        prices, sizes = self._book.arrays(_side(side))
        return np.frombuffer(prices, np.float64), np.frombuffer(sizes, np.float64)

    def columns(self, side: Side, n: int | None) -> tuple[list[float], list[float]]:
        """([prices], [sizes]) of the best ``n`` levels of ``side`` (all when None), best first."""
        return self._book.columns(_side(side), n)

    def depth_sums(self, side: Side, bounds: list[float]) -> list[float]:
        """For each bound, the summed size of the levels of ``side`` at it or better (bids priced >= bound, asks
        <= bound), added best first (0.0 when there are none)."""
        return self._book.depth_sums(_side(side), bounds)

    def bucket_sizes(
        self, side: Side, bucket: float, edge: float, lo_k: int, hi_k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(k, summed size) arrays (int64, float64) of the price buckets ``lo_k <= k < hi_k`` of ``side`` that hold
        a level, k ascending: a level is in bucket ``floor(q + q * edge)``, ``q = price / bucket``; each bucket's
        sizes are added best first."""
        ks, sizes = self._book.buckets(_side(side), bucket, edge, lo_k, hi_k)
        return np.frombuffer(ks, np.int64), np.frombuffer(sizes, np.float64)

    def within(self, side: Side, bound: float) -> list[Level]:
        """The levels of ``side`` at ``bound`` or better (bids priced >= bound, asks <= bound), best first."""
        return self._book.within(_side(side), bound)

    def raw_bids(self, n: int | None = None) -> list[RawLevel]:
        return self._book.top_raw(0, n)

    def raw_asks(self, n: int | None = None) -> list[RawLevel]:
        return self._book.top_raw(1, n)

    def size_at(self, side: Side, price: float) -> float:
        return self._book.size_at(_side(side), price)

    def depth(self) -> tuple[int, int]:
        """(number of bid levels, number of ask levels)."""
        return self._book.count(0), self._book.count(1)

    def mid(self) -> float | None:
        bid, ask = self._book.best(0), self._book.best(1)
        if bid is None or ask is None:
            return None
        return (bid[0] + ask[0]) / 2.0

    def spread(self) -> float | None:
        bid, ask = self._book.best(0), self._book.best(1)
        if bid is None or ask is None:
            return None
        return ask[0] - bid[0]

    def is_crossed(self) -> bool:
        bid, ask = self._book.best(0), self._book.best(1)
        return bid is not None and ask is not None and bid[0] >= ask[0]


def _side(side: Side) -> int:
    try:
        return _SIDES[side]
    except (KeyError, TypeError):
        raise ValueError(f"side must be 'bid' or 'ask', not {side!r}") from None
