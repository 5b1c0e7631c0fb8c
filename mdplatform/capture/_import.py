"""Landing a recording in the raw layer, row for row as the live collector would have landed it, with the events
the collector would have recorded beside it.

A capture is a sequence of continuous sessions (connections): a hftbacktest file is one, a cryptofeed file starts
a new one at every connect line. Each session gets what a live connection records (see
``mdplatform.collector``): ``open`` at its first line, ``subscribed`` the first time a stream appears (and from
subscribe acks where the exchange sends them), ``start`` at the first frame carrying an exchange time, ``alive``
at the first frame at or after every ``alive_every_s`` of receive time since the previous one (a stretch without
frames has none: a recording proves nothing about time it holds no frames for), ``subscribed`` restated with
the first ``alive`` of every receive minute, what the exchange's book session reports over the recorded book
frames and snapshots (``gap``, ``checksum``, ``synced``), and ``close`` at its last frame.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .._time import MINUTE_NS, SECOND_NS
from ..exchanges import (
    ALIVE,
    CLOSE,
    FRAME_ERROR,
    GAP,
    OPEN,
    START,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Exchange,
    SessionAction,
    StreamSession,
    get_exchange,
)
from ._detect import detect_exchange
from ._read import BadLine, ReadStats, read_capture

if TYPE_CHECKING:
    import threading

    from ..lake import RawWriter

__all__ = ["ImportStats", "capture_id", "import_capture"]

#: the collector's channel for REST depth snapshots (mdplatform.collector lands them under this name)
SNAPSHOT_CHANNEL = "depthSnapshot"
#: the exchange modules' channel for acks, errors and pongs
CONTROL_CHANNEL = "control"
#: detail of the ``close`` event of a session
END_OF_CAPTURE = "end of capture"
RECONNECT_IN_CAPTURE = "reconnect in capture"
#: receive time between writes of the minutes an import has left behind (what bounds its memory)
FLUSH_EVERY_NS = 5 * 60 * SECOND_NS

_SUFFIXES = (".gz", ".txt", ".jsonl", ".log", ".data")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(slots=True)
class ImportStats:
    files: int = 0
    rows: int = 0
    #: (exchange, channel) -> rows landed
    rows_by_channel: dict[tuple[str, str], int] = field(default_factory=dict)
    #: what the reader saw: frames per kind, skipped client frames, blank lines and the bad lines
    read: ReadStats = field(default_factory=ReadStats)
    files_written: int = 0
    first_recv_ns: int | None = None
    last_recv_ns: int | None = None
    #: continuous sessions (connections) found: one per hftbacktest file, one per cryptofeed connect line
    sessions: int = 0
    #: event kind -> rows written to the lake's events/ table
    events: dict[str, int] = field(default_factory=dict)
    event_files_written: int = 0
    #: "<file>:<line>" where a stop request ended the import (None: it ran to the end)
    stopped_at: str | None = None

    @property
    def bad_lines(self) -> list[BadLine]:
        return self.read.bad

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        channels = ", ".join(f"{ex}/{ch}={n}" for (ex, ch), n in sorted(self.rows_by_channel.items()))
        events = ", ".join(f"{kind}={n}" for kind, n in sorted(self.events.items()))
        text = (
            f"imported {self.rows} rows from {self.files} file(s) into {self.files_written} part file(s): "
            f"{channels or 'nothing'}; {self.sessions} session(s), events {events or 'none'}; "
            f"skipped {self.read.sent} client frame(s), {self.read.blank} blank line(s)"
        )
        if self.read.bad:
            first = self.read.bad[0]
            text += f"; {len(self.read.bad)} unreadable line(s), first {first.path}:{first.line} ({first.reason})"
        if self.stopped_at is not None:
            text += f"; STOPPED at {self.stopped_at}: what was read before it is written, the rest is not"
        return text


def capture_id(path: str | Path) -> str:
    """A stable name for a capture file: its name without compression/text suffixes ("btcusdt_20240808")."""
    name = Path(path).name
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return _UNSAFE.sub("_", name) or "capture"


class _Session:
    """One continuous connection of a capture: its frames and the events a live collector would have recorded."""

    def __init__(
        self, writer: RawWriter, exchange: Exchange, conn_id: str, alive_every_ns: int, events: dict[str, int]
    ) -> None:
        self.writer = writer
        self.exchange = exchange
        self.exchange_id = exchange.id
        self.conn_id = conn_id
        self.rest_conn_id = f"{conn_id}/rest"
        self.alive_every_ns = alive_every_ns
        self.events = events
        caps = exchange.capabilities
        self.book_channels = caps.book_channels
        self.subscribe_ack = caps.subscribe_ack
        self.opened = False
        self.open_recv = 0
        self.seq = 0
        self.rest_seq = 0
        self.last_recv = 0
        self.started = False
        self.exchange_ts: int | None = None
        self.frame_recv_ts: int | None = None
        self.next_alive = 0
        self.alive_minute = 0
        self.subscribed: dict[tuple[str, str], None] = {}
        self.stated: dict[tuple[str, str], int] = {}
        self.session: StreamSession | None = None

    def event(
        self,
        recv_ts: int,
        kind: str,
        channel: str = "",
        symbol: str = "",
        detail: str = "",
        *,
        start: int | None = None,
    ) -> None:
        """One events row; ``start`` is the exchange time of the frame received at ``recv_ts`` (the ``start``
        event), every other event carries the newest exchange time known."""
        exchange_ts, frame_recv_ts = (start, recv_ts) if start is not None else (self.exchange_ts, self.frame_recv_ts)
        self.writer.event(
            recv_ts, self.exchange_id, self.conn_id, kind, channel, symbol, self.seq, exchange_ts, frame_recv_ts, detail
        )
        self.events[kind] = self.events.get(kind, 0) + 1

    def open(self, recv_ns: int, detail: str) -> None:
        self.opened = True
        self.open_recv = recv_ns
        self.last_recv = recv_ns
        self.next_alive = recv_ns + self.alive_every_ns
        self.alive_minute = recv_ns - recv_ns % MINUTE_NS
        # no subscriptions known in advance; the exchange's rest URL only names snapshot requests we never make
        self.session = self.exchange.new_session((), None)
        self.event(recv_ns, OPEN, detail=detail)

    def subscribe(self, recv_ns: int, stream: tuple[str, str]) -> None:
        self.subscribed[stream] = None
        self.stated[stream] = recv_ns - recv_ns % MINUTE_NS
        self.event(recv_ns, SUBSCRIBED, *stream)

    def frame(self, recv_ns: int, channel: str, symbol: str, frame: str) -> None:
        self.seq += 1
        self.writer.append(recv_ns, self.exchange_id, channel, symbol, self.conn_id, self.seq, frame)
        self.last_recv = recv_ns
        t = self.exchange.exchange_time(frame)
        if t is not None and (self.exchange_ts is None or t > self.exchange_ts):
            self.exchange_ts, self.frame_recv_ts = t, recv_ns
        if channel == CONTROL_CHANNEL:
            if self.subscribe_ack:
                for ev in self.exchange.control_events(frame):
                    stream = (ev.channel, ev.symbol)
                    if ev.kind == SUBSCRIBED:
                        self.subscribe(recv_ns, stream)
                        continue
                    if ev.kind == UNSUBSCRIBED:
                        self.subscribed.pop(stream, None)
                        self.stated.pop(stream, None)
                    self.event(recv_ns, ev.kind, ev.channel, ev.symbol, ev.detail)
        elif channel and (channel, symbol) not in self.subscribed:
            # where streams are named at connect time (no acks), the capture's connection carried every stream it
            # shows from its start: a quiet stream was subscribed before its first frame
            self.subscribe(recv_ns if self.subscribe_ack else self.open_recv, (channel, symbol))
        if t is not None and not self.started:
            self.started = True
            self.event(recv_ns, START, start=t)
        if channel in self.book_channels and self.session is not None:
            try:
                action = self.session.on_frame(channel, symbol, frame)
            except Exception as exc:
                # as the collector does: the frame is landed, flagged, and its book is out of sync (the session's
                # chain or checksum finds the next snapshot); the import goes on
                problem = f"could not be interpreted: {type(exc).__name__}: {exc}"
                self.event(recv_ns, FRAME_ERROR, channel, symbol, problem)
                self.event(recv_ns, GAP, channel, symbol, f"frame {self.seq} ({channel} {symbol}) {problem}")
            else:
                self.act(recv_ns, action)
        if recv_ns >= self.next_alive:
            self.next_alive = recv_ns + self.alive_every_ns
            minute = recv_ns - recv_ns % MINUTE_NS
            if minute != self.alive_minute:
                self.alive_minute = minute
                for stream in self.subscribed:
                    if self.stated.get(stream) != minute:
                        self.stated[stream] = minute
                        self.event(recv_ns, SUBSCRIBED, *stream)
            self.event(recv_ns, ALIVE)

    def rest(self, recv_ns: int, symbol: str, body: str) -> None:
        self.rest_seq += 1
        self.writer.append(recv_ns, self.exchange_id, SNAPSHOT_CHANNEL, symbol, self.rest_conn_id, self.rest_seq, body)
        if self.opened and self.session is not None:  # a reply outside any connection syncs no book
            self.act(recv_ns, self.session.on_snapshot(symbol, body))

    def act(self, recv_ns: int, action: SessionAction | None) -> None:
        """Record what the book session reports; its requests (fetch a snapshot, resubscribe) are not replayed:
        the capture holds what was fetched."""
        if action is not None:
            for ev in action.events:
                self.event(recv_ns, ev.kind, ev.channel, ev.symbol, ev.detail)

    def close(self, detail: str) -> None:
        if self.opened:
            self.event(self.last_recv, CLOSE, detail=detail)
            self.opened = False


def import_capture(
    paths: Iterable[str | Path],
    exchange_id: str | None = None,
    root: str | None = None,
    *,
    alive_every_s: float = 5.0,
    stop: threading.Event | None = None,
) -> ImportStats:
    """Write recordings into the raw layer under ``root`` (default: the configured lake), and the events a live
    collector would have recorded into the ``events/`` table beside it.

    Every received frame becomes one raw row: ``recv_ts`` from the recording, channel/symbol from the
    exchange module's ``route``, ``seq`` counting frames from 1 per session, as the collector does per
    connection. ``conn_id`` is "capture:<file id>" for a hftbacktest file (one session) and
    "capture:<file id>:<n>" for the n-th connect line of a cryptofeed file (frames before the first connect line
    use "capture:<file id>"). REST snapshot replies land like the collector lands them: channel
    "depthSnapshot", the instrument's symbol, ``conn_id`` "<conn_id>/rest" with its own counter.
    ``exchange_id`` None detects it per file. ``alive_every_s``: receive time between ``alive`` events. Each file
    is written by a ``RawWriter`` whose id derives from the file name, so importing the same file again replaces
    its part files (frames and events) instead of duplicating rows.

    Memory stays bounded whatever the capture's size: every ``FLUSH_EVERY`` of receive time, the minutes the
    recording has left behind are written (a frame recorded out of order for a written minute becomes another part
    of it). ``stop`` (set by SIGINT/SIGTERM in ``mdp import-capture``) ends the import after the frame being read:
    what was read is written, ``stats.stopped_at`` says where it stopped.
    """
    from ..lake import RawWriter

    if not alive_every_s > 0:
        raise ValueError("alive_every_s must be > 0")
    alive_every_ns = round(alive_every_s * SECOND_NS)
    stats = ImportStats()
    for path in paths:
        exchange = get_exchange(exchange_id or detect_exchange(path))
        route = exchange.route
        file_id = capture_id(path)
        file_conn_id = f"capture:{file_id}"
        read = ReadStats()
        counts: dict[tuple[str, str], int] = {}
        first = last = None
        connects = 0
        with RawWriter(root, writer_id=f"capture-{file_id}") as writer:
            session = _Session(writer, exchange, file_conn_id, alive_every_ns, stats.events)
            flushed = 0
            for cf in read_capture(path, stats=read, connects=True):
                if stop is not None and stop.is_set():
                    stats.stopped_at = f"{path}:{cf.line}"
                    break
                if cf.recv_ns - flushed >= FLUSH_EVERY_NS:
                    # minutes that ended before this frame's minute are done (captures are in receive order)
                    writer.flush_closed(cf.recv_ns - cf.recv_ns % MINUTE_NS)
                    flushed = cf.recv_ns
                if cf.kind == "connect":
                    session.close(RECONNECT_IN_CAPTURE)
                    connects += 1
                    session = _Session(writer, exchange, f"{file_conn_id}:{connects}", alive_every_ns, stats.events)
                    session.open(cf.recv_ns, cf.frame)
                    stats.sessions += 1
                    continue
                if cf.kind == "rest":
                    channel = SNAPSHOT_CHANNEL
                    session.rest(cf.recv_ns, cf.symbol, cf.frame)
                else:
                    try:
                        channel, symbol = route(cf.frame)
                    except Exception as exc:
                        read.bad.append(BadLine(str(path), cf.line, f"route failed: {exc!r}", cf.frame[:120]))
                        continue
                    if not session.opened:  # a file without connect lines (or frames before the first): one session
                        session.open(cf.recv_ns, f"capture {Path(path).name}")
                        stats.sessions += 1
                    session.frame(cf.recv_ns, channel, symbol, cf.frame)
                key = (exchange.id, channel)
                counts[key] = counts.get(key, 0) + 1
                if first is None:
                    first = cf.recv_ns
                last = cf.recv_ns
            session.close(END_OF_CAPTURE if stats.stopped_at is None else "import stopped")
        stats.files += 1
        stats.files_written += writer.stats.files_written
        stats.event_files_written += writer.stats.event_files_written
        stats.read.merge(read)
        for key, n in counts.items():
            stats.rows_by_channel[key] = stats.rows_by_channel.get(key, 0) + n
            stats.rows += n
        if first is not None and last is not None:
            stats.first_recv_ns = first if stats.first_recv_ns is None else min(stats.first_recv_ns, first)
            stats.last_recv_ns = last if stats.last_recv_ns is None else max(stats.last_recv_ns, last)
        if stats.stopped_at is not None:
            break
    return stats
