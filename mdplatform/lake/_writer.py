"""The raw layer's writer: one row per received frame, buffered per (exchange, receive minute).

A minute's rows are written when the minute closes (``flush_closed``, called about once a second by the
ingestor) and on ``close``; a buffer that reaches ``max_rows`` is written early as another part of the same
minute, so memory stays bounded whatever the message rate. Parquet encoding runs on one background thread so
the receive loop never waits on disk or S3, with back-pressure once ``max_pending`` files are queued.

The collector's events (``event``: open, subscribed, alive, close, ...) are buffered and written the same way,
to the ``events/`` tree beside ``raw/``; an event for a minute already written becomes another part of it.

After the files of each flush are committed, a manifest in the landing log (``_landed.py``) says which minutes
got data, so the sensors find late minutes without walking the lake. ``tables`` redirects a writer to other
minute tables (``mdp backfill`` writes ``backfill/`` and ``backfill_events/``, partitioned by exchange time
through ``append_at`` and ``event(at_ns=...)``).
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType

import pyarrow as pa

from ..schemas import EVENTS_ARROW, RAW_ARROW
from ._atomic import write_table_atomic
from ._fs import lake_root
from ._landed import Landed, write_manifest
from ._paths import EVENTS_TABLE, MINUTE_NS, RAW_TABLE, MinuteTable, part_path

__all__ = ["RawWriter", "WriterStats"]

_WRITE_ATTEMPTS = 3
#: files per landing manifest at most (an import writes thousands)
_MANIFEST_FILES = 500
_TS = RAW_ARROW.field("recv_ts").type


@dataclass(slots=True)
class _Buffer:
    exchange: str
    minute_ns: int
    recv_ts: list[int] = field(default_factory=list)
    channel: list[str] = field(default_factory=list)
    symbol: list[str] = field(default_factory=list)
    conn_id: list[str] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    payload: list[str] = field(default_factory=list)

    def table(self) -> pa.Table:
        n = len(self.recv_ts)
        return pa.Table.from_arrays(
            [
                pa.array(self.recv_ts, type=pa.int64()).cast(_TS),
                pa.array([self.exchange] * n, pa.string()),
                pa.array(self.channel, pa.string()),
                pa.array(self.symbol, pa.string()),
                pa.array(self.conn_id, pa.string()),
                pa.array(self.seq, pa.int64()),
                pa.array(self.payload, pa.string()),
            ],
            schema=RAW_ARROW,
        )


#: one event row: recv_ts, conn_id, kind, channel, symbol, seq, exchange_ts, frame_recv_ts, detail
_EventRow = tuple[int, str, str, str, str, int, int | None, int | None, str]


@dataclass(slots=True)
class _EventBuffer:
    exchange: str
    minute_ns: int
    rows: list[_EventRow] = field(default_factory=list)

    def table(self) -> pa.Table:
        cols = list(zip(*self.rows, strict=True))
        n = len(self.rows)
        return pa.Table.from_arrays(
            [
                pa.array(cols[0], type=pa.int64()).cast(_TS),
                pa.array([self.exchange] * n, pa.string()),
                pa.array(cols[1], pa.string()),
                pa.array(cols[2], pa.string()),
                pa.array(cols[3], pa.string()),
                pa.array(cols[4], pa.string()),
                pa.array(cols[5], pa.int64()),
                pa.array(cols[6], type=pa.int64()).cast(_TS),
                pa.array(cols[7], type=pa.int64()).cast(_TS),
                pa.array(cols[8], pa.string()),
            ],
            schema=EVENTS_ARROW,
        )


@dataclass(slots=True)
class WriterStats:
    """Raw frames (``rows_*``, ``files_written``) and events (``events_*``, ``event_files_written``)."""

    rows_appended: int = 0
    rows_written: int = 0
    files_written: int = 0
    write_errors: int = 0
    events_appended: int = 0
    events_written: int = 0
    event_files_written: int = 0


class RawWriter:
    """Buffers raw rows and writes them to ``{root}/raw/exchange=X/date=/hour=/minute=/part-*.parquet``, and the
    collector's events to ``{root}/events/exchange=X/date=/hour=/minute=/part-*.parquet`` (same part names).

    ``writer_id`` names this writer's part files; a deterministic id (as ``import-capture`` uses) makes a
    repeated write of the same input replace the same files instead of adding duplicates.
    """

    def __init__(
        self,
        root: str | None = None,
        *,
        writer_id: str | None = None,
        max_rows: int = 50_000,
        max_pending: int = 2,
        tables: tuple[MinuteTable, MinuteTable] = (RAW_TABLE, EVENTS_TABLE),
    ) -> None:
        self.root = lake_root(root)
        self.tables = tables
        self.writer_id = writer_id or f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
        self.max_rows = max_rows
        self.max_pending = max_pending
        self.stats = WriterStats()
        self._buffers: dict[tuple[str, int], _Buffer] = {}
        self._parts: dict[tuple[str, int], int] = {}
        self._event_buffers: dict[tuple[str, int], _EventBuffer] = {}
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

    def append(
        self, recv_ts: int, exchange: str, channel: str, symbol: str, conn_id: str, seq: int, payload: str
    ) -> None:
        if recv_ts >= self._cur_end or recv_ts < self._cur_start or exchange != self._cur_exchange:
            self._select(recv_ts, exchange)
        assert self._cur is not None
        self._put(self._cur, recv_ts, channel, symbol, conn_id, seq, payload)

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
        buf.recv_ts.append(recv_ts)
        buf.channel.append(channel)
        buf.symbol.append(symbol)
        buf.conn_id.append(conn_id)
        buf.seq.append(seq)
        buf.payload.append(payload)
        self.stats.rows_appended += 1
        if len(buf.recv_ts) >= self.max_rows:
            self._flush((buf.exchange, buf.minute_ns))

    def _select(self, recv_ts: int, exchange: str) -> None:
        minute = recv_ts - recv_ts % MINUTE_NS
        key = (exchange, minute)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = _Buffer(exchange, minute)
        self._cur, self._cur_exchange = buf, exchange
        self._cur_start, self._cur_end = minute, minute + MINUTE_NS

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
            buf = self._event_buffers[key] = _EventBuffer(*key)
        buf.rows.append((recv_ts, conn_id, kind, channel, symbol, seq, exchange_ts, frame_recv_ts, detail))
        self.stats.events_appended += 1
        if len(buf.rows) >= self.max_rows:
            self._flush_events(key)

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
        if rows or events:
            self._submit_manifest()
        return rows

    def flush_all(self) -> int:
        """Write every buffered minute (frames and events); returns the frame rows handed to the writer."""
        rows = events = 0
        for key in list(self._buffers):
            rows += self._flush(key)
        for key in list(self._event_buffers):
            events += self._flush_events(key)
        # also after files written early (``max_rows``) when nothing was left buffered
        self._submit_manifest()
        return rows

    def _flush(self, key: tuple[str, int]) -> int:
        buf = self._buffers.pop(key)
        if buf is self._cur:
            self._cur, self._cur_exchange, self._cur_start, self._cur_end = None, "", 0, -1
        n = len(buf.recv_ts)
        if n == 0:
            return 0
        self._submit(buf, self._path(self.tables[0], key, self._parts))
        return n

    def _flush_events(self, key: tuple[str, int]) -> int:
        buf = self._event_buffers.pop(key)
        if not buf.rows:
            return 0
        self._submit(buf, self._path(self.tables[1], key, self._event_parts))
        return len(buf.rows)

    def _path(self, table: MinuteTable, key: tuple[str, int], parts: dict[tuple[str, int], int]) -> str:
        part = parts.get(key, 0)
        parts[key] = part + 1
        return part_path(self.root, table, key[0], key[1], self.writer_id, part)

    def _submit(self, buf: _Buffer | _EventBuffer, path: str) -> None:
        while len(self._pending) >= self.max_pending:
            self._settle(self._pending.pop(0))
        self._pending.append(self._pool.submit(self._write, buf, path))

    def _submit_manifest(self) -> None:
        # the pool has one thread: the manifest is written after every file submitted before it
        self._pending.append(self._pool.submit(self._write_manifest))

    def _write_manifest(self) -> int:
        if self._landed:
            files, self._landed = self._landed, []
            self._manifests += 1
            write_manifest(self.root, self.writer_id, self._manifests, files)
        return 0

    def _write(self, buf: _Buffer | _EventBuffer, path: str) -> int:
        table = buf.table()
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                write_table_atomic(table, path)
                break
            except Exception as exc:
                self.stats.write_errors += 1
                if attempt == _WRITE_ATTEMPTS - 1:
                    self._error = exc
                    raise
                time.sleep(0.5 * 2**attempt)
        rows: int = table.num_rows
        table_name = self.tables[1] if isinstance(buf, _EventBuffer) else self.tables[0]
        self._landed.append(Landed(table_name, buf.exchange, buf.minute_ns, rows))
        if len(self._landed) >= _MANIFEST_FILES:
            self._write_manifest()
        if isinstance(buf, _EventBuffer):
            self.stats.events_written += rows
            self.stats.event_files_written += 1
        else:
            self.stats.rows_written += rows
            self.stats.files_written += 1
        return rows

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"raw lake write failed under {self.root}") from self._error

    def wait(self) -> None:
        """Block until every queued file is on storage."""
        while self._pending:
            self._settle(self._pending.pop(0))

    def _settle(self, future: Future[int]) -> None:
        if future.exception() is not None:
            self._raise_pending_error()

    def close(self) -> None:
        try:
            self.flush_all()
            self.wait()
        finally:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> RawWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def buffered_rows(self) -> int:
        return sum(len(b.recv_ts) for b in self._buffers.values())

    @property
    def buffered_events(self) -> int:
        return sum(len(b.rows) for b in self._event_buffers.values())

    def __repr__(self) -> str:
        return f"RawWriter(root={self.root!r}, writer_id={self.writer_id!r}, pid={os.getpid()})"
