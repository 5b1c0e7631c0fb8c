"""Gate.io v4 order books: ``order_book_update`` diffs (``U``/``u``) over a REST snapshot taken ``with_id=true``.

Rules (Gate.io "Spot WebSocket v4", channel ``spot.order_book_update``, and the futures announcement "Gate.io
Futures API upgrade (New orderbook API with 10ms update)", gate.io/article/19776, whose steps the futures
"Futures WebSocket v4" page repeats): cache the diffs, GET the book with ``with_id=true`` (its ``id`` is the
baseID), drop diffs with ``u < baseID + 1``, start from the one with ``U <= baseID + 1 <= u``, then each diff's
``U`` must be the previous ``u`` + 1; otherwise the book is lost (GAP) and a new snapshot is taken for that pair
only. These are Binance spot's rules, so ``.._depth_sync.DepthSync(futures=False)`` keeps the ids.
Since the 2025 announcement "Order book push logic optimization" (gate.com/announcements/article/44678)
``spot.order_book_update`` may push a whole book at any time, flagged ``"full":true``: it replaces the local book
and its ``u`` becomes the chain's last id (a book that had lost its chain is whole again).

Levels: spot ``[["price","size"],...]``; futures ``[{"p":"price","s":size},...]`` with ``s`` the number of
contracts (a JSON integer in the recordings, a string accepted too), kept as the exchange's text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ...book import L2Book
from ...contract import GAP, SYNCED, SessionAction, StreamEvent, Subscription
from .._depth_sync import DepthSync, DiffVerdict, SnapshotVerdict
from .._snapshot_sync import SnapshotBook, SnapshotSession, snapshot_event

__all__ = [
    "SNAPSHOT_CHANNEL",
    "GateioBookBuilder",
    "GateioSession",
    "book_ids",
    "raw_levels",
    "snapshot_id",
]

#: the raw channel the collector lands REST snapshots under
SNAPSHOT_CHANNEL = "depthSnapshot"

_U = re.compile(r'"U":(\d+)')
_u = re.compile(r'"u":(\d+)')
_FULL = '"full":true'
_ID = re.compile(r'"id":(\d+)')

#: (bids, asks, ts_ns) of one diff, levels as [price, size] strings
_Diff = tuple[list[list[str]], list[list[str]], int | None]


def book_ids(frame: str) -> tuple[int, int, bool] | None:
    """(U, u, full) of an ``order_book_update`` frame by string search; None without them. A full push may come
    without ``U``: it then counts as ``U = u``."""
    mu = _u.search(frame)
    if mu is None:
        return None
    last = int(mu.group(1))
    full = _FULL in frame
    m_first = _U.search(frame)
    if m_first is None:
        return (last, last, True) if full else None
    return int(m_first.group(1)), last, full


def snapshot_id(body: str) -> int | None:
    """The ``id`` of a REST order book taken ``with_id=true`` (spot and futures alike)."""
    m = _ID.search(body)
    return int(m.group(1)) if m is not None else None


def raw_levels(levels: object) -> list[list[str]]:
    """Spot ``[[p, s], ...]`` or futures ``[{"p": p, "s": s}, ...]`` -> ``[[p, s], ...]`` as text (an integer size
    becomes its decimal digits: exact)."""
    out: list[list[str]] = []
    if not isinstance(levels, list):
        raise ValueError(f"levels are not a list: {str(levels)[:80]}")
    for level in levels:
        if isinstance(level, dict):
            price, size = level.get("p"), level.get("s")
        elif isinstance(level, list) and len(level) >= 2:
            price, size = level[0], level[1]
        else:
            raise ValueError(f"not a price level: {str(level)[:80]}")
        if isinstance(size, float) or isinstance(price, float):
            raise ValueError(f"level {level} holds a JSON float: not exact")
        out.append([str(price), str(size)])
    return out


class GateioSession(SnapshotSession):
    """Per-connection book sync on update ids only (the collector's hot path keeps no levels)."""

    def __init__(self, exchange: Any, subs: Sequence[Subscription], rest_url: str | None) -> None:
        super().__init__(exchange, rest_url)
        self._book_channel: str = exchange.book_channel
        for sub in subs:
            if sub.channel == self._book_channel:
                self._sync(sub.symbol)

    def _channel_of(self, symbol: str) -> str:
        return self._book_channel

    def on_frame(self, channel: str, symbol: str, frame: str) -> SessionAction | None:
        if channel != self._book_channel:
            return None
        ids = book_ids(frame)
        if ids is None:
            self.errors += 1
            raise ValueError(f"{self._exchange.id} {symbol}: order_book_update without U/u update ids")
        first, last, full = ids
        sync = self._syncs.get(symbol) or self._sync(symbol)
        if full:
            # a whole book: the chain restarts at its u, whatever came before
            was = sync.state
            sync.restore(last)
            return None if was == "synced" else SessionAction(events=(StreamEvent(SYNCED, channel, symbol),))
        return self._diff_action(symbol, sync, sync.on_diff(first, last, -1, None))

    def on_snapshot(self, symbol: str, body: str) -> SessionAction | None:
        if not symbol:
            # a recorded reply whose URL the capture reader could not name the pair of (it reads symbol/instId/pair,
            # not Gate.io's currency_pair/contract): the body does not name it either
            self.errors += 1
            return SessionAction(error=f"{self._exchange.id}: order book reply without its pair; not applied")
        snap = snapshot_id(body)
        if snap is None:
            # no immediate retry (an error body would loop); the sync asks again after more diffs
            self.errors += 1
            return SessionAction(error=f"{self._exchange.id} {symbol}: order book without id: {body[:200]}")
        return self._snapshot_action(symbol, self._sync(symbol), snap)

    def last_update_id(self, symbol: str) -> int:
        return self._syncs[symbol].last_update_id


def _frame_ts(result: Mapping[str, Any]) -> int | None:
    t = result.get("t")
    return int(t) * 1_000_000 if isinstance(t, int) else None


def _snapshot_ts(obj: Mapping[str, Any]) -> int | None:
    """Spot ``update`` is epoch ms (an int); futures ``update`` epoch seconds with a fraction (a float)."""
    value = obj.get("update", obj.get("current"))
    if isinstance(value, int):
        return value * 1_000_000
    if isinstance(value, float):
        return round(value * 1000) * 1_000_000
    return None


class GateioBookBuilder(SnapshotBook[_Diff]):
    """REST snapshot + ``order_book_update`` diffs (and full pushes) -> an ``L2Book``, under the session's rules."""

    def __init__(self, symbol: str, book_channel: str, *, keep_raw: bool = False) -> None:
        self.symbol = symbol
        self.book = L2Book(symbol, keep_raw=keep_raw)
        self.sync: DepthSync[_Diff] = DepthSync(futures=False)
        self.channels: frozenset[str] = frozenset({book_channel, SNAPSHOT_CHANNEL})
        self._book_channel = book_channel
        #: True when a snapshot should be (re)fetched
        self.needs_snapshot = False
        self.gaps = 0
        self.applied = 0
        self.stale = 0

    def on_update(self, frame: str | bytes | Mapping[str, Any]) -> DiffVerdict | None:
        """One ``order_book_update`` frame (text or decoded); None for a full push (it loads the book)."""
        obj = orjson.loads(frame) if isinstance(frame, str | bytes) else frame
        result = obj.get("result", obj)
        if not isinstance(result, dict):
            raise ValueError("order_book_update without a result object")
        item: _Diff = (raw_levels(result.get("b", [])), raw_levels(result.get("a", [])), _frame_ts(result))
        last = int(result["u"])
        if result.get("full") is True:
            self.book.load(item[0], item[1], update_id=last, ts=item[2])
            self.sync.restore(last)
            self.needs_snapshot = False
            return None
        verdict = self.sync.on_diff(int(result["U"]), last, -1, item)
        if verdict == DiffVerdict.APPLY:
            self.book.apply(item[0], item[1], update_id=last, ts=item[2])
            self.applied += 1
        elif verdict == DiffVerdict.STALE:
            self.stale += 1
        elif verdict == DiffVerdict.GAP:
            self.gaps += 1
            self.book.clear()
            self.needs_snapshot = True
        elif verdict == DiffVerdict.FETCH:
            self.needs_snapshot = True
        return verdict

    def on_snapshot(self, body: str | bytes | Mapping[str, Any]) -> SnapshotVerdict:
        obj = orjson.loads(body) if isinstance(body, str | bytes) else body
        snap = int(obj["id"])
        verdict, items = self.sync.on_snapshot(snap)
        if verdict == SnapshotVerdict.SYNCED:
            self.needs_snapshot = False
            bids, asks = raw_levels(obj.get("bids", [])), raw_levels(obj.get("asks", []))
            self._load_synced(bids, asks, snap, _snapshot_ts(obj), items)
        elif verdict == SnapshotVerdict.GAP:
            self.gaps += 1
        return verdict

    # -- the BookBuilder contract (offline rebuild from the lake) ------------------------------------------
    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        if channel == self._book_channel:
            was = self.valid
            verdict = self.on_update(payload)
            if verdict == DiffVerdict.GAP:
                return StreamEvent(GAP, channel, self.symbol, self.sync.gap_detail)
            if verdict is None and not was:
                return StreamEvent(SYNCED, channel, self.symbol)
            return None
        if channel == SNAPSHOT_CHANNEL:
            return snapshot_event(self.on_snapshot(payload), self._book_channel, self.symbol, self.sync.gap_detail)
        return None

    def _restored(self, state: Mapping[str, Any]) -> None:
        self.needs_snapshot = False
