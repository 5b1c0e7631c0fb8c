"""The raw layer's writer: one row per received frame, buffered per (exchange, receive minute).

A minute's rows are written when the minute closes (``flush_closed``; with a journal, ``tick`` every 200 ms) and
on ``close``; a buffer that reaches ``max_rows`` is written early as another part of the same minute, so memory
stays bounded whatever the message rate. Parquet encoding runs on one background thread so the receive loop never
waits on disk or S3 (and, with a journal, the rows' conversion to Arrow and their journal records on another, so
that a slow lake never delays the journal). Rows come as Python lists (``append``, ``append_frames``) or as
batches already laid out as Arrow buffers by the collector's compiled receive path (``append_batch``,
``_frames.py``). Without a journal (an import, a backfill) the writer applies back-pressure once
``max_pending`` files are queued and fails after ``_WRITE_ATTEMPTS``; with one (the collector, ``_journal.py``) it
never blocks and never fails on the lake: what the lake does not take waits in the journal.

The collector's events (``event``: open, subscribed, alive, close, ...) are buffered and written the same way,
to the ``events/`` tree beside ``raw/``; an event for a minute already written becomes another part of it.

After the files of each flush are committed, a manifest in the landing log (``_landed.py``) says which minutes
got data, so the sensors find late minutes without walking the lake. ``tables`` redirects a writer to other
minute tables (``mdp backfill`` writes ``backfill/`` and ``backfill_events/``, partitioned by exchange time
through ``append_at`` and ``event(at_ns=...)``).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa

from .._time import iso_ns
from ..schemas import EVENTS_ARROW, RAW_ARROW
from ._frames import BatchSlice, FrameBatch, Part, RowRuns, frames_batch
from ._fs import lake_root
from ._journal import EVENTS, FRAMES, Journal, JournalError, Segment, encode, encoded_batch
from ._lakefile import EventRow, events_batch, write_minute_file
from ._landed import Landed, write_manifest
from ._paths import EVENTS_TABLE, MINUTE_NS, RAW_TABLE, MinuteTable, part_path

__all__ = ["RawWriter", "WriterStats"]

log = logging.getLogger("mdplatform.lake")

#: attempts at a file by a writer without a journal (an import), before it fails
_WRITE_ATTEMPTS = 3
#: with a journal: files queued for the writer thread beyond which new ones wait in the journal instead
_JOURNALED_PENDING = 16
#: a minute's journal segment is cut at this size (a replay holds one segment in memory)
_SEGMENT_BYTES = 64 << 20
#: pauses between attempts at a failing lake: doubling from the first to the last
_RETRY_FIRST_S = 1.0
_RETRY_MAX_S = 15.0
#: files per landing manifest at most (an import writes thousands)
_MANIFEST_FILES = 500
#: with a journal: frames of compiled batches (``append_batch``) journaled as soon as this many wait, not at the next
#: tick: at high rates the receive path's buffers come back within milliseconds (see ``collector/_batcher.pyx``) and
#: frames are on disk sooner
_JOURNAL_ROWS = 4096


@dataclass(slots=True)
class _Chunk:
    """Rows of one lake file in the making: Arrow batches already taken (being journaled, or journaled) plus the rows
    appended since."""

    exchange: str
    minute_ns: int
    #: the journal segment the rows go to (None: a writer without a journal)
    segment: Segment | None = None
    #: which file of (table, exchange, minute) in the segment these rows become
    chunk: int = 0
    #: the batches taken so far, in order (with a journal: made and journaled on the journal's thread)
    batches: list[Future[pa.RecordBatch]] = field(default_factory=list)
    batch_rows: int = 0

    def pending(self) -> int:
        raise NotImplementedError

    def _job(self) -> Callable[[], pa.RecordBatch]:
        raise NotImplementedError

    def take(self) -> Callable[[], pa.RecordBatch] | None:
        """The rows appended since the last ``take``, as a function making their batch (to run on any thread), or
        None when there are none."""
        n = self.pending()
        if not n:
            return None
        self.batch_rows += n
        return self._job()

    def size(self) -> int:
        return self.batch_rows + self.pending()


@dataclass(slots=True)
class _Buffer(_Chunk):
    #: rows in arrival order: sealed parts, then the open run lists (``_frames.py``)
    parts: list[Part] = field(default_factory=list)
    part_rows: int = 0
    runs: RowRuns = field(default_factory=RowRuns)
    #: rows the chunk may take before it is full (``max_rows`` less the rows already taken)
    room: int = 0

    def pending(self) -> int:
        return self.part_rows + len(self.runs.payload)

    def add(self, part: BatchSlice) -> None:
        if self.runs.payload:  # the rows before it stay before it
            self.parts.append(self.runs)
            self.part_rows += self.runs.rows
            self.runs = RowRuns()
        self.parts.append(part)
        self.part_rows += part.rows

    def _job(self) -> Callable[[], pa.RecordBatch]:
        self.room -= self.pending()
        parts = self.parts
        if self.runs.payload:
            parts.append(self.runs)
            self.runs = RowRuns()
        self.parts, self.part_rows = [], 0
        return partial(frames_batch, self.exchange, parts)


@dataclass(slots=True)
class _EventBuffer(_Chunk):
    rows: list[EventRow] = field(default_factory=list)

    def pending(self) -> int:
        return len(self.rows)

    def _job(self) -> Callable[[], pa.RecordBatch]:
        rows, self.rows = self.rows, []
        return partial(events_batch, self.exchange, rows)


@dataclass(slots=True)
class WriterStats:
    """Raw frames (``rows_*``, ``files_written``) and events (``events_*``, ``event_files_written``); with a
    journal, ``rows_replayed`` of them were written from journal segments (a crash, a lake that was failing)."""

    rows_appended: int = 0
    rows_written: int = 0
    files_written: int = 0
    write_errors: int = 0
    events_appended: int = 0
    events_written: int = 0
    event_files_written: int = 0
    rows_replayed: int = 0
    segments_replayed: int = 0


class RawWriter:
    """Buffers raw rows and writes them to ``{root}/raw/exchange=X/date=/hour=/minute=/part-*.parquet``, and the
    collector's events to ``{root}/events/exchange=X/date=/hour=/minute=/part-*.parquet`` (same part names).

    ``writer_id`` names this writer's part files; a deterministic id (as ``import-capture`` uses) makes a
    repeated write of the same input replace the same files instead of adding duplicates.

    ``journal`` (a local directory) makes the writer crash-safe and storage-fault tolerant (``_journal.py``):
    ``tick`` (every 200 ms) journals the rows appended since the last one and writes closed minutes; a lake
    write that fails leaves its rows in the journal, retried with backoff from disk while new rows keep being
    journaled, until ``journal_budget_bytes`` is exhausted (``tick`` raises ``JournalError`` then). Segments left
    by an earlier process are written to the lake first.
    """

    def __init__(
        self,
        root: str | None = None,
        *,
        writer_id: str | None = None,
        max_rows: int = 50_000,
        max_pending: int = 2,
        tables: tuple[MinuteTable, MinuteTable] = (RAW_TABLE, EVENTS_TABLE),
        journal: str | None = None,
        journal_budget_bytes: int = 2 << 30,
    ) -> None:
        self.root = lake_root(root)
        self.tables = tables
        self.writer_id = writer_id or f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
        self.max_rows = max_rows
        self.max_pending = max_pending
        self.stats = WriterStats()
        self._buffers: dict[tuple[str, int], _Buffer] = {}
        self._event_buffers: dict[tuple[str, int], _EventBuffer] = {}
        # without a journal: the next part number per (exchange, minute), per table (a writer without a journal
        # is a finite import or backfill)
        self._parts: dict[tuple[str, int], int] = {}
        self._event_parts: dict[tuple[str, int], int] = {}
        self._pending: list[Future[int]] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-writer")
        self._error: BaseException | None = None
        # the buffer of the last append: nearly every frame goes to the same one
        self._cur: _Buffer | None = None
        self._cur_exchange = ""
        self._cur_start = 0
        self._cur_end = -1
        # files committed since the last manifest (touched by the writer thread only)
        self._landed: list[Landed] = []
        self._manifests = 0
        # with a journal: the open segment per minute, segments waiting for the lake (appended by the writer
        # thread only), and the lake's failure if it is failing
        self.journal = Journal(journal, self.writer_id, budget_bytes=journal_budget_bytes) if journal else None
        # with a journal: batches are made, encoded and journaled on a thread of their own, in order (a lake that
        # is slow to write never delays the journal); the last job handed to it, and what failed there
        self._journaling = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-journal") if journal else None
        self._journaled: Future[pa.RecordBatch] | None = None
        self._journal_error: BaseException | None = None
        #: the last job handed to the journal's thread at the last tick
        self._ticked: Future[pa.RecordBatch] | None = None
        self._segments: dict[int, Segment] = {}
        self._backlog: deque[Segment] = deque(self.journal.leftovers() if self.journal else ())
        self._failure: str | None = None
        self._failing_since_ns = 0
        self._retry_at = 0.0
        self._retry_delay_s = _RETRY_FIRST_S
        self._draining: Future[int] | None = None

    # --- appending ---------------------------------------------------------------------------------

    def append(
        self, recv_ts: int, exchange: str, channel: str, symbol: str, conn_id: str, seq: int, payload: str
    ) -> None:
        if recv_ts >= self._cur_end or recv_ts < self._cur_start or exchange != self._cur_exchange:
            self._select(recv_ts, exchange)
        assert self._cur is not None
        self._put(self._cur, recv_ts, channel, symbol, conn_id, seq, payload)

    def append_frames(
        self, recv_ts: int, exchange: str, conn_id: str, seq: int, routes: list[tuple[str, str]], payloads: list[str]
    ) -> None:
        """Frames received together at ``recv_ts`` on ``conn_id`` (one read of its socket), numbered from ``seq``:
        each one's (channel, symbol) in ``routes``, its text in ``payloads``. The columns grow by whole lists (C
        loops), not row by row."""
        if recv_ts >= self._cur_end or recv_ts < self._cur_start or exchange != self._cur_exchange:
            self._select(recv_ts, exchange)
        buf = self._cur
        assert buf is not None
        n = len(payloads)
        if n == 1:
            self._put(buf, recv_ts, *routes[0], conn_id, seq, payloads[0])
            return
        channels, symbols = [r[0] for r in routes], [r[1] for r in routes]  # (zip(*routes) costs 4x more)
        done = 0
        while done < n:
            end = min(n, done + buf.room - buf.pending())  # a full chunk becomes a file: the rest, the next one
            runs = buf.runs
            runs.run_ts.append(recv_ts)
            runs.run_conn.append(conn_id)
            runs.run_seq.append(seq + done)
            runs.run_rows.append(end - done)
            runs.channel += channels[done:end]
            runs.symbol += symbols[done:end]
            runs.payload += payloads[done:end]
            self.stats.rows_appended += end - done
            done = end
            if buf.pending() >= buf.room:
                self._flush((buf.exchange, buf.minute_ns))
                if done < n:
                    self._select(recv_ts, exchange)
                    buf = self._cur
                    assert buf is not None

    def append_batch(
        self, exchange: str, conn_id: str, seq: int, batch: FrameBatch, routes: Sequence[tuple[str, str]]
    ) -> None:
        """Frames of ``conn_id`` numbered from ``seq``, as the compiled receive path batches them (``FrameBatch``:
        payloads, receive times and route indexes into ``routes`` laid out as Arrow buffers, used without a copy).
        The collector's hot path: a call per batch, nothing per row here."""
        lo, hi = batch.min_recv, batch.max_recv
        if lo - lo % MINUTE_NS == hi - hi % MINUTE_NS:
            self._put_slice(exchange, lo, BatchSlice(batch, 0, batch.rows, conn_id, seq, routes))
            return
        # the batch spans a minute's end (or the clock stepped back): in runs of one minute each, in order
        recv = np.frombuffer(batch.recv, np.int64)
        minutes = recv - recv % MINUTE_NS
        bounds = [0, *(np.flatnonzero(np.diff(minutes)) + 1).tolist(), batch.rows]
        for start, stop in pairwise(bounds):
            self._put_slice(exchange, int(recv[start]), BatchSlice(batch, start, stop, conn_id, seq + start, routes))

    def _put_slice(self, exchange: str, recv_ts: int, part: BatchSlice) -> None:
        """Rows of one receive minute (that of ``recv_ts``); a full chunk becomes a file, the rest the next one."""
        if recv_ts >= self._cur_end or recv_ts < self._cur_start or exchange != self._cur_exchange:
            self._select(recv_ts, exchange)
        buf = self._cur
        assert buf is not None
        while True:
            room = buf.room - buf.pending()
            if part.rows <= room:
                buf.add(part)
                self.stats.rows_appended += part.rows
                if part.rows == room:
                    self._flush((buf.exchange, buf.minute_ns))
                elif buf.part_rows >= _JOURNAL_ROWS and buf.segment is not None:
                    self._journal(buf)
                return
            cut = part.start + room
            buf.add(BatchSlice(part.batch, part.start, cut, part.conn_id, part.seq, part.routes))
            self.stats.rows_appended += room
            self._flush((buf.exchange, buf.minute_ns))
            part = BatchSlice(part.batch, cut, part.stop, part.conn_id, part.seq + room, part.routes)
            self._select(recv_ts, exchange)
            buf = self._cur
            assert buf is not None

    def append_at(
        self, at_ns: int, recv_ts: int, exchange: str, channel: str, symbol: str, conn_id: str, seq: int, payload: str
    ) -> None:
        """``append`` into the minute holding ``at_ns`` rather than ``recv_ts`` (backfill: the exchange time)."""
        self._select(at_ns, exchange)
        buf = self._cur
        assert buf is not None
        # the receive-time fast path must not take this buffer for recv_ts's minute
        self._cur, self._cur_exchange, self._cur_start, self._cur_end = None, "", 0, -1
        self._put(buf, recv_ts, channel, symbol, conn_id, seq, payload)

    def _put(self, buf: _Buffer, recv_ts: int, channel: str, symbol: str, conn_id: str, seq: int, payload: str) -> None:
        runs = buf.runs
        runs.run_ts.append(recv_ts)
        runs.run_conn.append(conn_id)
        runs.run_seq.append(seq)
        runs.run_rows.append(1)
        runs.channel.append(channel)
        runs.symbol.append(symbol)
        runs.payload.append(payload)
        self.stats.rows_appended += 1
        if buf.pending() >= buf.room:
            self._flush((buf.exchange, buf.minute_ns))

    def _select(self, recv_ts: int, exchange: str) -> None:
        minute = recv_ts - recv_ts % MINUTE_NS
        key = (exchange, minute)
        buf = self._buffers.get(key)
        if buf is None:
            segment, chunk = self._chunk_of(self.tables[0], exchange, minute)
            buf = self._buffers[key] = _Buffer(exchange, minute, segment, chunk, room=self.max_rows)
        self._cur, self._cur_exchange = buf, exchange
        self._cur_start, self._cur_end = minute, minute + MINUTE_NS

    def _chunk_of(self, table: MinuteTable, exchange: str, minute: int) -> tuple[Segment | None, int]:
        """The journal segment new rows of (table, exchange, minute) go to, and their chunk in it."""
        if self.journal is None:
            return None, 0
        segment = self._segments.get(minute)
        if segment is None:
            segment = self._segments[minute] = self.journal.new_segment(minute)
        return segment, segment.chunks.get((table, exchange), 0)

    def event(
        self,
        recv_ts: int,
        exchange: str,
        conn_id: str,
        kind: str,
        channel: str,
        symbol: str,
        seq: int,
        exchange_ts: int | None,
        frame_recv_ts: int | None,
        detail: str,
        at_ns: int | None = None,
    ) -> None:
        """One row of the ``events/`` table (schema ``EVENTS``), buffered per (exchange, minute of ``recv_ts``,
        or of ``at_ns`` when given) and written at the same points as the frames; one for a minute already
        written becomes another part."""
        at = recv_ts if at_ns is None else at_ns
        key = (exchange, at - at % MINUTE_NS)
        buf = self._event_buffers.get(key)
        if buf is None:
            segment, chunk = self._chunk_of(self.tables[1], *key)
            buf = self._event_buffers[key] = _EventBuffer(*key, segment, chunk)
        buf.rows.append((recv_ts, conn_id, kind, channel, symbol, seq, exchange_ts, frame_recv_ts, detail))
        self.stats.events_appended += 1
        if buf.size() >= self.max_rows:
            self._flush_events(key)

    # --- flushing ----------------------------------------------------------------------------------

    def tick(self, now_ns: int | None = None) -> int:
        """The journaled writer's heartbeat (every 200 ms): journal what was appended since the last tick (handed
        to the journal's thread, on disk within milliseconds), write the minutes that closed, retry the lake when it
        was failing. Raises ``JournalError`` when the journal could not be written, or once it holds more than its
        budget while the lake is failing. Returns the frame rows handed to the lake writer.

        Whatever the load, every row appended before the previous tick is on disk when it returns: a journal thread
        that fell behind (starved of the CPU or the interpreter by the receive loop) is waited for here, which
        gives it the interpreter."""
        journal = self.journal
        assert journal is not None, "tick() is for a writer with a journal"
        if self._ticked is not None:
            wait([self._ticked])
        if self._journal_error is not None:
            raise JournalError(str(self._journal_error)) from self._journal_error
        for buf in [*self._buffers.values(), *self._event_buffers.values()]:
            self._journal(buf)
        self._ticked = self._journaled
        # a minute's segment beyond the size limit is cut: its rows so far become files, later rows a new segment
        for minute, segment in list(self._segments.items()):
            if segment.size >= _SEGMENT_BYTES:
                self._flush_minute(minute)
        rows = self.flush_closed(now_ns)
        if self._draining is not None and self._draining.done():
            self._draining = None
        failed = [m for m, seg in self._segments.items() if seg.failed]
        if self._draining is None and time.monotonic() >= self._retry_at and (self._failure or self._backlog or failed):
            # an open minute whose files could not be written is cut now, so the retry need not wait for its end
            # (its segment reaches the backlog before the drain runs: one writer thread, in order)
            for minute in failed:
                self._flush_minute(minute)
            self._draining = self._pool.submit(self._drain)
        # a backlog over budget while the lake takes it (a restart after a long outage) is drained, not refused
        if journal.bytes_on_disk > journal.budget_bytes and self._failure is not None:
            raise JournalError(
                f"the journal's disk budget is exhausted: {journal.bytes_on_disk / 2**20:.1f} MiB of frames wait for "
                f"the lake at {self.root} (budget {journal.budget_bytes / 2**20:.1f} MiB; the lake fails with "
                f"{self._failure}). Collection stops here; everything received is in the journal at "
                f"{journal.directory} and is written to the lake when the ingestor next starts with the lake writable."
            )
        return rows

    def _journal(self, buf: _Chunk) -> None:
        """The rows appended to ``buf`` since the last time become a batch of its file: made here without a
        journal, else made and journaled on the journal's thread."""
        job = buf.take()
        if job is None:
            return
        segment = buf.segment
        if segment is None or self._journaling is None:
            done: Future[pa.RecordBatch] = Future()
            done.set_result(job())
            buf.batches.append(done)
            return
        kind, table = (EVENTS, self.tables[1]) if isinstance(buf, _EventBuffer) else (FRAMES, self.tables[0])
        future = self._journaling.submit(
            self._journal_batch, job, segment, (buf.minute_ns, buf.chunk, kind, table, buf.exchange)
        )
        buf.batches.append(future)
        self._journaled = future

    def _journal_batch(
        self, job: Callable[[], pa.RecordBatch], segment: Segment, where: tuple[int, int, int, str, str]
    ) -> pa.RecordBatch:
        """On the journal's thread: the batch, appended to its segment (``where``: minute, chunk, kind, table and
        exchange of its record). The lake file is made of the batch as journaled, in the record's buffer: what it was
        made from (the receive path's buffers, taken again for new frames) is free as soon as it is journaled."""
        try:
            record = encode(*where, job())
            assert self.journal is not None
            self.journal.append(segment, record)
        except BaseException as exc:
            if self._journal_error is None:
                self._journal_error = exc
            raise
        return encoded_batch(record, where[2])

    def flush_closed(self, now_ns: int | None = None) -> int:
        """Write every buffered minute (frames and events) that ended at or before ``now_ns``; returns the frame
        rows handed to the writer."""
        self._raise_pending_error()
        now = time.time_ns() if now_ns is None else now_ns
        rows = 0
        for key in [k for k in self._buffers if k[1] + MINUTE_NS <= now]:
            rows += self._flush(key)
        events = 0
        for key in [k for k in self._event_buffers if k[1] + MINUTE_NS <= now]:
            events += self._flush_events(key)
        for minute in [m for m in self._segments if m + MINUTE_NS <= now]:
            self._finish(self._segments.pop(minute))
        if (rows or events) and self.journal is None:
            self._submit_manifest()
        return rows

    def _flush_minute(self, minute: int) -> None:
        for key in [k for k in self._buffers if k[1] == minute]:
            self._flush(key)
        for key in [k for k in self._event_buffers if k[1] == minute]:
            self._flush_events(key)
        self._finish(self._segments.pop(minute))

    def flush_all(self) -> int:
        """Write every buffered minute (frames and events); returns the frame rows handed to the writer."""
        rows = 0
        for key in list(self._buffers):
            rows += self._flush(key)
        for key in list(self._event_buffers):
            self._flush_events(key)
        for minute in list(self._segments):
            self._finish(self._segments.pop(minute))
        if self.journal is None:
            # also after files written early (``max_rows``) when nothing was left buffered
            self._submit_manifest()
        return rows

    def _flush(self, key: tuple[str, int]) -> int:
        buf = self._buffers.pop(key)
        if buf is self._cur:
            self._cur, self._cur_exchange, self._cur_start, self._cur_end = None, "", 0, -1
        return self._flush_chunk(buf, self.tables[0], RAW_ARROW, self._parts)

    def _flush_events(self, key: tuple[str, int]) -> int:
        return self._flush_chunk(self._event_buffers.pop(key), self.tables[1], EVENTS_ARROW, self._event_parts)

    def _flush_chunk(
        self, buf: _Chunk, table_name: MinuteTable, schema: pa.Schema, parts: dict[tuple[str, int], int]
    ) -> int:
        n = buf.size()
        if n == 0:
            return 0
        segment = buf.segment
        key = (buf.exchange, buf.minute_ns)
        self._journal(buf)  # with a journal: the journal holds every row before a file holds any
        if segment is None:
            self._submit(buf.batches, schema, table_name, key, self._path(table_name, key, parts), None)
            return n
        segment.chunks[(table_name, buf.exchange)] = buf.chunk + 1
        self._pending = [f for f in self._pending if not f.done()]
        if self._failure is not None or self._backlog or len(self._pending) >= _JOURNALED_PENDING:
            # the lake is failing or behind: the rows wait in the journal (memory stays bounded; never blocks)
            segment.failed = True
            return n
        path = part_path(self.root, table_name, buf.exchange, buf.minute_ns, segment.part_writer, buf.chunk)
        self._submit(buf.batches, schema, table_name, key, path, segment)
        return n

    def _path(self, table: MinuteTable, key: tuple[str, int], parts: dict[tuple[str, int], int]) -> str:
        part = parts.get(key, 0)
        parts[key] = part + 1
        return part_path(self.root, table, key[0], key[1], self.writer_id, part)

    def _submit(
        self,
        batches: list[Future[pa.RecordBatch]],
        schema: pa.Schema,
        name: MinuteTable,
        key: tuple[str, int],
        path: str,
        segment: Segment | None,
    ) -> None:
        if segment is None:  # back-pressure: an import waits for the disk
            while len(self._pending) >= self.max_pending:
                self._settle(self._pending.pop(0))
        self._pending.append(self._pool.submit(self._write, batches, schema, name, key, path, segment))

    def _submit_manifest(self) -> None:
        # the pool has one thread: the manifest is written after every file submitted before it
        self._pending.append(self._pool.submit(self._write_manifest))

    def _finish(self, segment: Segment) -> None:
        # after every file of the segment (one writer thread, in order) and every record of it (the journal's
        # thread is in order too: the last job handed to it is the last of the segment)
        self._pending.append(self._pool.submit(self._finish_segment, segment, self._journaled))

    # --- the writer thread -------------------------------------------------------------------------

    def _write_manifest(self) -> int:
        if self._landed:
            files, self._landed = self._landed, []
            self._manifests += 1
            write_manifest(self.root, self.writer_id, self._manifests, files)
        return 0

    def _write(
        self,
        batches: list[Future[pa.RecordBatch]],
        schema: pa.Schema,
        name: MinuteTable,
        key: tuple[str, int],
        path: str,
        segment: Segment | None,
    ) -> int:
        if segment is not None:
            wait(batches)  # journaled (the journal's thread is in order: by now every earlier record is too)
            if any(b.exception() is not None for b in batches):
                segment.failed = True  # not all journaled: collection stops at the next tick; the rest is kept
            if segment.failed:  # an earlier file of the segment failed: the whole segment is written from disk
                return 0
            assert self.journal is not None
            self.journal.sync(segment)  # on disk before the lake holds any of it, whatever the crash
        table = pa.Table.from_batches([b.result() for b in batches], schema=schema)
        if segment is not None:
            try:
                write_minute_file(table, path, key[0])
            except Exception as exc:
                self._lake_failed(exc)
                segment.failed = True
                return 0
            segment.landed.append(Landed(name, *key, table.num_rows))
        else:
            for attempt in range(_WRITE_ATTEMPTS):
                try:
                    write_minute_file(table, path, key[0])
                    break
                except Exception as exc:
                    self.stats.write_errors += 1
                    if attempt == _WRITE_ATTEMPTS - 1:
                        self._error = exc
                        raise
                    time.sleep(0.5 * 2**attempt)
            self._landed.append(Landed(name, *key, table.num_rows))
            if len(self._landed) >= _MANIFEST_FILES:
                self._write_manifest()
        self._count(name, table.num_rows)
        return int(table.num_rows)

    def _count(self, name: MinuteTable, rows: int) -> None:
        if name == self.tables[1]:
            self.stats.events_written += rows
            self.stats.event_files_written += 1
        else:
            self.stats.rows_written += rows
            self.stats.files_written += 1

    def _finish_segment(self, segment: Segment, journaled: Future[pa.RecordBatch] | None) -> int:
        """Every file of the segment is committed: its manifest, then the segment goes. A segment with a failed
        (or skipped) file waits in the backlog."""
        assert self.journal is not None
        if journaled is not None:
            wait([journaled])  # every record of the segment is in it
        if not segment.failed:
            try:
                if segment.landed:
                    write_manifest(self.root, segment.part_writer, 1, segment.landed)
                self.journal.remove(segment)
                return 0
            except Exception as exc:
                self._lake_failed(exc)
        self.journal.close_segment(segment)
        self._backlog.append(segment)
        return 0

    def _lake_failed(self, exc: BaseException) -> None:
        self.stats.write_errors += 1
        if self._failure is None:
            self._failing_since_ns = time.time_ns()
            log.error("lake %s cannot be written (%s): frames wait in the journal", self.root, exc)
        self._failure = f"{type(exc).__name__}: {exc}"

    def _drain(self) -> int:
        """Write waiting segments from disk, oldest first; on a failure, try again after a growing pause."""
        assert self.journal is not None
        while self._backlog:
            segment = self._backlog[0]
            try:
                self._replay(segment)
            except Exception as exc:
                self._lake_failed(exc)
                self._retry_at = time.monotonic() + self._retry_delay_s
                self._retry_delay_s = min(_RETRY_MAX_S, self._retry_delay_s * 2)
                return 0
            self._backlog.popleft()
        if self._failure is not None:
            log.warning("lake %s writable again: the journal's backlog is written", self.root)
        self._failure, self._failing_since_ns, self._retry_delay_s = None, 0, _RETRY_FIRST_S
        return 0

    def _replay(self, segment: Segment) -> None:
        """Write a segment's files from disk (the same names as the live writer gives them: rewriting one that
        was committed before a crash replaces it with the same rows) and its manifest; then delete it."""
        assert self.journal is not None
        chunks: dict[tuple[MinuteTable, int, str, int, int], list[pa.RecordBatch]] = {}
        for rec in self.journal.records(segment):
            chunks.setdefault((rec.table, rec.kind, rec.exchange, rec.minute_ns, rec.chunk), []).append(rec.batch)
        landed = []
        for (name, kind, exchange, minute, chunk), batches in chunks.items():
            table = pa.Table.from_batches(batches, schema=batches[0].schema)
            write_minute_file(table, part_path(self.root, name, exchange, minute, segment.part_writer, chunk), exchange)
            landed.append(Landed(name, exchange, minute, table.num_rows))
            self._count(name, table.num_rows)
            if kind == FRAMES:
                self.stats.rows_replayed += table.num_rows
        if landed:
            write_manifest(self.root, segment.part_writer, 1, landed)
        self.journal.remove(segment)
        self.stats.segments_replayed += 1

    # --- state -------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The lake side of the ingestor's health: whether the lake is being written, and what waits."""
        out: dict[str, Any] = {
            "lake": self.root,
            "state": "failing" if self._failure else ("catching up" if self._behind() else "ok"),
            "write_errors": self.stats.write_errors,
        }
        if self.journal is not None:
            out |= {
                "journal": self.journal.directory,
                "journal_mb": round(self.journal.bytes_on_disk / 2**20, 3),
                "journal_budget_mb": round(self.journal.budget_bytes / 2**20, 3),
                "backlog_segments": len(self._backlog),
                "rows_replayed": self.stats.rows_replayed,
            }
        if self._failure:
            out["last_error"] = self._failure
            out["failing_since"] = iso_ns(self._failing_since_ns)
        return out

    def _behind(self) -> bool:
        """Rows wait in the journal for the lake: segments in the backlog, or an open one whose files failed."""
        return bool(self._backlog) or any(seg.failed for seg in self._segments.values())

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"raw lake write failed under {self.root}") from self._error

    def wait(self) -> None:
        """Block until every row taken is journaled and every queued file is on storage (or, with a journal, in its
        backlog)."""
        if self._journaled is not None:
            wait([self._journaled])
        while self._pending:
            self._settle(self._pending.pop(0))

    def _settle(self, future: Future[int]) -> None:
        if future.exception() is not None:
            self._raise_pending_error()

    def close(self) -> None:
        """Write everything buffered. With a journal: one more attempt at the backlog; what the lake still does not
        take stays in the journal for the next start."""
        try:
            self.flush_all()
            self.wait()
            if self._backlog:
                self._retry_delay_s = _RETRY_FIRST_S
                self._pool.submit(self._drain).result()
                if self._backlog:
                    assert self.journal is not None
                    log.error(
                        "%d journal segment(s) (%.1f MiB) could not be written to the lake (%s): kept in %s for the "
                        "next start",
                        len(self._backlog),
                        self.journal.bytes_on_disk / 2**20,
                        self._failure,
                        self.journal.directory,
                    )
        finally:
            if self._journaling is not None:
                self._journaling.shutdown(wait=True)
            self._pool.shutdown(wait=True)
            if self.journal is not None:
                self.journal.close()

    def __enter__(self) -> RawWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def buffered_rows(self) -> int:
        return sum(b.size() for b in self._buffers.values())

    @property
    def buffered_events(self) -> int:
        return sum(b.size() for b in self._event_buffers.values())

    def __repr__(self) -> str:
        return f"RawWriter(root={self.root!r}, writer_id={self.writer_id!r}, pid={os.getpid()})"
