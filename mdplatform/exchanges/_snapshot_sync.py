"""What the exchanges whose books are a REST snapshot plus id-chained diffs share (Binance, Gate.io, KuCoin, MEXC).

Their chains follow the same rules (``DepthSync``); what differs is where the ids sit in a frame and the words an
exchange uses for them. ``SnapshotSession`` is the live session's side (ids only, no levels): which verdict asks for
a snapshot, records a gap or reports ``synced``. ``SnapshotBook`` is the offline builder's side: its state, validity
and the checkpoint a rebuild continues from. Each exchange's own rules (reading frames, KuCoin's per-change filter,
MEXC's one channel per symbol) stay in its folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from ..book import L2Book
from ..contract import GAP, SYNCED, IdChain, SessionAction, StreamEvent, SyncState
from ._depth_sync import DepthSync, DiffVerdict, SnapshotVerdict

__all__ = ["SnapshotBook", "SnapshotSession", "SnapshotSource", "snapshot_event"]

T = TypeVar("T")

#: price levels as the book takes them ([price, size] texts)
_Levels = Iterable[Sequence[str | float]]


class SnapshotSource(Protocol):
    """The exchange a session asks where a symbol's snapshot is."""

    @property
    def id(self) -> str: ...

    def snapshot_url(self, symbol: str, rest_url: str | None = None, /) -> str: ...


class SnapshotSession:
    """Per-connection chains of update ids, one ``DepthSync`` per symbol (the levels are not kept on the hot path).

    Subclasses read the ids of a frame and call ``_diff_action``/``_snapshot_action``; ``_channel_of`` names the book
    channel of a symbol's events, ``_words`` says a gap in the exchange's field names and ``_where`` names the
    stream in error messages.
    """

    def __init__(self, exchange: SnapshotSource, rest_url: str | None, *, futures: bool = False) -> None:
        self._exchange = exchange
        self._rest_url = rest_url
        self._futures = futures
        self._syncs: dict[str, DepthSync[None]] = {}
        #: validation failures so far (also reported through SessionAction.error)
        self.errors = 0

    def _sync(self, symbol: str) -> DepthSync[None]:
        sync = self._syncs.get(symbol)
        if sync is None:
            sync = self._syncs[symbol] = DepthSync(futures=self._futures)
        return sync

    def _fetch(self, symbol: str) -> tuple[str, str]:
        return symbol, self._exchange.snapshot_url(symbol, self._rest_url)

    def _channel_of(self, symbol: str) -> str:
        raise NotImplementedError

    def _words(self, detail: str) -> str:
        return detail

    def _where(self, symbol: str) -> str:
        return f"{self._exchange.id} {symbol}"

    def _diff_action(self, symbol: str, sync: DepthSync[None], verdict: DiffVerdict) -> SessionAction | None:
        """What a diff's verdict asks for: a snapshot (the chain has none yet), a gap, or nothing."""
        if verdict == DiffVerdict.FETCH:
            return SessionAction(fetch_snapshot=self._fetch(symbol))
        if verdict == DiffVerdict.GAP:
            return self._gap(symbol, sync.gap_detail)
        return None

    def _snapshot_action(self, symbol: str, sync: DepthSync[None], snapshot_id: int) -> SessionAction | None:
        """A snapshot with id ``snapshot_id`` given to the chain: synced, ignored, fetch again, or a gap."""
        verdict, _ = sync.on_snapshot(snapshot_id)
        if verdict == SnapshotVerdict.SYNCED:
            return SessionAction(events=(StreamEvent(SYNCED, self._channel_of(symbol), symbol),))
        if verdict == SnapshotVerdict.IGNORED:
            return None
        if verdict == SnapshotVerdict.REFETCH:
            return SessionAction(fetch_snapshot=self._fetch(symbol))
        return self._gap(symbol, sync.gap_detail)

    def _gap(self, symbol: str, detail: str) -> SessionAction:
        """The chain broke (live, or inside the buffer a snapshot was to bridge): count, record, fetch again."""
        self.errors += 1
        detail = self._words(detail)
        return SessionAction(
            error=f"gap {self._where(symbol)}: {detail}; resyncing",
            fetch_snapshot=self._fetch(symbol),
            events=(StreamEvent(GAP, self._channel_of(symbol), symbol, detail),),
        )

    def sync_state(self) -> dict[str, str]:
        return {symbol: sync.state for symbol, sync in self._syncs.items()}

    # --- checks outside the session (``ChainedSession``): an exchange that says where its ids are (``id_chain``)

    def id_chain(self, channel: str) -> IdChain | None:
        return None

    def chain_position(self, channel: str, symbol: str) -> int:
        sync = self._syncs.get(symbol)
        if sync is None or not sync.in_sequence or channel != self._channel_of(symbol):
            return -1
        return sync.last_update_id

    def chain_advance(self, channel: str, symbol: str, last: int) -> None:
        self._syncs[symbol].advance(last)


def snapshot_event(verdict: SnapshotVerdict, channel: str, symbol: str, gap_detail: str) -> StreamEvent | None:
    """The event of a snapshot row given to a builder: ``synced``, ``gap`` (``gap_detail``), or None."""
    if verdict == SnapshotVerdict.SYNCED:
        return StreamEvent(SYNCED, channel, symbol)
    if verdict == SnapshotVerdict.GAP:
        return StreamEvent(GAP, channel, symbol, gap_detail)
    return None


class SnapshotBook(Generic[T]):
    """The sync state of a book builder whose chain ``DepthSync`` keeps (``T``: what it buffers before a snapshot).

    ``checkpoint_key`` is the name the chain's last id is stored under in a checkpoint: each exchange's own word,
    which the checkpoints already written use. ``_restored`` loads what a builder keeps beside the chain.
    """

    checkpoint_key: ClassVar[str] = "last_update_id"
    book: L2Book
    sync: DepthSync[T]
    #: diffs applied so far
    applied: int

    @property
    def state(self) -> SyncState:
        return self.sync.state

    @property
    def valid(self) -> bool:
        return self.sync.state == "synced"

    def _load_synced(
        self,
        bids: _Levels,
        asks: _Levels,
        snapshot_id: int,
        ts: int | None,
        items: Iterable[tuple[_Levels, _Levels, int | None]],
    ) -> None:
        """A snapshot the chain took (``SnapshotVerdict.SYNCED``): load it, then apply the diffs buffered behind it
        (``items``: bids, asks, exchange time)."""
        book = self.book
        book.load(bids, asks, update_id=snapshot_id, ts=ts)
        for diff_bids, diff_asks, diff_ts in items:
            book.apply(diff_bids, diff_asks, ts=diff_ts)
            self.applied += 1
        book.update_id = self.sync.last_update_id

    def checkpoint(self) -> dict[str, Any]:
        return {self.checkpoint_key: self.sync.last_update_id}

    def restore(
        self, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]], state: Mapping[str, Any]
    ) -> None:
        last = int(state[self.checkpoint_key])
        self.book.load(bids, asks, update_id=last)
        self.sync.restore(last)
        self._restored(state)

    def _restored(self, state: Mapping[str, Any]) -> None:
        """Nothing beside the chain by default."""
