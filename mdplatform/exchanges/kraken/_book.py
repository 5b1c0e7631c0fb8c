"""Kraken v2 ``book``: one pair's L2 book kept from snapshots and updates, verified by the CRC32 checksum.

v2 books carry no sequence numbers: the checksum (of the top 10 levels, in every snapshot and update) is the only
proof that nothing was lost, so a mismatch is how a lost message shows. After each message the book is truncated
to the subscribed depth (docs "Book checksum (WebSocket v2)": levels that fall out of scope get no ``qty`` 0).
On a mismatch the book is dropped and updates are ignored until the next snapshot; live, the session then
unsubscribes and subscribes that pair alone, which brings a fresh snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...book import L2Book
from ...contract import CHECKSUM, SYNCED, EventKind, SessionAction, StreamEvent, Subscription, SyncState
from ._wire import CHECKSUM_DEPTH, exact_loads, kraken_checksum, rfc3339_ns

__all__ = ["BOOK", "KrakenBookBuilder", "KrakenSession"]

BOOK = "book"


def _levels(side: object) -> list[tuple[str, str]]:
    """``[{"price":..,"qty":..}, ...]`` -> (price, qty) texts; anything else is refused (a float would not be exact)."""
    if not isinstance(side, list):
        raise ValueError(f"book side is not a list: {side!r:.80}")
    out: list[tuple[str, str]] = []
    for level in side:
        if not isinstance(level, dict):
            raise ValueError(f"book level is not an object: {level!r:.80}")
        price, qty = level.get("price"), level.get("qty")
        if not isinstance(price, str) or not isinstance(qty, str):
            raise ValueError(f"book level without price and qty numbers: {level!r:.80}")
        out.append((price, qty))
    return out


class KrakenBookBuilder:
    """One pair's ``book`` under the live session's rules (``BookBuilder``). ``depth``: the subscribed depth;
    ``price_precision``/``qty_precision``: the pair's, when the wire text might lack trailing zeros (``_wire``)."""

    channels: frozenset[str] = frozenset({BOOK})

    def __init__(
        self,
        symbol: str,
        depth: int,
        *,
        price_precision: int | None = None,
        qty_precision: int | None = None,
    ) -> None:
        self.symbol = symbol
        self.depth = depth
        self.price_precision = price_precision
        self.qty_precision = qty_precision
        self.book = L2Book(symbol, keep_raw=True)
        self.valid = False
        self.checksums_verified = 0

    def checksum(self) -> int:
        book = self.book
        return kraken_checksum(
            book.raw_bids(CHECKSUM_DEPTH),
            book.raw_asks(CHECKSUM_DEPTH),
            price_precision=self.price_precision,
            qty_precision=self.qty_precision,
        )

    def apply_item(self, kind: object, d: Mapping[str, Any]) -> tuple[EventKind, str] | None:
        """Apply one element of a book message's ``data``; (event kind, what went wrong) when the book can no
        longer be trusted. Raises ValueError on levels it cannot read (the book is then dropped)."""
        book = self.book
        try:
            bids, asks = _levels(d.get("bids", [])), _levels(d.get("asks", []))
            if kind == "snapshot":
                book.load(bids, asks)
            elif kind == "update":
                if not self.valid:
                    return None  # waiting for the snapshot a (re)subscribe brings
                book.apply(bids, asks)
            else:
                raise ValueError(f"book message of unknown type {kind!r}")
        except ValueError:
            self._drop()
            raise
        book.truncate(self.depth)
        ts = d.get("timestamp")
        if isinstance(ts, str):
            book.ts = rfc3339_ns(ts)
        received = d.get("checksum")
        if received is not None:
            computed = self.checksum()
            if not isinstance(received, int) or computed != received:
                self._drop()
                return CHECKSUM, f"checksum mismatch: received {received}, computed {computed}"
            self.checksums_verified += 1
        if kind == "snapshot":
            self.valid = True
        return None

    def _drop(self) -> None:
        self.book.clear()
        self.valid = False

    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        msg = exact_loads(payload)
        kind = msg.get("type")
        event: StreamEvent | None = None
        for d in msg.get("data") or ():
            if d.get("symbol", self.symbol) != self.symbol:
                continue
            problem = self.apply_item(kind, d)
            if problem is not None:
                return StreamEvent(problem[0], channel, self.symbol, problem[1])
            if kind == "snapshot":
                event = StreamEvent(SYNCED, channel, self.symbol)
        return event

    def checkpoint(self) -> dict[str, Any]:
        return {"depth": self.depth}

    def restore(
        self, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]], state: Mapping[str, Any]
    ) -> None:
        self.book.load(bids, asks)
        self.valid = True


class KrakenSession:
    """Per-connection ``book`` validation: a ``KrakenBookBuilder`` per pair; a checksum mismatch reports
    ``checksum`` and resubscribes that pair alone (``resubscribe(sub)`` gives the frames: unsubscribe, subscribe)."""

    def __init__(
        self,
        subs: Sequence[Subscription],
        builder: Callable[[str], KrakenBookBuilder],
        resubscribe: Callable[[Subscription], tuple[str, ...]],
    ) -> None:
        self._builder = builder
        self._resubscribe = resubscribe
        self._books: dict[str, KrakenBookBuilder] = {}
        self._state: dict[str, SyncState] = {s.symbol: "buffering" for s in subs if s.channel == BOOK}
        #: validation failures so far
        self.errors = 0

    @property
    def checksums_verified(self) -> int:
        return sum(b.checksums_verified for b in self._books.values())

    def book(self, symbol: str) -> L2Book | None:
        b = self._books.get(symbol)
        return b.book if b is not None and b.valid else None

    def on_frame(self, channel: str, symbol: str, frame: str) -> SessionAction | None:
        if channel != BOOK:
            return None
        msg = exact_loads(frame)
        kind = msg.get("type")
        events: list[StreamEvent] = []
        for d in msg.get("data") or ():
            pair = str(d.get("symbol") or symbol)
            b = self._books.get(pair)
            if b is None:
                b = self._books[pair] = self._builder(pair)
            problem = b.apply_item(kind, d)
            if problem is not None:
                return self._fail(pair, *problem)
            if kind == "snapshot":
                self._state[pair] = "synced"
                events.append(StreamEvent(SYNCED, BOOK, pair))
        return SessionAction(events=tuple(events)) if events else None

    def on_snapshot(self, symbol: str, body: str) -> SessionAction | None:
        return None  # snapshots arrive on the WebSocket

    def sync_state(self) -> dict[str, str]:
        return dict(self._state)

    def _fail(self, pair: str, kind: EventKind, problem: str) -> SessionAction:
        self.errors += 1
        self._state[pair] = "resyncing"
        return SessionAction(
            error=f"kraken book {pair}: {problem}; resubscribing",
            send=self._resubscribe(Subscription(BOOK, pair)),
            events=(StreamEvent(kind, BOOK, pair, problem),),
        )
