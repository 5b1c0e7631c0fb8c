"""A price-level (L2) order book, independent of any exchange's wire format."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Sequence
from typing import Literal

__all__ = ["L2Book", "Level", "RawLevel", "Side"]

Side = Literal["bid", "ask"]
#: (price, size)
Level = tuple[float, float]
#: (price, size) exactly as the exchange wrote them (checksums are computed over these strings)
RawLevel = tuple[str, str]

_INF = float("inf")


class _BookSide:
    """One side: size per price plus a sorted key list whose first element is the best price.

    Bids are keyed by the negated price so both sides sort ascending best-first and share one code path.
    A sorted list with bisect beats a tree here: books hold a few thousand levels, inserts are rare next to
    size changes on existing levels, and ``list.insert`` on that scale is a short memmove.
    """

    __slots__ = ("keep_raw", "keys", "raw", "sign", "sizes")

    def __init__(self, sign: float, keep_raw: bool) -> None:
        self.sign = sign
        self.keep_raw = keep_raw
        self.sizes: dict[float, float] = {}
        self.keys: list[float] = []
        self.raw: dict[float, RawLevel] = {}

    def clear(self) -> None:
        self.sizes.clear()
        self.keys.clear()
        self.raw.clear()

    def set(self, price: str | float, size: str | float) -> None:
        p = float(price)
        s = float(size)
        # float() accepts "NaN", "inf" and signs, which no exchange means: a level must be a finite positive price
        # and a finite size >= 0 (both comparisons are False for NaN, so this is the whole check)
        if not 0.0 < p < _INF:
            raise ValueError(f"price {price!r} is not a finite positive number")
        if not 0.0 <= s < _INF:
            raise ValueError(f"size {size!r} (at price {price!r}) is not a finite number >= 0")
        sizes = self.sizes
        if s == 0.0:
            if p in sizes:
                del sizes[p]
                keys = self.keys
                del keys[bisect_left(keys, self.sign * p)]
                if self.keep_raw:
                    del self.raw[p]
            # deleting an unknown level is normal (Binance documents it): nothing to do
            return
        if p not in sizes:
            insort(self.keys, self.sign * p)
        sizes[p] = s
        if self.keep_raw:
            self.raw[p] = (str(price), str(size))

    def apply(self, levels: Iterable[Sequence[str | float]]) -> None:
        for level in levels:
            self.set(level[0], level[1])

    def best(self) -> Level | None:
        if not self.keys:
            return None
        p = self.sign * self.keys[0]
        return (p, self.sizes[p])

    def top(self, n: int | None) -> list[Level]:
        sign, sizes = self.sign, self.sizes
        keys = self.keys if n is None else self.keys[:n]
        return [(sign * k, sizes[sign * k]) for k in keys]

    def within(self, bound: float) -> list[Level]:
        # bids: price >= bound <=> -price <= -bound; asks: price <= bound; both: key <= sign * bound
        sign, sizes = self.sign, self.sizes
        return [(sign * k, sizes[sign * k]) for k in self.keys[: bisect_right(self.keys, sign * bound)]]

    def top_raw(self, n: int | None) -> list[RawLevel]:
        if not self.keep_raw:
            raise ValueError("this book does not keep raw strings: create it with L2Book(keep_raw=True)")
        sign, raw = self.sign, self.raw
        keys = self.keys if n is None else self.keys[:n]
        return [raw[sign * k] for k in keys]

    def truncate(self, depth: int) -> None:
        sign = self.sign
        for k in self.keys[depth:]:
            p = sign * k
            del self.sizes[p]
            self.raw.pop(p, None)
        del self.keys[depth:]


class L2Book:
    """Aggregated price levels of one instrument.

    Sizes are absolute (an update replaces the level; size 0 removes it), which is what every exchange
    covered here sends. A level whose price is not finite and positive, or whose size is not finite and >= 0
    ("NaN", "inf", "-1"), raises ValueError naming the value; levels before it in the same call were applied, so
    the book is then in an unknown state and should be loaded again. ``update_id`` and ``ts`` (ns) are whatever
    sequence/time the feeding code tracks. With ``keep_raw=True`` the price/size strings are kept for checksum
    verification (OKX, Kraken).
    """

    __slots__ = ("_asks", "_bids", "symbol", "ts", "update_id")

    def __init__(self, symbol: str = "", *, keep_raw: bool = False) -> None:
        self.symbol = symbol
        self.update_id: int | None = None
        self.ts: int | None = None
        self._bids = _BookSide(-1.0, keep_raw)
        self._asks = _BookSide(1.0, keep_raw)

    def __repr__(self) -> str:
        return (
            f"L2Book({self.symbol!r}, bids={len(self._bids.keys)}, asks={len(self._asks.keys)}, "
            f"best_bid={self.best_bid()}, best_ask={self.best_ask()}, update_id={self.update_id})"
        )

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self.update_id = None
        self.ts = None

    def load(
        self,
        bids: Iterable[Sequence[str | float]],
        asks: Iterable[Sequence[str | float]],
        *,
        update_id: int | None = None,
        ts: int | None = None,
    ) -> None:
        """Replace the whole book with a snapshot."""
        self.clear()
        self.apply(bids, asks, update_id=update_id, ts=ts)

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
        self._side(side).set(price, size)

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

    def within(self, side: Side, bound: float) -> list[Level]:
        """The levels of ``side`` at ``bound`` or better (bids priced >= bound, asks <= bound), best first."""
        return self._side(side).within(bound)

    def raw_bids(self, n: int | None = None) -> list[RawLevel]:
        return self._bids.top_raw(n)

    def raw_asks(self, n: int | None = None) -> list[RawLevel]:
        return self._asks.top_raw(n)

    def size_at(self, side: Side, price: float) -> float:
        return self._side(side).sizes.get(price, 0.0)

    def depth(self) -> tuple[int, int]:
        """(number of bid levels, number of ask levels)."""
        return len(self._bids.keys), len(self._asks.keys)

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
