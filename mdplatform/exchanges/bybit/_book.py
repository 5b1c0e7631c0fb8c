"""Bybit v5 ``orderbook.{depth}.{symbol}`` books: the sync rules, shared by the live session and the offline rebuild.

Followed: https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook (v5, "Orderbook"). A subscription is
answered with a ``snapshot`` (the whole book of that depth), then ``delta`` pushes (absolute sizes; size "0" removes
the level). Receiving a ``snapshot`` resets the book, whenever it comes (Bybit resends one when its service needs to;
depth 1 sends snapshots only, and resends the same one, with the same ``u``, after 3 s without change). ``data.u`` is
the update id, contiguous in normal operation: a delta whose ``u`` is not the previous ``u`` + 1 means pushes were
lost (a gap). ``u`` = 1 means the service restarted: that push is the new whole book (overwrite the local one).
``data.seq`` is the cross sequence (shared with other topics, not contiguous: recorded, never checked); ``cts`` the
matching engine's time of the book, ``ts`` the market-data service's time (ms).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ...book import L2Book
from ...contract import GAP, SYNCED, EventKind, StreamEvent

__all__ = ["BOOK_DEPTHS", "BybitBookBuilder", "book_channel"]

#: ``orderbook.{depth}`` depths per market. The current docs list 1, 50, 200 and 1000 levels; linear served 500
#: before 1000 replaced it (the recording in tests/data/bybit is ``orderbook.500`` of 2024-12-01), so it is kept.
BOOK_DEPTHS: dict[str, tuple[int, ...]] = {
    "spot": (1, 50, 200, 1000),
    "linear": (1, 50, 200, 500, 1000),
    "inverse": (1, 50, 200, 500, 1000),
}


def book_channel(depth: int) -> str:
    return f"orderbook.{depth}"


class BybitBookBuilder:
    """One symbol's book of one ``orderbook.{depth}`` topic under Bybit's rules (see the module docstring).

    After a gap the book is dropped (``valid`` False) and deltas are ignored until the next snapshot (live, the
    session resubscribes that topic to get one).
    """

    def __init__(self, symbol: str, channels: frozenset[str], *, keep_raw: bool = True) -> None:
        self.symbol = symbol
        self.channels = channels
        self.book = L2Book(symbol, keep_raw=keep_raw)
        self.valid = False
        #: the last update id applied (``data.u``); None before the first snapshot and after a gap
        self.u: int | None = None
        #: the last cross sequence seen (``data.seq``), kept for status and checkpoints only
        self.seq: int | None = None
        #: snapshots loaded because ``u`` was 1 (a restart of Bybit's service)
        self.restarts = 0

    def apply(self, kind: object, data: Mapping[str, Any]) -> tuple[EventKind, str] | None:
        """Apply one push's ``data``; (event kind, detail) when validity changed: ``synced`` when a snapshot made
        the book whole again, ``gap`` when the ``u`` chain broke (the book is then dropped). Raises ValueError on
        a push it cannot read."""
        try:
            u = int(data["u"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"orderbook push without an integer u: {str(data)[:120]}") from exc
        bids: Sequence[Sequence[str]] = data.get("b") or ()
        asks: Sequence[Sequence[str]] = data.get("a") or ()
        book = self.book
        restart = u == 1 and kind != "snapshot"
        if kind == "snapshot" or restart:
            was_valid = self.valid
            try:
                book.load(bids, asks, update_id=u)
            except ValueError:
                self._drop()
                raise
            self.valid, self.u = True, u
            self._seq(data)
            if restart:
                self.restarts += 1
            return None if was_valid else (SYNCED, "snapshot")
        if kind != "delta":
            raise ValueError(f"orderbook push of unknown type {kind!r}")
        if not self.valid:
            return None  # waiting for the snapshot a (re)subscription brings
        last = self.u
        if last is not None and u != last + 1:
            self._drop()
            return GAP, f"update id gap: u={u} after u={last}"
        try:
            book.apply(bids, asks, update_id=u)
        except ValueError:
            self._drop()
            raise
        self.u = u
        self._seq(data)
        return None

    def _seq(self, data: Mapping[str, Any]) -> None:
        seq = data.get("seq")
        if isinstance(seq, int):
            self.seq = seq

    def _drop(self) -> None:
        self.book.clear()
        self.u = None
        self.valid = False

    # -- BookBuilder ---------------------------------------------------------------------------------------
    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        msg = orjson.loads(payload)
        if not isinstance(msg, dict) or not isinstance(msg.get("data"), dict):
            raise ValueError(f"not an orderbook push: {payload[:120]}")
        problem = self.apply(msg.get("type"), msg["data"])
        return None if problem is None else StreamEvent(problem[0], channel, self.symbol, problem[1])

    def checkpoint(self) -> dict[str, Any]:
        return {"u": self.u, "seq": self.seq}

    def restore(
        self, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]], state: Mapping[str, Any]
    ) -> None:
        u, seq = state.get("u"), state.get("seq")
        self.u = None if u is None else int(u)
        self.seq = None if seq is None else int(seq)
        self.book.load(bids, asks, update_id=self.u)
        self.valid = True
