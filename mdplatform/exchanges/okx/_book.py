"""OKX v5 order books (``books``, ``books-l2-tbt``, ``books50-l2-tbt``): one instId's book kept under the documented
sync rules, live (``OkxSession``) and offline (``OkxBookBuilder``, the lake rebuild).

Followed (checked 2026-12 with the documentation search):
- OKX API v5 docs, "WS / Order book channel" (https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-
  book-channel), its "Sequence ID" section: ``seqId`` is per instId and the same on every connection; an update's
  ``prevSeqId`` equals the previous message's ``seqId``; a snapshot has ``prevSeqId`` -1. Exceptions: (1) after about
  60 s without change an update with ``"asks": [], "bids": []`` and ``prevSeqId == seqId`` (the last seqId) says the
  stream is alive; (2) "The sequence number may be reset due to maintenance, and in this case, users will receive an
  incremental message with seqId smaller than prevSeqId. However, subsequent messages will follow the regular
  sequencing rule" (worked example: 10 -> 15, 15 -> 15, 15 -> 3, 3 -> 5). So the rule is ``prevSeqId == previous
  seqId``, whatever the order of seqId and prevSeqId: a reset is accepted, a broken chain is a gap.
- "Checksum" (same page): signed CRC32 of ``bid1px:bid1sz:ask1px:ask1sz:...`` over the top 25 levels, on the strings
  as sent. OKX help centre "OKX Order Book Channels Checksum Field Deprecation" (21 May 2026): from 23 June 2026 in
  production the field stays in ``books``/``books-l2-tbt``/``books50-l2-tbt`` but is always 0 and "must no longer be
  used"; seqId/prevSeqId is the integrity check. So a checksum of 0 (or none: the 2022 frames have one, later ones may
  not) is not checked, and never causes a resubscribe.
- API changelog (https://www.okx.com/docs-v5/log_en, "Delist initial snapshot and checksum field in order book
  channels", 12 Feb 2026) and its "How to manage a local order book correctly": buffer the updates, get
  ``GET /api/v5/market/books?instId=..`` (``sz`` up to 400), refetch while the snapshot's ``seqId`` is below the
  first buffered ``prevSeqId``, drop buffered updates with ``seqId <= `` the snapshot's, the first applied must have
  ``prevSeqId <= snapshot seqId < seqId``, then the chain rule. This is the REST path here: taken when no WS snapshot
  comes (an update arrives first, or the updates after a resubscribe continue without one), and after repeated
  checksum failures. The REST snapshot has no checksum; a body without ``seqId`` cannot be spliced, so the session
  then falls back to resubscribing (it never fetches in a loop).
- The 2022 frames of the cryptofeed recording carry ``checksum`` but no ``seqId``/``prevSeqId``: both layouts are
  read; without seqIds only the checksum and the WS snapshot resync apply.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import orjson

from ...book import L2Book, RawLevel
from ...contract import CHECKSUM, GAP, SYNCED, EventKind, SessionAction, StreamEvent, Subscription, SyncState
from .._resubscribing import Resubscribing
from ._history import OKX_REST_BASE

__all__ = [
    "CHECKSUM_DEPTH",
    "FULL_BOOK_CHANNELS",
    "MAX_CHECKSUM_FAILURES",
    "REST_BOOKS_PATH",
    "SNAPSHOT_CHANNEL",
    "OkxBookBuilder",
    "OkxSession",
    "book_depth",
    "okx_checksum",
]

#: levels per side covered by the checksum
CHECKSUM_DEPTH = 25
#: channels with a snapshot, incremental updates, seqIds and (until 2026) a checksum: the session keeps their books
FULL_BOOK_CHANNELS = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})
#: the raw channel the collector lands REST replies under (``mdplatform.collector``, ``import-capture``)
SNAPSHOT_CHANNEL = "depthSnapshot"
#: GET /api/v5/market/books ("GET / Order book": sz up to 400 per side, 40 requests per 2 s per IP)
REST_BOOKS_PATH = "/api/v5/market/books"
#: checksum failures of one instId with no update verified in between, after which its checksum is no longer
#: trusted (seqIds remain the check) and the book is resynced from REST
MAX_CHECKSUM_FAILURES = 3
#: updates kept per instId while waiting for a REST snapshot (the oldest go first: a splice then refetches)
_MAX_PENDING = 5_000
#: seconds (the session's clock) after a resubscribe during which updates may come without the WS snapshot (the
#: ones sent before OKX took the request) before the REST one is asked for
SNAPSHOT_PATIENCE_S = 5.0
#: REST snapshots asked in a row for one instId without syncing it, after which the session resubscribes instead
_MAX_REFETCHES = 3

_DEPTH = {"books": 400, "books-l2-tbt": 400, "books50-l2-tbt": 50}

RestVerdict = Literal["synced", "ignored", "refetch", "gap", "unusable"]


def book_depth(channel: str) -> int:
    """Levels per side the channel keeps (its snapshot's depth; the ``sz`` of a REST snapshot standing for it)."""
    return _DEPTH.get(channel, 400)


def okx_checksum(bids: Sequence[RawLevel], asks: Sequence[RawLevel], depth: int = CHECKSUM_DEPTH) -> int:
    """Signed CRC32 of ``bid1px:bid1sz:ask1px:ask1sz:bid2px:...`` over the top ``depth`` levels per side
    (the longer side continues alone), on the price/size strings exactly as OKX sent them."""
    bids, asks = bids[:depth], asks[:depth]
    parts: list[str] = []
    for i in range(max(len(bids), len(asks))):
        if i < len(bids):
            parts.append(f"{bids[i][0]}:{bids[i][1]}")
        if i < len(asks):
            parts.append(f"{asks[i][0]}:{asks[i][1]}")
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc


def _int(value: object) -> int | None:
    """A seqId/prevSeqId/checksum as sent (a JSON number; a string is read too); None when absent or unreadable."""
    if value is None or value == "":
        return None
    try:
        return int(value)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return None


class OkxBookBuilder:
    """One instId's full book: snapshot, updates, the seqId chain, the checksum and the REST splice, the rules the live
    ``OkxSession`` applies (it keeps one of these per instId) and the offline rebuild drives (``on_raw``).

    After a gap or checksum failure the book is dropped (``valid`` False); updates are then kept (``pending``) for a
    REST snapshot to be spliced with, until a WS ``snapshot`` push or a REST snapshot makes the book whole again.
    """

    channels: frozenset[str] = FULL_BOOK_CHANNELS | {SNAPSHOT_CHANNEL}

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.book = L2Book(symbol, keep_raw=True)
        self.valid = False
        self.seq: int | None = None
        self.checksums_verified = 0
        #: checksum failures since the last verified update; at MAX_CHECKSUM_FAILURES the checksum is not checked
        self.checksum_failures = 0
        self.checksum_trusted = True
        #: whether the stream carries seqIds (a REST snapshot can only be spliced with them)
        self.sequenced = False
        #: updates received while not valid, in the documented layout, for a REST splice
        self.pending: list[Mapping[str, Any]] = []
        #: the pending updates stopped chaining (a new stream began without a snapshot)
        self.pending_broken = False
        #: seqId of the REST snapshot the book was loaded from while no update has followed it yet
        self._bridge: int | None = None
        #: the exchange's channel name the last push came on (events name it)
        self.channel = "books"

    # -- pushes ------------------------------------------------------------------------------------------------
    def apply_item(self, action: object, d: Mapping[str, Any]) -> tuple[EventKind, str] | None:
        """Apply one item of a push; (event kind, what went wrong) when the book can no longer be trusted."""
        seq, prev = _int(d.get("seqId")), _int(d.get("prevSeqId"))
        if seq is not None:
            self.sequenced = True
        book = self.book
        if action == "snapshot":
            # a snapshot is the whole book (prevSeqId -1): it resets whatever came before
            book.load(d.get("bids", ()), d.get("asks", ()))
            self.valid = True
            self.pending.clear()
            self.pending_broken = False
            self._bridge = None
        else:
            if not self.valid:
                self._keep(d, seq, prev)
                return None  # waiting for the snapshot that follows a (re)subscribe, or for a REST one
            if self._bridge is not None:
                problem = self._bridged(seq, prev)
                if problem == "skip":
                    return None  # already in the REST snapshot
                if problem is not None:
                    self._drop(d)
                    return GAP, problem
            elif prev is not None and self.seq is not None and prev != self.seq:
                # the documented chain: prevSeqId is the previous seqId. seqId < prevSeqId alone is the maintenance
                # reset (accepted), and prevSeqId == seqId with empty sides the keep-alive
                last = self.seq
                self._drop(d)
                return GAP, f"sequence gap: prevSeqId={prev} != previous seqId={last}"
            try:
                book.apply(d.get("bids", ()), d.get("asks", ()))
            except ValueError:
                self._drop(None)
                raise
        if seq is not None:
            self.seq = book.update_id = seq
        return self._check(action, _int(d.get("checksum")), d)

    def _check(self, action: object, checksum: int | None, d: Mapping[str, Any]) -> tuple[EventKind, str] | None:
        # 0: deprecated (OKX sends 0 since 2026-06-23); None: not sent. Neither is a check, so neither can fail
        if not checksum or not self.checksum_trusted:
            return None
        computed = okx_checksum(self.book.raw_bids(CHECKSUM_DEPTH), self.book.raw_asks(CHECKSUM_DEPTH))
        if computed == checksum:
            self.checksums_verified += 1
            if action != "snapshot":
                self.checksum_failures = 0  # an update verified: the checksum works for this stream
            return None
        self.checksum_failures += 1
        detail = f"checksum mismatch: received {checksum}, computed {computed}"
        if self.checksum_failures >= MAX_CHECKSUM_FAILURES:
            self.checksum_trusted = False
            detail += f"; {self.checksum_failures} failures in a row: checksum no longer checked for {self.symbol}"
        self._drop(d if action != "snapshot" else None)
        return CHECKSUM, detail

    def _bridged(self, seq: int | None, prev: int | None) -> str | None:
        """The first update after a REST snapshot of seqId ``bridge``: ``prevSeqId <= bridge < seqId`` (documented);
        older ones are already in the snapshot ("skip")."""
        bridge = self._bridge
        assert bridge is not None
        if seq is None or prev is None:
            return "update without seqId/prevSeqId after a REST snapshot"
        if seq <= bridge:
            return "skip"
        if prev > bridge:
            return f"sequence gap: prevSeqId={prev} > REST snapshot seqId={bridge}"
        self._bridge = None
        return None

    def _keep(self, d: Mapping[str, Any], seq: int | None, prev: int | None) -> None:
        if seq is None or prev is None:
            return  # nothing a REST snapshot could be spliced with
        pending = self.pending
        if pending and _int(pending[-1].get("seqId")) != prev:
            # the chain of kept updates broke: what follows is a new stream (a resubscription without snapshot)
            pending.clear()
            self.pending_broken = True
        if len(pending) >= _MAX_PENDING:
            del pending[: len(pending) // 2]
        pending.append(d)

    def _drop(self, keep: Mapping[str, Any] | None) -> None:
        """The book is unknown from here; ``keep``: the update that found it out (it starts the chain a REST snapshot
        is spliced with)."""
        self.book.clear()
        self.seq = None
        self.valid = False
        self._bridge = None
        self.pending.clear()
        self.pending_broken = False
        if keep is not None:
            self._keep(keep, _int(keep.get("seqId")), _int(keep.get("prevSeqId")))

    # -- REST snapshots ----------------------------------------------------------------------------------------
    def on_rest(self, body: str | bytes) -> tuple[RestVerdict, str]:
        """A ``GET /api/v5/market/books`` reply (``{"code":"0","msg":"","data":[{asks, bids, ts, seqId}]}``) spliced
        with the pending updates as documented; (verdict, why)."""
        if self.valid:
            return "ignored", "the book is synced already"
        try:
            obj = orjson.loads(body)
            data = obj.get("data") if isinstance(obj, dict) else None
            item = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else None
        except orjson.JSONDecodeError:
            item, obj = None, None
        if item is None:
            what = obj.get("msg") or obj.get("code") if isinstance(obj, dict) else "not JSON"
            return "unusable", f"REST snapshot without a book: {str(what)[:200]}"
        snap = _int(item.get("seqId"))
        if snap is None:
            return "unusable", "REST snapshot without seqId: it cannot be spliced with the stream"
        pending = self.pending
        first_prev = _int(pending[0].get("prevSeqId")) if pending else None
        if first_prev is not None and snap < first_prev:
            return "refetch", f"REST snapshot seqId={snap} older than the first kept update (prevSeqId={first_prev})"
        later = [d for d in pending if (_int(d.get("seqId")) or 0) > snap]
        if later and (_int(later[0].get("prevSeqId")) or 0) > snap:
            # only reachable when kept updates were trimmed
            return "refetch", f"kept updates start after REST snapshot seqId={snap}"
        book = self.book
        book.load(item.get("bids", ()), item.get("asks", ()))
        self.seq = book.update_id = snap
        self.valid = True
        self.pending = []
        self.pending_broken = False
        self._bridge = snap
        for d in later:
            problem = self.apply_item("update", d)
            if problem is not None:
                return "gap", problem[1]
        return "synced", f"REST snapshot seqId={snap}, {len(later)} kept updates applied"

    # -- the BookBuilder contract (offline rebuild from the lake) ----------------------------------------------
    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        if channel == SNAPSHOT_CHANNEL:
            verdict, detail = self.on_rest(payload)
            if verdict == "synced":
                return StreamEvent(SYNCED, self.channel, self.symbol)
            if verdict == "gap":
                return StreamEvent(GAP, self.channel, self.symbol, detail)
            return None
        self.channel = channel
        msg = orjson.loads(payload)
        action = msg.get("action")
        event: StreamEvent | None = None
        for d in msg.get("data") or ():
            problem = self.apply_item(action, d)
            if problem is not None:
                return StreamEvent(problem[0], channel, self.symbol, problem[1])
            if action == "snapshot":
                event = StreamEvent(SYNCED, channel, self.symbol)
        return event

    def checkpoint(self) -> dict[str, Any]:
        state: dict[str, Any] = {"seq": self.seq}
        # only when they differ from a book synced from a WS snapshot (checkpoints written before them stay the same)
        if self._bridge is not None:
            state["bridge"] = self._bridge
        if not self.checksum_trusted:
            state["checksum_trusted"] = False
        return state

    def restore(
        self, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]], state: Mapping[str, Any]
    ) -> None:
        self.seq = _int(state.get("seq"))
        self._bridge = _int(state.get("bridge"))
        self.checksum_trusted = bool(state.get("checksum_trusted", True))
        self.book.load(bids, asks, update_id=self.seq)
        self.valid = True


class _Stream:
    """The session's state of one instId."""

    __slots__ = ("builder", "channel", "fetching", "refetches", "resync_since", "state")

    def __init__(self, inst: str, channel: str) -> None:
        self.builder = OkxBookBuilder(inst)
        self.channel = channel
        self.state: SyncState = "buffering"
        #: a REST snapshot was asked for and has not come back
        self.fetching = False
        self.refetches = 0
        #: when (the session's clock) the resubscribe was asked for (None: not waiting for its snapshot)
        self.resync_since: float | None = None


class OkxSession:
    """Per-connection book validation for the full-book channels: book per instId, seqId chain, checksum.

    On a gap or checksum mismatch the book is dropped and the session asks to unsubscribe + subscribe that instId's
    channel (OKX then sends a fresh snapshot); updates in between are kept for a REST splice. The REST snapshot
    (``fetch_snapshot``) is asked for when no WS snapshot comes: an update first after subscribing, updates after a
    resubscribe that start a new chain or still come ``SNAPSHOT_PATIENCE_S`` after it without one, and when the
    checksum of an instId failed ``MAX_CHECKSUM_FAILURES`` times in a row. Reported stream events: ``gap``,
    ``checksum``, ``synced``. ``clock``: seconds, for the patience (tests pass their own).
    """

    def __init__(
        self,
        exchange: Resubscribing,
        subs: Sequence[Subscription],
        rest_url: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._exchange = exchange
        self._clock = clock
        self._id = exchange.id
        self._rest_url = (rest_url or OKX_REST_BASE).rstrip("/")
        self._streams: dict[str, _Stream] = {}
        for sub in subs:
            if sub.channel in FULL_BOOK_CHANNELS:
                self._streams[sub.symbol] = _Stream(sub.symbol, sub.channel)
        #: validation failures so far
        self.errors = 0
        #: REST snapshots asked for
        self.rest_fetches = 0
        #: False once a REST snapshot could not be spliced: this connection resyncs over the WebSocket only
        self.rest_usable = True

    def book(self, inst_id: str) -> L2Book | None:
        stream = self._streams.get(inst_id)
        return stream.builder.book if stream is not None and stream.builder.valid else None

    def builder(self, inst_id: str) -> OkxBookBuilder | None:
        stream = self._streams.get(inst_id)
        return stream.builder if stream is not None else None

    @property
    def checksums_verified(self) -> int:
        return sum(s.builder.checksums_verified for s in self._streams.values())

    def sync_state(self) -> dict[str, str]:
        return {inst: s.state for inst, s in self._streams.items()}

    def snapshot_url(self, inst: str, channel: str = "books") -> str:
        return f"{self._rest_url}{REST_BOOKS_PATH}?instId={inst}&sz={book_depth(channel)}"

    def on_frame(self, channel: str, symbol: str, frame: str) -> SessionAction | None:
        if channel not in FULL_BOOK_CHANNELS:
            return None
        msg = orjson.loads(frame)
        action = msg.get("action")
        stream = self._streams.get(symbol)
        if stream is None:
            stream = self._streams[symbol] = _Stream(symbol, channel)
        stream.channel = stream.builder.channel = channel
        builder = stream.builder
        events: list[StreamEvent] = []
        for d in msg.get("data") or ():
            problem = builder.apply_item(action, d)
            if problem is not None:
                return self._fail(stream, symbol, *problem)
            if action == "snapshot":
                stream.state = "synced"
                stream.fetching = False
                stream.refetches = 0
                stream.resync_since = None
                events.append(StreamEvent(SYNCED, channel, symbol))
            elif not builder.valid and self._wants_rest(stream):
                return self._fetch(stream, symbol)
        return SessionAction(events=tuple(events)) if events else None

    def _wants_rest(self, stream: _Stream) -> bool:
        """Whether an update received while the book waits means no WS snapshot is coming."""
        builder = stream.builder
        if stream.fetching or not self.rest_usable or not builder.pending:
            return False  # asked already, not spliceable, or an update without seqIds
        if stream.state == "buffering":
            return True  # the snapshot comes first after a subscribe: an update first means none will
        since = stream.resync_since
        waited = since is not None and self._clock() - since >= SNAPSHOT_PATIENCE_S
        return builder.pending_broken or waited

    def on_snapshot(self, symbol: str, body: str) -> SessionAction | None:
        stream = self._streams.get(symbol)
        if stream is None:  # an import's session knows its streams from their frames only
            stream = self._streams[symbol] = _Stream(symbol, "books")
        stream.fetching = False
        verdict, detail = stream.builder.on_rest(body)
        channel = stream.channel
        if verdict == "synced":
            stream.state = "synced"
            stream.refetches = 0
            stream.resync_since = None
            return SessionAction(events=(StreamEvent(SYNCED, channel, symbol, detail),))
        if verdict == "ignored":
            return None
        if verdict == "gap":
            return self._fail(stream, symbol, GAP, detail)
        self.errors += 1
        if verdict == "refetch" and stream.refetches < _MAX_REFETCHES:
            stream.refetches += 1
            return self._fetch(stream, symbol, error=f"{self._id} {channel} {symbol}: {detail}; fetching again")
        # an unusable reply, or refetched enough: the WebSocket snapshot it is (no REST loop on this connection)
        if verdict == "unusable":
            self.rest_usable = False
        stream.state = "resyncing"
        stream.refetches = 0
        stream.resync_since = self._clock()
        return SessionAction(
            error=f"{self._id} {channel} {symbol}: {detail}; resubscribing",
            send=self._resubscribe(channel, symbol),
        )

    def _resubscribe(self, channel: str, inst: str) -> tuple[str, ...]:
        """Unsubscribe + subscribe one stream: OKX answers with a fresh snapshot of it."""
        sub = [Subscription(channel, inst)]
        return (*self._exchange.unsubscribe_messages(sub), *self._exchange.subscribe_messages(sub))

    def _fetch(self, stream: _Stream, inst: str, *, error: str | None = None) -> SessionAction:
        stream.fetching = True
        self.rest_fetches += 1
        return SessionAction(fetch_snapshot=(inst, self.snapshot_url(inst, stream.channel)), error=error)

    def _fail(self, stream: _Stream, inst: str, kind: EventKind, problem: str) -> SessionAction:
        self.errors += 1
        channel = stream.channel
        stream.state = "resyncing"
        stream.fetching = False
        stream.resync_since = self._clock()
        event = StreamEvent(kind, channel, inst, problem)
        builder = stream.builder
        if kind == CHECKSUM and not builder.checksum_trusted and builder.sequenced and self.rest_usable:
            # the WS snapshots did not keep the checksum verifying: the book comes from REST, seqIds check it
            action = self._fetch(stream, inst)
            return SessionAction(
                error=f"{self._id} {channel} {inst}: {problem}; fetching a REST snapshot",
                fetch_snapshot=action.fetch_snapshot,
                events=(event,),
            )
        return SessionAction(
            error=f"{self._id} {channel} {inst}: {problem}; resubscribing",
            send=self._resubscribe(channel, inst),
            events=(event,),
        )
