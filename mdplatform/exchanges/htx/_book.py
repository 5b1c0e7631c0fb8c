"""HTX order books, live (``HtxSession``) and offline (the builders the lake rebuild drives), as documented.

Followed (checked 2026-12 with the documentation search):
- Spot, "market.$symbol.mbp.$levels (Market By Price (incremental update))" (HTX Public WebSocket API documentation,
  https://www.htx.com/en-us/opend/newApiPages/?id=7ec5362b-7773-11ed-9966-0242ac110003): served on
  wss://api.huobi.pro/feed; "1) Subscribe to incremental updates and start to cache them; 2) Request refresh message
  (with same number of levels), and base on its "seqNum" to align it with the cached incremental message which has
  the same "prevSeqNum"; 3) Start to continuously process incremental messages ...; 4) The "prevSeqNum" of the
  current incremental message must be the same with "seqNum" of the previous message, otherwise it implicates message
  loss which should require another round of refresh message retrieval and alignment"; a size 0 removes a level;
  150/400 levels push (possibly empty) diffs every 100 ms; the refresh (``{"req": "market.$symbol.mbp.$levels"}``) is
  answered ``{"id":..,"rep":"market.$symbol.mbp.$levels","status":"ok","data":{"seqNum":..,"bids":..,"asks":..}}``
  for 5, 20 and 150 levels. So: the rep is spliced where an update's ``prevSeqNum`` equals its ``seqNum``; a broken
  chain is a gap (``gap`` event) and a new req for that symbol only.
- USDT-margined swaps, "market.$contract_code.depth.size_${size}.high_freq" (subscribed with ``"data_type":
  "incremental"``): "snapshot data will be pushed for the first time" (``tick.event`` "snapshot", then "update");
  "version: auto increment in single websocket connection" (each update's ``version`` is the previous one plus 1 on
  a connection, as ccxt's HTX book also checks). A jump is a gap: the stream is unsubscribed and subscribed again,
  which brings a new snapshot.
- ``depth.step0`` (spot and swaps, the recordings' channel): every push is the whole book (top 150), no sequence.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ...book import L2Book
from ...contract import GAP, SYNCED, EventKind, SessionAction, StreamEvent, Subscription, SyncState
from .._resubscribing import Resubscribing
from ._wire import topic

__all__ = [
    "MBP_CHANNELS",
    "HtxBookBuilder",
    "HtxDepthBuilder",
    "HtxMbpBuilder",
    "HtxSession",
    "HtxStepBuilder",
    "is_high_freq",
    "is_mbp",
    "is_step",
    "parse_exact",
    "req_message",
]

#: spot incremental MBP channels (wss://api.huobi.pro/feed)
MBP_CHANNELS = frozenset({"mbp.5", "mbp.20", "mbp.150", "mbp.400"})
#: updates kept per symbol while waiting for a refresh (the oldest go first: the splice then asks again)
_MAX_PENDING = 2_000
#: refreshes asked in a row for one symbol that came back too old to splice, before waiting for the next update
_MAX_REFETCHES = 3

Verdict = Literal["synced", "ignored", "refetch"]


def is_mbp(channel: str) -> bool:
    return channel in MBP_CHANNELS


def is_high_freq(channel: str) -> bool:
    return channel.startswith("depth.size_") and channel.endswith(".high_freq")


def is_step(channel: str) -> bool:
    return channel.startswith("depth.step")


def parse_exact(payload: str | bytes) -> Any:
    """JSON with every non-integer number kept as the text HTX sent (``"9.2E-7"``), never a float."""
    return json.loads(payload, parse_float=str)


def _levels(raw: object) -> list[tuple[str, str]]:
    """``[[price, size], ...]`` as the exchange's text (integers as their digits)."""
    if not isinstance(raw, list):
        return []
    return [(str(level[0]), str(level[1])) for level in raw]


def req_message(channel: str, symbol: str) -> str:
    """The refresh request of one MBP stream (its id names the topic, so an error answer says which)."""
    name = topic(channel, symbol)
    return json.dumps({"req": name, "id": name}, separators=(",", ":"))


def _int(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return None


class HtxMbpBuilder:
    """One spot symbol's MBP book: updates chained by ``seqNum``/``prevSeqNum``, spliced onto a ``rep`` refresh.

    Before the first refresh, and after a gap until the next one, updates are kept (``pending``) for the splice.
    """

    def __init__(self, symbol: str, channel: str = "mbp.150") -> None:
        self.symbol = symbol
        self.channel = channel
        self.channels: frozenset[str] = MBP_CHANNELS
        self.book = L2Book(symbol, keep_raw=True)
        self.valid = False
        self.seq: int | None = None
        self.pending: list[Mapping[str, Any]] = []

    # -- updates ---------------------------------------------------------------------------------------------------
    def on_update(self, tick: Mapping[str, Any]) -> str | None:
        """Apply one incremental ``tick``; what went wrong when the chain broke (the book is then dropped)."""
        seq, prev = _int(tick.get("seqNum")), _int(tick.get("prevSeqNum"))
        if seq is None or prev is None:
            raise ValueError("mbp update without integer seqNum/prevSeqNum")
        if not self.valid:
            self._keep(tick, prev)
            return None
        if prev != self.seq:
            problem = f"sequence gap: prevSeqNum={prev} != previous seqNum={self.seq}"
            self._drop()
            self._keep(tick, prev)
            return problem
        self._apply(tick, seq)
        return None

    def _apply(self, tick: Mapping[str, Any], seq: int) -> None:
        try:
            self.book.apply(_levels(tick.get("bids")), _levels(tick.get("asks")))
        except ValueError:
            self._drop()
            raise
        self.seq = self.book.update_id = seq

    def _keep(self, tick: Mapping[str, Any], prev: int) -> None:
        pending = self.pending
        if pending and _int(pending[-1].get("seqNum")) != prev:
            pending.clear()  # the kept chain broke: only what follows can be spliced
        if len(pending) >= _MAX_PENDING:
            del pending[: len(pending) // 2]
        pending.append(tick)

    def _drop(self) -> None:
        self.book.clear()
        self.valid = False
        self.seq = None
        self.pending.clear()

    # -- refreshes ---------------------------------------------------------------------------------------------------
    def on_refresh(self, data: Mapping[str, Any]) -> tuple[Verdict, str]:
        """A ``rep`` refresh's ``data`` spliced with the kept updates as documented; (verdict, why)."""
        if self.valid:
            return "ignored", "the book is synced already"
        snap = _int(data.get("seqNum"))
        if snap is None:
            raise ValueError("mbp refresh without an integer seqNum")
        later = [t for t in self.pending if (_int(t.get("seqNum")) or 0) > snap]
        if later and _int(later[0].get("prevSeqNum")) != snap:
            first = _int(later[0].get("prevSeqNum"))
            return "refetch", f"refresh seqNum={snap} does not meet the kept updates (first prevSeqNum={first})"
        self.book.load(_levels(data.get("bids")), _levels(data.get("asks")))
        self.seq = self.book.update_id = snap
        self.valid = True
        self.pending = []
        for tick in later:  # they chain: each prevSeqNum is the previous seqNum (kept so)
            self._apply(tick, int(tick["seqNum"]))
        return "synced", f"refresh seqNum={snap}, {len(later)} kept updates applied"

    # -- the BookBuilder contract --------------------------------------------------------------------------------
    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        msg = parse_exact(payload)
        self.channel = channel
        if "rep" in msg:
            data = msg.get("data")
            if not isinstance(data, dict):
                return None  # a refused request: nothing to load
            verdict, _ = self.on_refresh(data)
            return StreamEvent(SYNCED, channel, self.symbol) if verdict == "synced" else None
        tick = msg.get("tick")
        if not isinstance(tick, dict):
            raise ValueError("mbp push without a tick")
        problem = self.on_update(tick)
        return StreamEvent(GAP, channel, self.symbol, problem) if problem else None

    def checkpoint(self) -> dict[str, Any]:
        return {"seq": self.seq}

    def restore(
        self, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]], state: Mapping[str, Any]
    ) -> None:
        self.seq = _int(state.get("seq"))
        self.book.load(bids, asks, update_id=self.seq)
        self.valid = True
        self.pending = []


class HtxDepthBuilder:
    """One swap contract's ``depth.size_N.high_freq`` book: a snapshot, then updates whose ``version`` goes up by 1."""

    def __init__(self, symbol: str, channel: str = "depth.size_150.high_freq") -> None:
        self.symbol = symbol
        self.channel = channel
        self.channels: frozenset[str] = frozenset({"depth.size_20.high_freq", "depth.size_150.high_freq"})
        self.book = L2Book(symbol, keep_raw=True)
        self.valid = False
        self.version: int | None = None

    def on_tick(self, tick: Mapping[str, Any]) -> tuple[EventKind, str] | None:
        version = _int(tick.get("version"))
        if version is None:
            raise ValueError("high_freq push without an integer version")
        if tick.get("event") == "snapshot":
            self.book.load(_levels(tick.get("bids")), _levels(tick.get("asks")))
            self.version = self.book.update_id = version
            self.valid = True
            return SYNCED, f"snapshot version={version}"
        if not self.valid:
            return None  # updates before the snapshot a (re)subscription brings
        if version != (self.version or 0) + 1:
            problem = f"sequence gap: version={version} after {self.version}"
            self.book.clear()
            self.valid = False
            self.version = None
            return GAP, problem
        try:
            self.book.apply(_levels(tick.get("bids")), _levels(tick.get("asks")))
        except ValueError:
            self.book.clear()
            self.valid = False
            raise
        self.version = self.book.update_id = version
        return None

    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        self.channel = channel
        tick = parse_exact(payload).get("tick")
        if not isinstance(tick, dict):
            raise ValueError("high_freq push without a tick")
        change = self.on_tick(tick)
        return None if change is None else StreamEvent(change[0], channel, self.symbol, change[1])

    def checkpoint(self) -> dict[str, Any]:
        return {"version": self.version}

    def restore(
        self, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]], state: Mapping[str, Any]
    ) -> None:
        self.version = _int(state.get("version"))
        self.book.load(bids, asks, update_id=self.version)
        self.valid = True


class HtxStepBuilder:
    """``depth.step*``: every push is the whole (aggregated) book, so each one loads it."""

    def __init__(self, symbol: str, channel: str = "depth.step0") -> None:
        self.symbol = symbol
        self.channel = channel
        self.channels: frozenset[str] = frozenset({f"depth.step{i}" for i in range(20)})
        self.book = L2Book(symbol, keep_raw=True)
        self.valid = False

    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        tick = parse_exact(payload).get("tick")
        if not isinstance(tick, dict):
            raise ValueError("depth push without a tick")
        first = not self.valid
        self.book.load(_levels(tick.get("bids")), _levels(tick.get("asks")))
        self.valid = True
        return StreamEvent(SYNCED, channel, self.symbol) if first else None

    def checkpoint(self) -> dict[str, Any]:
        return {}

    def restore(
        self, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]], state: Mapping[str, Any]
    ) -> None:
        self.book.load(bids, asks)
        self.valid = True


class HtxBookBuilder:
    """What the lake rebuild drives for one symbol: its incremental book (MBP on spot, high_freq on swaps) and, for a
    symbol collected without one (the 2021/2022 recordings), its ``depth.step*`` whole-book pushes. Once an
    incremental frame is seen the whole-book pushes are ignored: two sources would take turns on one book."""

    def __init__(self, symbol: str, market: str) -> None:
        self.symbol = symbol
        self.incremental: HtxMbpBuilder | HtxDepthBuilder = (
            HtxMbpBuilder(symbol) if market == "spot" else HtxDepthBuilder(symbol)
        )
        self.step = HtxStepBuilder(symbol)
        self.channels: frozenset[str] = self.incremental.channels | self.step.channels
        #: whether an incremental frame was seen (the whole-book pushes are then ignored)
        self.uses_incremental = False

    @property
    def _active(self) -> HtxMbpBuilder | HtxDepthBuilder | HtxStepBuilder:
        return self.incremental if self.uses_incremental else self.step

    @property
    def book(self) -> L2Book:
        return self._active.book

    @property
    def valid(self) -> bool:
        return self._active.valid

    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        if is_step(channel):
            return None if self.uses_incremental else self.step.on_raw(channel, payload)
        self.uses_incremental = True
        return self.incremental.on_raw(channel, payload)

    def checkpoint(self) -> dict[str, Any]:
        return {**self._active.checkpoint(), "incremental": self.uses_incremental}

    def restore(
        self, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]], state: Mapping[str, Any]
    ) -> None:
        self.uses_incremental = bool(state.get("incremental", True))
        self._active.restore(bids, asks, state)


class _Stream:
    __slots__ = ("asked", "builder", "channel", "refetches", "state")

    def __init__(self, builder: HtxMbpBuilder | HtxDepthBuilder | HtxStepBuilder, channel: str) -> None:
        self.builder = builder
        self.channel = channel
        self.state: SyncState = "buffering"
        #: a refresh was asked for and has not come back
        self.asked = False
        self.refetches = 0


class HtxSession:
    """Per-connection book sync: spot MBP (refresh over ``req``, seqNum chain) and swap high_freq depth (snapshot on
    subscribe, version chain). A gap is reported (``gap``) and resynced for that symbol only: a new ``req`` (spot) or
    unsubscribe + subscribe (swaps). ``depth.step*`` pushes are whole books: synced at the first."""

    def __init__(self, exchange: Resubscribing, subs: Sequence[Subscription], market: str) -> None:
        self._exchange = exchange
        self._market = market
        self._streams: dict[str, _Stream] = {}
        for sub in subs:
            if is_mbp(sub.channel) or is_high_freq(sub.channel) or is_step(sub.channel):
                self._stream(sub.channel, sub.symbol)
        #: validation failures so far
        self.errors = 0
        #: refreshes asked (spot ``req``)
        self.requests = 0

    def _stream(self, channel: str, symbol: str) -> _Stream:
        stream = self._streams.get(symbol)
        if stream is None:
            builder: HtxMbpBuilder | HtxDepthBuilder | HtxStepBuilder
            if is_mbp(channel):
                builder = HtxMbpBuilder(symbol, channel)
            elif is_high_freq(channel):
                builder = HtxDepthBuilder(symbol, channel)
            else:
                builder = HtxStepBuilder(symbol, channel)
            stream = self._streams[symbol] = _Stream(builder, channel)
        return stream

    def book(self, symbol: str) -> L2Book | None:
        stream = self._streams.get(symbol)
        return stream.builder.book if stream is not None and stream.builder.valid else None

    def sync_state(self) -> dict[str, str]:
        return {symbol: s.state for symbol, s in self._streams.items()}

    def on_snapshot(self, symbol: str, body: str) -> SessionAction | None:
        return None  # HTX refreshes come over the WebSocket (``rep`` frames reach ``on_frame``)

    def on_frame(self, channel: str, symbol: str, frame: str) -> SessionAction | None:
        if is_mbp(channel):
            return self._mbp(channel, symbol, parse_exact(frame))
        if is_high_freq(channel):
            return self._high_freq(channel, symbol, parse_exact(frame))
        if is_step(channel):
            stream = self._stream(channel, symbol)
            first = stream.state != "synced"
            stream.builder.on_raw(channel, frame)
            stream.state = "synced"
            return SessionAction(events=(StreamEvent(SYNCED, channel, symbol),)) if first else None
        return None

    # -- spot MBP --------------------------------------------------------------------------------------------------
    def _mbp(self, channel: str, symbol: str, msg: Mapping[str, Any]) -> SessionAction | None:
        stream = self._stream(channel, symbol)
        builder = stream.builder
        assert isinstance(builder, HtxMbpBuilder)
        stream.channel = builder.channel = channel
        if "rep" in msg:
            stream.asked = False
            data = msg.get("data")
            if not isinstance(data, dict):
                return self._ask(stream, symbol, error=f"{self._exchange.id} {channel} {symbol}: refresh refused")
            verdict, detail = builder.on_refresh(data)
            if verdict == "synced":
                stream.state = "synced"
                stream.refetches = 0
                return SessionAction(events=(StreamEvent(SYNCED, channel, symbol, detail),))
            if verdict == "refetch":
                self.errors += 1
                stream.refetches += 1
                error = f"{self._exchange.id} {channel} {symbol}: {detail}"
                if stream.refetches <= _MAX_REFETCHES:
                    return self._ask(stream, symbol, error=error + "; asking again")
                stream.refetches = 0
                return SessionAction(error=error + "; asking again at the next update")
            return None
        tick = msg.get("tick")
        if not isinstance(tick, dict):
            raise ValueError("mbp push without a tick")
        problem = builder.on_update(tick)
        if problem is not None:
            self.errors += 1
            stream.state = "resyncing"
            stream.asked = False
            event = StreamEvent(GAP, channel, symbol, problem)
            ask = self._ask(stream, symbol)
            return SessionAction(
                error=f"{self._exchange.id} {channel} {symbol}: {problem}; asking a refresh",
                send=ask.send,
                events=(event,),
            )
        if not builder.valid and not stream.asked:
            return self._ask(stream, symbol)  # the first update cached: now the refresh (documented order)
        return None

    def _ask(self, stream: _Stream, symbol: str, *, error: str | None = None) -> SessionAction:
        stream.asked = True
        self.requests += 1
        return SessionAction(send=(req_message(stream.channel, symbol),), error=error)

    # -- swap high_freq --------------------------------------------------------------------------------------------
    def _high_freq(self, channel: str, symbol: str, msg: Mapping[str, Any]) -> SessionAction | None:
        stream = self._stream(channel, symbol)
        builder = stream.builder
        assert isinstance(builder, HtxDepthBuilder)
        stream.channel = builder.channel = channel
        tick = msg.get("tick")
        if not isinstance(tick, dict):
            raise ValueError("high_freq push without a tick")
        change = builder.on_tick(tick)
        if change is None:
            return None
        kind, detail = change
        if kind == SYNCED:
            stream.state = "synced"
            return SessionAction(events=(StreamEvent(SYNCED, channel, symbol, detail),))
        self.errors += 1
        stream.state = "resyncing"
        sub = [Subscription(channel, symbol)]
        return SessionAction(
            error=f"{self._exchange.id} {channel} {symbol}: {detail}; resubscribing",
            send=(*self._exchange.unsubscribe_messages(sub), *self._exchange.subscribe_messages(sub)),
            events=(StreamEvent(kind, channel, symbol, detail),),
        )
