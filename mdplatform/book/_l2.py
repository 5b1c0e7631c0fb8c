"""A price-level (L2) order book, independent of any exchange's wire format."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

__all__ = ["L2Book", "Level", "RawLevel", "Side"]

Side = Literal["bid", "ask"]
#: (price, size)
Level = tuple[float, float]
#: (price, size) exactly as the exchange wrote them (checksums are computed over these strings)
RawLevel = tuple[str, str]

_INF = float("inf")


#: at most this many new prices are merged into the sorted keys one by one; more are appended and sorted in one go
_FEW_PENDING = 8


def _invalid(price: str | float, size: str | float) -> ValueError:
    # float() accepts "NaN", "inf" and signs, which no exchange means: a price must be finite and positive and a
    # size finite and >= 0 (every comparison is False for NaN); the price is named first when both are wrong
    if not 0.0 < float(price) < _INF:
        return ValueError(f"price {price!r} is not a finite positive number")
    return ValueError(f"size {size!r} (at price {price!r}) is not a finite number >= 0")


class _BookSide:
    """One side: the size at each price, and a sorted key list whose last element is the best price.

    Asks are keyed by the negated price so both sides sort ascending best-last and share one code path.

    Writes are the hot path (an offline rebuild applies millions of levels and reads the book a few times a second
    at most), so ordering is left to reads: a new price goes to ``pending`` and the next read merges it into
    ``keys``; a removed level stays listed with size 0.0 (a tombstone) until a read passes over it or tombstones
    make up two thirds of the side (``_purge``). Best-last because the churn is at the top of the book: merging or
    dropping keys there moves only the few after them. Every price in ``sizes`` is listed exactly once, in ``keys``
    (as ``sign * price``) or in ``pending`` (as the price).

    With ``keep_raw`` the last level given at each listed price is kept as given (not copied: callers must not
    change it afterwards); ``top_raw`` makes strings of it only when read.
    """

    __slots__ = ("dead", "keys", "pending", "raw", "sign", "sizes")

    def __init__(self, sign: float, keep_raw: bool) -> None:
        self.sign = sign
        #: size by price; 0.0: removed, still listed
        self.sizes: dict[float, float] = {}
        self.keys: list[float] = []
        #: prices listed since the last read, not yet in ``keys``
        self.pending: list[float] = []
        #: tombstones in ``sizes``
        self.dead = 0
        #: the level ``[price, size, ...]`` by listed price (None: not kept)
        self.raw: dict[float, Sequence[str | float]] | None = {} if keep_raw else None

    def clear(self) -> None:
        self.sizes.clear()
        self.keys.clear()
        self.pending.clear()
        self.dead = 0
        if self.raw is not None:
            self.raw.clear()

    def apply(self, levels: Iterable[Sequence[str | float]]) -> None:
        # one loop per list with everything bound to locals: a method call and attribute lookups per level would
        # cost as much as the level's own work. A listed price was checked when it was listed: only new ones are.
        sizes, raw, append = self.sizes, self.raw, self.pending.append
        dead = 0
        try:
            for level in levels:
                price = level[0]
                size = level[1]
                p = float(price)
                s = float(size)
                if s == 0.0:
                    if sizes.get(p):  # a live level (a tombstone is 0.0, an unknown price None)
                        sizes[p] = 0.0
                        dead += 1
                    elif not 0.0 < p < _INF:
                        raise _invalid(price, size)
                    # otherwise an unknown or already removed level, which is normal (Binance documents it)
                    continue
                if not 0.0 < s < _INF:
                    raise _invalid(price, size)
                if p not in sizes:
                    if not 0.0 < p < _INF:
                        raise _invalid(price, size)
                    append(p)
                elif not sizes[p]:
                    dead -= 1  # back at a price still listed
                sizes[p] = s
                if raw is not None:
                    raw[p] = level
        finally:
            self.dead += dead
        # each purge costs a pass over the side: paid for by the len(sizes) / 3 levels removed since the last one
        if self.dead * 3 > 2 * len(sizes):
            self._purge()

    def count(self) -> int:
        return len(self.sizes) - self.dead

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(prices, sizes) of the live levels, unordered: whole-side arithmetic at C speed, no ordering needed."""
        n = len(self.sizes)
        prices = np.fromiter(self.sizes.keys(), np.float64, n)
        sizes = np.fromiter(self.sizes.values(), np.float64, n)
        if self.dead:
            live = sizes > 0.0
            return prices[live], sizes[live]
        return prices, sizes

    def size_at(self, price: float) -> float:
        return self.sizes.get(price, 0.0)

    def best(self) -> Level | None:
        keys, sizes, sign = self._order(), self.sizes, self.sign
        while keys:
            p = sign * keys[-1]
            s = sizes[p]
            if s:
                return (p, s)
            keys.pop()
            self._drop((p,))
        return None

    def worst(self, empty: float) -> float:
        """The worst price (``empty`` when the side is empty)."""
        sizes, sign = self.sizes, self.sign
        return next((sign * k for k in self._order() if sizes[sign * k]), empty)

    def top(self, n: int | None) -> list[Level]:
        sizes, sign = self.sizes, self.sign
        return [(sign * k, sizes[sign * k]) for k in self._best(n)]

    def within(self, bound: float) -> list[Level]:
        # bids: price >= bound; asks: price <= bound <=> -price >= -bound; both: key >= sign * bound
        keys, sizes, sign = self._order(), self.sizes, self.sign
        return [(sign * k, sizes[sign * k]) for k in reversed(self._tail(bisect_left(keys, sign * bound)))]

    def top_raw(self, n: int | None) -> list[RawLevel]:
        raw, sign = self.raw, self.sign
        if raw is None:
            raise ValueError("this book does not keep raw strings: create it with L2Book(keep_raw=True)")
        return [(str(raw[sign * k][0]), str(raw[sign * k][1])) for k in self._best(n)]

    def truncate(self, depth: int) -> None:
        self._purge()
        keys, sign = self.keys, self.sign
        cut = len(keys) - depth
        if cut > 0:
            self._drop([sign * k for k in keys[:cut]])
            self.dead += cut  # they were live
            del keys[:cut]

    def _drop(self, prices: Sequence[float]) -> None:
        """Forget the tombstones at ``prices`` (their keys are out of ``keys`` or about to be)."""
        sizes, raw = self.sizes, self.raw
        for p in prices:
            del sizes[p]
        if raw is not None:
            for p in prices:
                del raw[p]
        self.dead -= len(prices)

    def _order(self) -> list[float]:
        """``keys`` with ``pending`` merged in (tombstones still there)."""
        keys, pending, sign = self.keys, self.pending, self.sign
        if len(pending) > _FEW_PENDING:
            # timsort finds the sorted run of the old keys and merges the sorted new ones into it
            keys.extend([sign * p for p in pending])
            keys.sort()
        else:
            for p in pending:
                insort(keys, sign * p)
        pending.clear()
        return keys

    def _tail(self, i: int) -> list[float]:
        """The live keys among ``keys[i:]`` (merged: call ``_order`` first), worst first; the tombstones there are
        dropped."""
        keys, sizes, sign = self.keys, self.sizes, self.sign
        tail = keys[i:]
        live = [k for k in tail if sizes[sign * k]]
        if len(live) < len(tail):
            self._drop([sign * k for k in tail if not sizes[sign * k]])
            keys[i:] = live
        return live

    def _best(self, n: int | None) -> list[float]:
        """The keys of the best ``n`` live levels (all when None), best first."""
        keys = self._order()
        if n is None:
            return self._tail(0)[::-1]
        start = len(keys) - n
        while True:
            live = self._tail(max(start, 0))
            if len(live) >= n or start <= 0:
                return live[: -n - 1 : -1]
            # keys[start:] are all live now but fewer than n: take the missing ones from before them
            start -= n - len(live)

    def _purge(self) -> None:
        self._order()
        self._tail(0)


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

    __slots__ = ("_asks", "_bids", "ask_ceiling", "bid_floor", "symbol", "ts", "update_id")

    def __init__(self, symbol: str = "", *, keep_raw: bool = False) -> None:
        self.symbol = symbol
        self.update_id: int | None = None
        self.ts: int | None = None
        self.bid_floor: float | None = None
        self.ask_ceiling: float | None = None
        self._bids = _BookSide(1.0, keep_raw)
        self._asks = _BookSide(-1.0, keep_raw)

    def __repr__(self) -> str:
        return (
            f"L2Book({self.symbol!r}, bids={self._bids.count()}, asks={self._asks.count()}, "
            f"best_bid={self.best_bid()}, best_ask={self.best_ask()}, update_id={self.update_id})"
        )

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
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
        self.bid_floor = self._bids.worst(_INF)
        self.ask_ceiling = self._asks.worst(0.0)

    def apply(
        self,
        bids: Iterable[Sequence[str | float]],
        asks: Iterable[Sequence[str | float]],
        *,
        update_id: int | None = None,
        ts: int | None = None,
    ) -> None:
        """Apply level updates ``[price, size, ...]`` (extra fields ignored); size 0 removes the level."""
        self._bids.apply(bids)
        self._asks.apply(asks)
        if update_id is not None:
            self.update_id = update_id
        if ts is not None:
            self.ts = ts

    def set_level(self, side: Side, price: str | float, size: str | float) -> None:
        self._side(side).apply(((price, size),))

    def truncate(self, depth: int) -> None:
        """Keep only the best ``depth`` levels per side (for feeds that stop updating levels out of range)."""
        self._bids.truncate(depth)
        self._asks.truncate(depth)

    def best_bid(self) -> Level | None:
        return self._bids.best()

    def best_ask(self) -> Level | None:
        return self._asks.best()

    def bids(self, n: int | None = None) -> list[Level]:
        """The best ``n`` bids (all when None), best first."""
        return self._bids.top(n)

    def asks(self, n: int | None = None) -> list[Level]:
        """The best ``n`` asks (all when None), best first."""
        return self._asks.top(n)

    def arrays(self, side: Side) -> tuple[np.ndarray, np.ndarray]:
        """(prices, sizes) of one side's levels as numpy arrays, in no particular order (for samples that sum,
        bucket and rank the whole side: the sorted views cost a Python step per level)."""
        return self._side(side).arrays()

    def within(self, side: Side, bound: float) -> list[Level]:
        """The levels of ``side`` at ``bound`` or better (bids priced >= bound, asks <= bound), best first."""
        return self._side(side).within(bound)

    def raw_bids(self, n: int | None = None) -> list[RawLevel]:
        return self._bids.top_raw(n)

    def raw_asks(self, n: int | None = None) -> list[RawLevel]:
        return self._asks.top_raw(n)

    def size_at(self, side: Side, price: float) -> float:
        return self._side(side).size_at(price)

    def depth(self) -> tuple[int, int]:
        """(number of bid levels, number of ask levels)."""
        return self._bids.count(), self._asks.count()

    def mid(self) -> float | None:
        bid, ask = self._bids.best(), self._asks.best()
        if bid is None or ask is None:
            return None
        return (bid[0] + ask[0]) / 2.0

    def spread(self) -> float | None:
        bid, ask = self._bids.best(), self._asks.best()
        if bid is None or ask is None:
            return None
        return ask[0] - bid[0]

    def is_crossed(self) -> bool:
        bid, ask = self._bids.best(), self._asks.best()
        return bid is not None and ask is not None and bid[0] >= ask[0]

    def _side(self, side: Side) -> _BookSide:
        if side == "bid":
            return self._bids
        if side == "ask":
            return self._asks
        raise ValueError(f"side must be 'bid' or 'ask', not {side!r}")
