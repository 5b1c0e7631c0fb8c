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

Frames are handled by chunks (``read_chunks``): routing, frame counters and the newest exchange time are column
operations, and only the frames that make an event (a stream's first frame, book frames, snapshots, control
frames where the exchange acknowledges subscriptions, the first frame past each liveness step) run through the
per-frame logic, with the session's state as it was at that frame. The rows land in one file per exchange and
hour (``mdplatform.lake.HourWriter``).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from .._time import MINUTE_NS, SECOND_NS
from ..contract import BinaryFrames, ConnectionRouting
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
from ..lake import HourWriter
from ..schemas import RAW_ARROW
from ._detect import check_exchange
from ._read import CONNECT, REST, WS, BadLine, DamagedCapture, FrameChunk, ReadStats, read_chunks

if TYPE_CHECKING:
    import threading

__all__ = ["ImportStats", "capture_id", "import_capture"]

#: the collector's channel for REST depth snapshots (mdplatform.collector lands them under this name)
SNAPSHOT_CHANNEL = "depthSnapshot"
#: the exchange modules' channel for acks, errors and pongs
CONTROL_CHANNEL = "control"
#: detail of the ``close`` event of a session
END_OF_CAPTURE = "end of capture"
DAMAGED = "capture damaged"
RECONNECT_IN_CAPTURE = "reconnect in capture"
#: an hour's files are committed once the capture's receive time is this far past the hour's end (a capture's
#: frames are in receive order up to small jitter)
FLUSH_AFTER_NS = 5 * 60 * SECOND_NS

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
    #: the damaged gzip file that ended the import (None: none), after landing its lines before the damage
    damaged: DamagedCapture | None = None

    @property
    def bad_lines(self) -> list[BadLine]:
        return self.read.bad

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        channels = ", ".join(f"{ex}/{ch}={n}" for (ex, ch), n in sorted(self.rows_by_channel.items()))
        events = ", ".join(f"{kind}={n}" for kind, n in sorted(self.events.items()))
        text = (
            f"imported {self.rows} rows from {self.files} file(s) into {self.files_written} hour file(s): "
            f"{channels or 'nothing'}; {self.sessions} session(s), events {events or 'none'}; "
            f"skipped {self.read.sent} client frame(s), {self.read.blank} blank line(s)"
        )
        if self.read.bad:
            first = self.read.bad[0]
            text += f"; {len(self.read.bad)} unreadable line(s), first {first.path}:{first.line} ({first.reason})"
        if self.stopped_at is not None:
            text += f"; STOPPED at {self.stopped_at}: what was read before it is written, the rest is not"
        if self.damaged is not None:
            text += f"; DAMAGED: {self.damaged}: its lines before the damage are written, no file after it is read"
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
        self, writer: HourWriter, exchange: Exchange, conn_id: str, alive_every_ns: int, events: dict[str, int]
    ) -> None:
        self.writer = writer
        self.exchange = exchange
        self.exchange_id = exchange.id
        self.conn_id = conn_id
        self.rest_conn_id = f"{conn_id}/rest"
        self.alive_every_ns = alive_every_ns
        self.events = events
        caps = exchange.capabilities
        #: the channels the book session sees, as the collector hands them (books, and the channels whose frames
        #: carry the connection's sequence numbers)
        self.book_channels = caps.book_channels | caps.session_channels
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

    def frame(self, recv_ns: int, channel: str, symbol: str, frame: str, t: int | None) -> None:
        """What one frame (already counted in ``seq``, its exchange time ``t`` already in the session's state)
        records, but for ``alive`` (``alive``)."""
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

    def alive(self, recv_ns: int) -> None:
        """The first frame at or after ``next_alive``: an ``alive`` row (and the subscriptions restated in a new
        minute)."""
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
        """A REST reply (already counted in ``rest_seq``): a snapshot for the book session."""
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


class _Routes:
    """(channel, symbol) of frames through the exchange's ``route``: once per combined-stream name where the
    capture names the stream (the route of such a frame is its stream's), else frame by frame."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.by_stream: dict[str, tuple[str, str]] = {}
        self.route: Callable[[str], tuple[str, str]] = exchange.route
        self.reconnect()

    def reconnect(self) -> None:
        """A recorded connection starts: an exchange that numbers its streams per connection (``ConnectionRouting``)
        learns the numbers afresh, as the live collector's router does."""
        if isinstance(self.exchange, ConnectionRouting):
            self.route = self.exchange.connection_router()

    def __call__(self, chunk: FrameChunk, path: str, bad: list[BadLine]) -> tuple[pl.Series, pl.Series, np.ndarray]:
        """(channel, symbol) of each row, and which rows to keep (those whose route failed are reported in
        ``bad``). REST replies are depth snapshots of their symbol."""
        streams = chunk.streams
        for name in streams.drop_nulls().unique().to_list():
            if name not in self.by_stream:
                first = int(streams.eq(name).arg_true()[0])
                with contextlib.suppress(Exception):  # its frames are routed (and reported) one by one below
                    self.by_stream[name] = self.route(chunk.frames[first])
        names = list(self.by_stream)
        channels = streams.replace_strict(names, [self.by_stream[n][0] for n in names], default=None)
        symbols = streams.replace_strict(names, [self.by_stream[n][1] for n in names], default=None)
        rest = pl.Series(chunk.kinds == REST)
        channels = channels.zip_with(~rest, pl.Series([SNAPSHOT_CHANNEL] * len(chunk), dtype=pl.String))
        symbols = symbols.zip_with(~rest, chunk.symbols)
        keep = np.ones(len(chunk), bool)
        todo = channels.is_null().arg_true().to_list()
        if todo:
            found_channels, found_symbols, where = [], [], []
            for i in todo:
                frame = chunk.frames[i]
                try:
                    channel, symbol = self.route(frame)
                except Exception as exc:
                    bad.append(BadLine(path, int(chunk.lines[i]), f"route failed: {exc!r}", frame[:120]))
                    keep[i] = False
                    channel, symbol = "", ""
                where.append(i)
                found_channels.append(channel)
                found_symbols.append(symbol)
            channels = channels.scatter(where, found_channels)
            symbols = symbols.scatter(where, found_symbols)
        return channels, symbols, keep


def _feed(
    session: _Session, chunk: FrameChunk, routes: _Routes, path: str, bad: list[BadLine], open_detail: str
) -> pa.Table:
    """One chunk of a session's frames (no connect marker): their raw rows, and the events they make recorded
    through ``session``, which ends in the state the last frame left it in."""
    channels, symbols, keep = routes(chunk, path, bad)
    recv, kinds, frames = chunk.recv_ns, chunk.kinds, chunk.frames
    if not keep.all():
        kept = pl.Series(keep)
        recv, kinds, frames = recv[keep], kinds[keep], frames.filter(kept)
        channels, symbols = channels.filter(kept), symbols.filter(kept)
    n = len(recv)
    if n == 0:
        return RAW_ARROW.empty_table()
    ws = kinds == WS
    rest = ~ws
    idx = np.arange(n)
    seq = session.seq + np.cumsum(ws)
    rest_seq = session.rest_seq + np.cumsum(rest)
    # the newest exchange time so far, and when the frame carrying it was received (REST replies are not frames)
    times = session.exchange.exchange_times(frames).fill_null(-1).to_numpy().astype(np.int64)
    times[rest] = -1
    carry = -1 if session.exchange_ts is None else session.exchange_ts
    newest = np.maximum.accumulate(np.maximum(times, carry))
    before = np.concatenate(([carry], newest[:-1]))
    raised = np.maximum.accumulate(np.where(times > before, idx, -1))
    last_ws = np.maximum.accumulate(np.where(ws, idx, -1))
    initial = (session.seq, session.rest_seq, session.exchange_ts, session.frame_recv_ts, session.last_recv)

    def at(i: int) -> None:
        """The session's state as the frame (or reply) at ``i`` left it (``i`` -1: as the chunk found it)."""
        if i < 0:
            session.seq, session.rest_seq, session.exchange_ts, session.frame_recv_ts, session.last_recv = initial
            return
        session.seq, session.rest_seq = int(seq[i]), int(rest_seq[i])
        if newest[i] >= 0:
            session.exchange_ts = int(newest[i])
            if raised[i] >= 0:
                session.frame_recv_ts = int(recv[raised[i]])
        if last_ws[i] >= 0:
            session.last_recv = int(recv[last_ws[i]])

    # the rows the per-frame logic must see: every one where the exchange acknowledges subscriptions (acks may
    # unsubscribe a stream, whose next frame subscribes it again); else snapshots, book frames, each stream's first
    # frame, the first frame with an exchange time, and the session's first frame (it opens the session)
    if session.subscribe_ack:
        marks = idx
    else:
        pairs = pl.DataFrame({"c": channels, "s": symbols})
        first = pairs.select(pl.struct("c", "s").is_first_distinct()).to_series().to_numpy()
        new = first & ws & (channels != "").to_numpy() & (channels != CONTROL_CHANNEL).to_numpy()
        for i in np.flatnonzero(new).tolist():
            new[i] = (channels[i], symbols[i]) not in session.subscribed
        marks_set = set(np.flatnonzero(rest | new | channels.is_in(list(session.book_channels)).to_numpy()).tolist())
        if not session.started and (timed := np.flatnonzero(ws & (times >= 0))).size:
            marks_set.add(int(timed[0]))
        if not session.opened and (wss := np.flatnonzero(ws)).size:
            marks_set.add(int(wss[0]))
        marks = np.array(sorted(marks_set), np.int64)
    # the liveness steps: the first frame at or after ``next_alive``, found window by window
    probe = np.where(ws, recv, -1)

    def next_alive(start: int) -> int:
        if not session.opened:
            return n
        while start < n:
            stop = min(n, start + 4096)
            hits = np.flatnonzero(probe[start:stop] >= session.next_alive)
            if hits.size:
                return start + int(hits[0])
            start = stop
        return n

    mark_list = marks.tolist()
    todo_channels = channels.gather(mark_list).to_list()
    todo_symbols = symbols.gather(mark_list).to_list()
    todo_frames = frames.gather(mark_list).to_list()
    k = 0
    alive_at = next_alive(0)
    while True:
        i = mark_list[k] if k < len(mark_list) else n
        j = min(i, alive_at)
        if j >= n:
            break
        at(j)
        if j == i:
            if rest[i]:
                session.rest(int(recv[i]), todo_symbols[k], todo_frames[k])
            else:
                if not session.opened:
                    at(i - 1)  # the session opens before its first frame
                    session.open(int(recv[i]), open_detail)
                    at(i)
                    alive_at = next_alive(i)
                t = int(times[i]) if times[i] >= 0 else None
                session.frame(int(recv[i]), todo_channels[k], todo_symbols[k], todo_frames[k], t)
            k += 1
        if j == alive_at:
            session.alive(int(recv[j]))
            alive_at = next_alive(j + 1)
    at(n - 1)
    is_rest = pl.Series(rest)
    table = pl.select(
        recv_ts=pl.Series(recv).cast(pl.Datetime("ns", "UTC")),
        exchange=pl.lit(session.exchange_id),
        channel=channels,
        symbol=symbols,
        conn_id=pl.when(is_rest).then(pl.lit(session.rest_conn_id)).otherwise(pl.lit(session.conn_id)),
        seq=pl.Series(np.where(rest, rest_seq, seq)),
        payload=frames,
    ).to_arrow()
    return table.cast(RAW_ARROW)


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
    Each file's exchange is detected from its content (``check_exchange``): ``exchange_id``, when given, must be it,
    checked for every file before anything lands. ``alive_every_s``: receive time between ``alive`` events.

    Each file lands in one file per exchange and receive hour and table (``HourWriter``), named after the capture
    file: importing the same file again replaces its files (frames and events) instead of duplicating rows.
    Memory stays bounded whatever the capture's size: the file is read in blocks, and an hour's files are
    committed once the capture has moved ``FLUSH_AFTER_NS`` past the hour. ``stop`` (set by a signal) ends the
    import between two blocks: what was read before is written, the rest is not. A gzip file whose data ends early
    (a recording cut short) or is corrupt ends the import likewise: its whole lines before the damage land, as a
    stopped import's do, and ``damaged`` says where; the files after it are not read.
    """
    if not alive_every_s > 0:
        raise ValueError("alive_every_s must be > 0")
    alive_every_ns = round(alive_every_s * SECOND_NS)
    stats = ImportStats()
    files = [(path, get_exchange(check_exchange(path, exchange_id))) for path in paths]
    for path, exchange in files:
        routes = _Routes(exchange)
        file_id = capture_id(path)
        file_conn_id = f"capture:{file_id}"
        open_detail = f"capture {Path(path).name}"
        read = ReadStats()
        counts: dict[str, int] = {}
        first = last = None
        connects = 0
        with HourWriter(root, f"capture-{file_id}") as writer:
            session = _Session(writer, exchange, file_conn_id, alive_every_ns, stats.events)
            for chunk in _until_damaged(read_chunks(path, stats=read, connects=True), stats):
                if stop is not None and stop.is_set():
                    stats.stopped_at = f"{path}:{chunk.lines[0]}"
                    break
                writer.close_before(int(chunk.recv_ns[0]) - FLUSH_AFTER_NS)
                if chunk.kinds[0] == CONNECT:
                    routes.reconnect()
                    session.close(RECONNECT_IN_CAPTURE)
                    connects += 1
                    session = _Session(writer, exchange, f"{file_conn_id}:{connects}", alive_every_ns, stats.events)
                    session.open(int(chunk.recv_ns[0]), chunk.frames[0])
                    stats.sessions += 1
                    continue
                if isinstance(exchange, BinaryFrames):
                    chunk = _decoded(chunk, exchange, str(path), read.bad)
                opened = session.opened
                table = _feed(session, chunk, routes, str(path), read.bad, open_detail)
                stats.sessions += session.opened and not opened
                if table.num_rows:
                    writer.append(table)
                    for channel, n in pl.Series(table.column("channel")).value_counts().iter_rows():
                        counts[channel] = counts.get(channel, 0) + n
                    recv = table.column("recv_ts")
                    first = recv[0].value if first is None else first
                    last = recv[-1].value
            ended = END_OF_CAPTURE if stats.stopped_at is None else "import stopped"
            session.close(ended if stats.damaged is None else DAMAGED)
        stats.files += 1
        stats.files_written += writer.stats.files_written
        stats.event_files_written += writer.stats.event_files_written
        stats.read.merge(read)
        for channel, n in counts.items():
            key = (exchange.id, channel)
            stats.rows_by_channel[key] = stats.rows_by_channel.get(key, 0) + n
            stats.rows += n
        if first is not None and last is not None:
            stats.first_recv_ns = first if stats.first_recv_ns is None else min(stats.first_recv_ns, first)
            stats.last_recv_ns = last if stats.last_recv_ns is None else max(stats.last_recv_ns, last)
        if stats.stopped_at is not None or stats.damaged is not None:
            break
    return stats


def _decoded(chunk: FrameChunk, exchange: BinaryFrames, path: str, bad: list[BadLine]) -> FrameChunk:
    """The chunk with its binary frames as the text they encode: a recording keeps a binary frame as a Python bytes
    literal (cryptofeed: ``b'\\x1f\\x8b...'``), which the exchange decodes (HTX: gzip). A frame that does not decode
    stays as recorded; its route then fails or quarantines it, and ``bad`` says which line."""
    frames = chunk.frames.to_list()
    changed = False
    for i, frame in enumerate(frames):
        if frame[:2] in ("b'", 'b"'):
            try:
                text = exchange.decode_binary(ast.literal_eval(frame))
            except (ValueError, SyntaxError, OSError, EOFError, zlib.error) as exc:
                bad.append(BadLine(path, int(chunk.lines[i]), f"binary frame does not decode: {exc!r}", frame[:120]))
                continue
            if text is not None:
                frames[i], changed = text, True
    return dataclasses.replace(chunk, frames=pl.Series(frames, dtype=pl.String)) if changed else chunk


def _until_damaged(chunks: Iterator[FrameChunk], stats: ImportStats) -> Iterator[FrameChunk]:
    """``chunks`` up to a damage of the file, which ``stats.damaged`` then records."""
    try:
        yield from chunks
    except DamagedCapture as exc:
        stats.damaged = exc
