"""Bitfinex v2 ``book`` (P0): one symbol's book kept under the documented rules, live (``BitfinexSession``) and
offline (``BitfinexBookBuilder``, the lake rebuild).

Followed (checked 2026-12 with the documentation search):
- "Books" (https://docs.bitfinex.com/reference/ws-public-books): after ``subscribed`` the first data frame is the
  snapshot ``[chanId, [[PRICE, COUNT, AMOUNT], ...]]``, then updates ``[chanId, [PRICE, COUNT, AMOUNT]]``: COUNT 0
  removes the price level (AMOUNT 1 from the bids, -1 from the asks), otherwise AMOUNT > 0 sets a bid and AMOUNT < 0
  an ask of size |AMOUNT|.
- "WebSocket Checksum" (https://docs.bitfinex.com/docs/ws-websocket-checksum): with conf flag 131072 a
  ``[chanId, "cs", CHECKSUM]`` frame follows book changes; CHECKSUM is the signed CRC32 of the top 25 levels
  interleaved (``_wire.bitfinex_checksum``). A mismatch: the book is dropped and that symbol alone is resubscribed
  (unsubscribe by chanId, subscribe again: a fresh snapshot comes).
- "General" (https://docs.bitfinex.com/docs/ws-general), conf flag 65536 (SEQ_ALL): every data frame of a connection
  (heartbeats, checksums, trades and tickers included) carries a trailing sequence number, one more than the previous
  one. A break says frames of the connection were lost, whichever stream they were of: every book of the connection
  gets a ``gap`` and is resubscribed. The session checks it only where it is handed every frame of the connection:
  the live collector (``Capabilities.session_channels`` = trades and ticker; heartbeats are routed to their stream,
  see ``_exchange``). A session made without subscriptions (the capture import, which hands it book frames only)
  does not check it; ``sequence_breaks`` checks a recording.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import orjson

from ...book import L2Book
from ...contract import CHECKSUM, GAP, SYNCED, EventKind, SessionAction, StreamEvent, Subscription, SyncState
from ._wire import bitfinex_checksum, exact, split_seq

__all__ = [
    "BOOK_CHANNEL",
    "BitfinexBookBuilder",
    "BitfinexSession",
    "book_subscribe",
    "sequence_breaks",
    "tail_seq",
]

BOOK_CHANNEL = "book"
#: levels per side subscribed (Bitfinex: 1, 25, 100 or 250 for P0)
BOOK_LEN = "100"

Kind = Literal["snapshot", "update", "hb", "cs", "other"]


def book_subscribe(symbol: str) -> str:
    """The subscribe request of a raw-price (P0) book, real-time (F0), ``BOOK_LEN`` levels per side."""
    return orjson.dumps(
        {"event": "subscribe", "channel": BOOK_CHANNEL, "symbol": symbol, "prec": "P0", "freq": "F0", "len": BOOK_LEN}
    ).decode()


def tail_seq(frame: str) -> int | None:
    """The trailing sequence number of a data frame that is not a checksum (string operations only): the last
    element when it follows an array or a string (``[c,[..],7]``, ``[c,"hb",7]``, ``[c,"te",[..],7]``)."""
    i = frame.rfind(",")
    if i < 1 or not frame.endswith("]") or frame[i - 1] not in ']"':
        return None
    tail = frame[i + 1 : -1].strip()
    return int(tail) if tail.isdigit() else None


def sequence_breaks(frames: Iterable[str]) -> list[tuple[int | None, int]]:
    """(previous, received) sequence numbers wherever a connection's frames (in order) do not run one by one."""
    out: list[tuple[int | None, int]] = []
    last: int | None = None
    for frame in frames:
        if not frame.startswith("["):
            continue
        _, seq = split_seq(exact(frame))
        if seq is None:
            continue
        if last is not None and seq != last + 1:
            out.append((last, seq))
        last = seq
    return out


def _kind(body: list[Any]) -> Kind:
    if len(body) < 2:
        return "other"
    data = body[1]
    if data == "hb":
        return "hb"
    if data == "cs":
        return "cs"
    if isinstance(data, list):
        return "snapshot" if not data or isinstance(data[0], list) else "update"
    return "other"


def _level(triple: Sequence[str]) -> tuple[str, str, str]:
    """(side, price, size) of one ``[PRICE, COUNT, AMOUNT]``: side "bid"/"ask", size "0" when COUNT is 0."""
    price, count, amount = triple[0], triple[1], triple[2]
    side = "ask" if amount.startswith("-") else "bid"
    size = "0" if count == "0" else amount.lstrip("-")
    return side, price, size


class BitfinexBookBuilder:
    """One symbol's P0 book from its ``book`` frames: snapshot, updates, checksum frames (heartbeats ignored).

    ``valid`` from a snapshot until a checksum mismatch or a frame it cannot read. Levels keep the exchange's text
    (``2e-8`` included: the checksum hashes the text Bitfinex sent); asks are kept with their size, the checksum puts
    the minus sign back."""

    channels: frozenset[str] = frozenset({BOOK_CHANNEL})

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.book = L2Book(symbol, keep_raw=True)
        self.valid = False
        self.checksums_verified = 0
        #: the channel id of the last frame (the live session unsubscribes by it)
        self.chan_id: str | None = None

    def apply(self, body: list[Any]) -> tuple[EventKind, str] | Literal["synced"] | None:
        """One decoded frame without its sequence number; "synced" after a snapshot, (kind, why) on a mismatch."""
        self.chan_id = str(body[0])
        kind = _kind(body)
        if kind == "snapshot":
            bids: list[tuple[str, str]] = []
            asks: list[tuple[str, str]] = []
            for triple in body[1]:
                side, price, size = _level(triple)
                if size != "0":
                    (bids if side == "bid" else asks).append((price, size))
            self.book.load(bids, asks)
            self.valid = True
            return "synced"
        if kind == "update":
            if self.valid:
                side, price, size = _level(body[1])
                level = ((price, size),)
                try:
                    self.book.apply(level if side == "bid" else (), level if side == "ask" else ())
                except ValueError:
                    self.drop()
                    raise
            return None
        if kind == "cs" and self.valid and len(body) > 2:
            received = int(body[2])
            computed = self.checksum()
            if computed == received:
                self.checksums_verified += 1
                return None
            self.drop()
            return CHECKSUM, f"checksum mismatch: received {received}, computed {computed}"
        return None

    def checksum(self) -> int:
        """The documented CRC32 of the book as kept (asks' amounts negative, as Bitfinex sends them)."""
        bids = self.book.raw_bids(25)
        asks = [(p, "-" + s) for p, s in self.book.raw_asks(25)]
        return bitfinex_checksum(bids, asks)

    def drop(self) -> None:
        self.book.clear()
        self.valid = False

    # -- the BookBuilder contract (offline rebuild from the lake) ----------------------------------------------
    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        body, _ = split_seq(exact(payload))
        result = self.apply(body)
        if result == "synced":
            return StreamEvent(SYNCED, channel, self.symbol)
        if isinstance(result, tuple):
            return StreamEvent(result[0], channel, self.symbol, result[1])
        return None

    def checkpoint(self) -> dict[str, Any]:
        return {}

    def restore(
        self, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]], state: Mapping[str, Any]
    ) -> None:
        self.book.load(bids, asks)
        self.valid = True


class _Stream:
    __slots__ = ("builder", "state")

    def __init__(self, symbol: str) -> None:
        self.builder = BitfinexBookBuilder(symbol)
        self.state: SyncState = "buffering"


class BitfinexSession:
    """Per-connection book validation: a book per symbol, the checksum frames, and the connection's sequence numbers
    (where every frame is handed to it: made with subscriptions, as the collector does). Reported events: ``gap``
    (sequence break: every book of the connection), ``checksum`` (that symbol), ``synced`` (a snapshot)."""

    def __init__(self, subs: Sequence[Subscription]) -> None:
        self._streams: dict[str, _Stream] = {}
        for sub in subs:
            if sub.channel == BOOK_CHANNEL:
                self._streams[sub.symbol] = _Stream(sub.symbol)
        #: the connection-wide sequence is checked only when the session sees every frame (see the module doc)
        self.check_sequence = bool(subs)
        self.seq: int | None = None
        self.errors = 0
        self.sequence_gaps = 0

    def builder(self, symbol: str) -> BitfinexBookBuilder | None:
        stream = self._streams.get(symbol)
        return stream.builder if stream is not None else None

    def book(self, symbol: str) -> L2Book | None:
        stream = self._streams.get(symbol)
        return stream.builder.book if stream is not None and stream.builder.valid else None

    @property
    def checksums_verified(self) -> int:
        return sum(s.builder.checksums_verified for s in self._streams.values())

    def sync_state(self) -> dict[str, str]:
        return {symbol: s.state for symbol, s in self._streams.items()}

    def on_snapshot(self, symbol: str, body: str) -> SessionAction | None:
        return None  # books come over the WebSocket only

    def on_frame(self, channel: str, symbol: str, frame: str) -> SessionAction | None:
        if channel != BOOK_CHANNEL:
            gap = self._sequence(tail_seq(frame))
            return self._gap(gap) if gap is not None else None
        body, seq = split_seq(exact(frame))
        gap = self._sequence(seq)
        if gap is not None:
            return self._gap(gap)  # the frame itself goes with the dropped books: the resubscription reloads them
        stream = self._streams.get(symbol)
        if stream is None:
            stream = self._streams[symbol] = _Stream(symbol)
        result = stream.builder.apply(body)
        if result == "synced":
            stream.state = "synced"
            return SessionAction(events=(StreamEvent(SYNCED, channel, symbol),))
        if isinstance(result, tuple):
            self.errors += 1
            stream.state = "resyncing"
            return SessionAction(
                error=f"bitfinex book {symbol}: {result[1]}; resubscribing",
                send=self._resubscribe([stream]),
                events=(StreamEvent(result[0], channel, symbol, result[1]),),
            )
        return None

    def _sequence(self, seq: int | None) -> str | None:
        """Why the connection's sequence broke at ``seq``; None when it runs on (or is not checked)."""
        if seq is None or not self.check_sequence:
            return None
        last, self.seq = self.seq, seq
        if last is not None and seq != last + 1:
            return f"sequence gap: received {seq} after {last}"
        return None

    def _gap(self, problem: str) -> SessionAction:
        self.errors += 1
        self.sequence_gaps += 1
        streams = list(self._streams.values())
        events = []
        for stream in streams:
            stream.builder.drop()
            stream.state = "resyncing"
            events.append(StreamEvent(GAP, BOOK_CHANNEL, stream.builder.symbol, problem))
        return SessionAction(
            error=f"bitfinex: {problem}; resubscribing {len(streams)} book(s)",
            send=self._resubscribe(streams),
            events=tuple(events),
        )

    @staticmethod
    def _resubscribe(streams: Sequence[_Stream]) -> tuple[str, ...]:
        """Unsubscribe (by the channel id the book's frames came with) and subscribe again: Bitfinex then sends a new
        ``subscribed`` (a new chanId) and a fresh snapshot. A book that has had no frame yet is waiting for its first
        snapshot already: nothing to send."""
        out: list[str] = []
        for stream in streams:
            chan = stream.builder.chan_id
            if chan is None or not chan.isdigit():
                continue
            out.append(orjson.dumps({"event": "unsubscribe", "chanId": int(chan)}).decode())
            out.append(book_subscribe(stream.builder.symbol))
        return tuple(out)
