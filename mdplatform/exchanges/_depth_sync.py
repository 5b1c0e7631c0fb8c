"""Binance diff-depth synchronization rules, on update ids only.

One implementation of "How to manage a local order book correctly" serves both the collector's session
(which tracks ids only, per frame, on the hot path) and ``BinanceBookBuilder`` (which also maintains the
book): buffered diffs carry an opaque ``item`` (``None`` in the session, parsed levels in the builder).

Spot: drop diffs with ``u <= lastUpdateId``; the first applied diff has ``U <= lastUpdateId + 1 <= u``;
afterwards a diff applies when ``U <= prev_u + 1`` (normally ``U == prev_u + 1``), is stale when
``u <= prev_u`` and is a gap when ``U > prev_u + 1``.
USD-M / COIN-M: drop diffs with ``u < lastUpdateId``; the first applied diff has ``U <= lastUpdateId <= u``;
afterwards ``pu`` must equal the previous ``u``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Generic, TypeVar

from ..contract import SyncState

__all__ = ["DepthSync", "DiffVerdict", "SnapshotVerdict"]

T = TypeVar("T")


class DiffVerdict(IntEnum):
    #: waiting for a snapshot; the diff is buffered
    BUFFERED = 0
    #: buffered, and a snapshot should be requested now
    FETCH = 1
    #: in sequence: apply it
    APPLY = 2
    #: already covered by the book: ignore it
    STALE = 3
    #: the chain broke: the book is invalid, the diff is buffered, a snapshot should be requested
    GAP = 4


class SnapshotVerdict(IntEnum):
    #: apply the snapshot, then the returned buffered diffs in order
    SYNCED = 0
    #: the snapshot predates every buffered diff: request another one
    REFETCH = 1
    #: the buffered diffs have a hole after the snapshot: request another one
    GAP = 2
    #: not waiting for a snapshot (already synced): ignore it
    IGNORED = 3


class DepthSync(Generic[T]):
    """The update-id state machine of one symbol."""

    __slots__ = (
        "_buffer",
        "_fetch_pending",
        "_first_pending",
        "_since_fetch",
        "_synced",
        "dropped",
        "futures",
        "gap_detail",
        "last_update_id",
        "max_buffer",
        "refetch_every",
        "state",
    )

    def __init__(self, *, futures: bool, max_buffer: int = 20_000, refetch_every: int = 1_000) -> None:
        """``max_buffer``: diffs kept while waiting for a snapshot (oldest dropped beyond it).
        ``refetch_every``: ask for a snapshot again after this many buffered diffs without one arriving
        (a lost or unusable snapshot must not leave the symbol buffering forever; counting frames instead of
        seconds keeps the machine deterministic and rate-limits the REST calls by the stream's own pace).
        """
        self.futures = futures
        self.max_buffer = max_buffer
        self.refetch_every = refetch_every
        self.state: SyncState = "buffering"
        #: u of the last applied diff (the snapshot's lastUpdateId right after a snapshot); -1 before
        self.last_update_id = -1
        #: human-readable description of the last gap
        self.gap_detail = ""
        #: diffs dropped from a full buffer
        self.dropped = 0
        self._synced = False
        self._first_pending = False
        self._fetch_pending = False
        self._since_fetch = 0
        self._buffer: list[tuple[int, int, int, T]] = []

    def on_diff(self, first: int, last: int, prev: int, item: T) -> DiffVerdict:
        """One diff: ``first`` = U, ``last`` = u, ``prev`` = pu (-1 on spot, which has none)."""
        if self._synced:
            cur = self.last_update_id
            if self._first_pending:
                # first diff after a snapshot newer than everything buffered
                if self.futures:
                    if last < cur:
                        return DiffVerdict.STALE
                    ok = first <= cur
                else:
                    if last <= cur:
                        return DiffVerdict.STALE
                    ok = first <= cur + 1
            elif self.futures:
                if prev == cur:
                    self.last_update_id = last
                    return DiffVerdict.APPLY
                if last <= cur:
                    return DiffVerdict.STALE
                ok = False
            else:
                if last <= cur:
                    return DiffVerdict.STALE
                ok = first <= cur + 1
            if ok:
                self._first_pending = False
                self.last_update_id = last
                return DiffVerdict.APPLY
            self.gap_detail = self._describe_gap(cur, first, last, prev)
            self._synced = False
            self._first_pending = False
            self.state = "resyncing"
            self._buffer = [(first, last, prev, item)]
            self._fetch_pending = True
            self._since_fetch = 0
            return DiffVerdict.GAP

        buffer = self._buffer
        buffer.append((first, last, prev, item))
        if len(buffer) > self.max_buffer:
            del buffer[0]
            self.dropped += 1
        if not self._fetch_pending:
            self._fetch_pending = True
            self._since_fetch = 0
            return DiffVerdict.FETCH
        self._since_fetch += 1
        if self._since_fetch >= self.refetch_every:
            self._since_fetch = 0
            return DiffVerdict.FETCH
        return DiffVerdict.BUFFERED

    def on_snapshot(self, last_update_id: int) -> tuple[SnapshotVerdict, list[T]]:
        """A REST snapshot's ``lastUpdateId`` -> verdict and, when SYNCED, the buffered items to apply."""
        if self._synced:
            return SnapshotVerdict.IGNORED, []
        snap = last_update_id
        buffer = self._buffer
        # drop the diffs the snapshot already contains
        oldest_kept = snap if self.futures else snap + 1
        keep = [e for e in buffer if e[1] >= oldest_kept]
        if not keep:
            self._set_synced(snap, first_pending=True)
            return SnapshotVerdict.SYNCED, []
        bound = snap if self.futures else snap + 1
        first = keep[0]
        if first[0] > bound:
            self._since_fetch = 0
            self._fetch_pending = True
            if len(keep) == len(buffer):
                # the snapshot is older than every buffered diff: try a newer one
                return SnapshotVerdict.REFETCH, []
            self._buffer = keep
            self.gap_detail = f"buffered diffs jump from lastUpdateId {snap} to U={first[0]}"
            return SnapshotVerdict.GAP, []
        prev_last = first[1]
        items = [first[3]]
        for i in range(1, len(keep)):
            f, u, pu, item = keep[i]
            ok = pu == prev_last if self.futures else f <= prev_last + 1
            if not ok and u <= prev_last:
                continue  # a duplicate the chain already covers
            if not ok:
                self.gap_detail = self._describe_gap(prev_last, f, u, pu) + " (in the buffer)"
                self._buffer = keep[i:]
                self._since_fetch = 0
                self._fetch_pending = True
                return SnapshotVerdict.GAP, []
            if u <= prev_last:
                continue
            items.append(item)
            prev_last = u
        self._set_synced(prev_last, first_pending=False)
        return SnapshotVerdict.SYNCED, items

    def restore(self, last_update_id: int) -> None:
        """Continue a chain known whole up to ``last_update_id`` (a rebuild checkpoint): synced, nothing buffered;
        the next diff must follow it like any diff after the first."""
        self._set_synced(last_update_id, first_pending=False)

    @property
    def in_sequence(self) -> bool:
        """Synced past the first diff after a snapshot: ``on_diff`` now applies a diff exactly when it continues
        the chain (futures: ``pu`` equals the previous ``u``; spot: ``u`` beyond the previous one and ``U`` at most
        one past it). A run of diffs can be checked by that rule outside (the compiled ``depth_run``), then
        reported with ``advance``."""
        return self._synced and not self._first_pending

    def advance(self, last_update_id: int) -> None:
        """Diffs checked outside by the ``in_sequence`` rule were applied, the last ending at ``last_update_id``."""
        self.last_update_id = last_update_id

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _set_synced(self, last_update_id: int, *, first_pending: bool) -> None:
        self.last_update_id = last_update_id
        self._synced = True
        self._first_pending = first_pending
        self._fetch_pending = False
        self._buffer = []
        self.state = "synced"

    def _describe_gap(self, cur: int, first: int, last: int, prev: int) -> str:
        if self.futures:
            return f"pu={prev} != previous u={cur} (U={first} u={last})"
        return f"U={first} > previous u+1={cur + 1} (u={last})"
