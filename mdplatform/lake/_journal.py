"""The write-ahead journal: every row the collector hands the raw writer is on local disk within a tick (200 ms)
and fsynced within a second, so a crash (``kill -9``, power loss) or a lake that cannot be written loses nothing.
The raw writer encodes and appends records on a thread of its own (``RawWriter.tick``: the rows of a tick are on
disk milliseconds after it, and at the latest when the next tick returns; large batches of the compiled receive
path go at once).

Layout: ``{journal}/<writer id>/<gen>.wal``, one *segment* per minute of the rows it holds (a late event for a
minute already written opens a new segment, with a new ``gen``). A segment is a sequence of records, each
``<u32 length><u32 crc32>`` then the body: ``<i64 minute><u32 chunk><u8 kind><u16 len><u16 len>`` + table name +
exchange + one Arrow record batch (IPC message, schema given by ``kind``: frames or events). Rows of the same
(table, exchange, minute, chunk) form one lake file, named by the segment's writer id, ``gen`` and ``chunk``: the
live writer and a replay of the segment produce the same file names with the same rows, so a replay after a
crash overwrites what the crashed writer already wrote instead of duplicating it (exactly once).

A segment is deleted once every file made from it and its landing manifest are committed. Segments left by a
writer that died, or that could not be written while the lake was failing, are replayed from disk: memory stays
bounded whatever the backlog. A torn tail (the last record half-written when the process died) is detected by its
length or checksum and ignored: the writer never commits a lake file before the rows in it are journaled, so
what is torn was never in the lake.

One journal directory belongs to one process at a time (an ``flock`` on ``LOCK``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..schemas import EVENTS_ARROW, RAW_ARROW
from ._landed import Landed
from ._paths import MinuteTable

__all__ = [
    "EVENTS",
    "FRAMES",
    "Encoded",
    "Journal",
    "JournalError",
    "Record",
    "Segment",
    "encode",
    "encoded_batch",
    "read_segment",
]

log = logging.getLogger("mdplatform.lake.journal")

#: record kinds: which schema the batch has
FRAMES = 0
EVENTS = 1
_SCHEMAS = {FRAMES: RAW_ARROW, EVENTS: EVENTS_ARROW}
_FRAME = struct.Struct("<II")
_HEAD = struct.Struct("<qIBHH")
#: seconds between fsyncs of the segments written since the last one
SYNC_INTERVAL_S = 1.0
#: a record as ``encode`` makes it: pieces (bytes, Arrow buffers) written back to back
Encoded = list[Any]


class JournalError(RuntimeError):
    """The journal cannot be used (locked by another process, not writable) or its disk budget is exhausted."""


@dataclass(eq=False)
class Segment:
    """One journal file: rows of one minute, from one writer."""

    path: str
    writer_id: str
    gen: int
    minute_ns: int
    size: int = 0
    fd: int | None = None
    #: next chunk per (table, exchange): a lake file holds the rows of one chunk
    chunks: dict[tuple[str, str], int] = field(default_factory=dict)
    #: a lake write from this segment failed or was skipped: the segment is written again from disk
    failed: bool = False
    dirty: bool = False
    #: lake files committed from it (its landing manifest)
    landed: list[Landed] = field(default_factory=list)

    @property
    def part_writer(self) -> str:
        """The writer id in the names of the lake files made from this segment."""
        return f"{self.writer_id}-{self.gen:06d}"


def encode(minute_ns: int, chunk: int, kind: int, table: str, exchange: str, batch: pa.RecordBatch) -> Encoded:
    """One record, as the pieces written back to back: its head, and the batch's IPC message as Arrow serialized it
    (the one copy of the rows; the checksum runs over it where it is)."""
    t, e = table.encode(), exchange.encode()
    head = _HEAD.pack(minute_ns, chunk, kind, len(t), len(e)) + t + e
    ipc = batch.serialize()
    crc = zlib.crc32(ipc, zlib.crc32(head))
    return [_FRAME.pack(len(head) + ipc.size, crc) + head, ipc]


def encoded_batch(record: Encoded, kind: int) -> pa.RecordBatch:
    """The batch of a record ``encode`` made, read back from the record's own buffer (no copy: the batch holds the
    record's memory, not what it was made from)."""
    return pa.ipc.read_record_batch(record[1], _SCHEMAS[kind])


@dataclass(frozen=True, slots=True)
class Record:
    minute_ns: int
    chunk: int
    kind: int
    table: MinuteTable
    exchange: str
    batch: pa.RecordBatch


def read_segment(path: str) -> tuple[list[Record], int]:
    """Every whole record of a segment, and the bytes of a torn tail ignored (0 when none)."""
    with open(path, "rb") as fh:
        data = fh.read()
    records: list[Record] = []
    pos = 0
    while pos + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, pos)
        body = data[pos + _FRAME.size : pos + _FRAME.size + length]
        if len(body) < length or zlib.crc32(body) != crc:
            break
        minute, chunk, kind, lt, le = _HEAD.unpack_from(body)
        o = _HEAD.size
        table = body[o : o + lt].decode()
        exchange = body[o + lt : o + lt + le].decode()
        batch = pa.ipc.read_record_batch(pa.py_buffer(body[o + lt + le :]), _SCHEMAS[kind])
        records.append(Record(minute, chunk, kind, table, exchange, batch))  # type: ignore[arg-type]
        pos += _FRAME.size + length
    return records, len(data) - pos


class Journal:
    """The journal directory of one writer process: opens segments, appends records, fsyncs them every second on
    its own thread, deletes finished ones and lists those left over from earlier processes."""

    def __init__(self, directory: str, writer_id: str, *, budget_bytes: int) -> None:
        self.directory = os.path.abspath(directory)
        self.writer_id = writer_id
        self.budget_bytes = budget_bytes
        try:
            os.makedirs(os.path.join(self.directory, writer_id), exist_ok=True)
            self._lock_fd = os.open(os.path.join(self.directory, "LOCK"), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(f"cannot use the journal at {self.directory}: {exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(self._lock_fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self._lock_fd)
            raise JournalError(
                f"the journal at {self.directory} is in use by another ingestor (pid {holder}); give each ingestor "
                "its own journal directory"
            ) from exc
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, str(os.getpid()).encode(), 0)
        self._gen = 0
        self._open: dict[int, Segment] = {}  # gen -> segment with an open file descriptor
        self._mutex = threading.Lock()
        #: bytes of every segment file on disk (this process's and those left over)
        self.bytes_on_disk = 0
        self.fsyncs = 0
        self._stop = threading.Event()
        self._syncer = threading.Thread(target=self._sync_loop, name="journal-sync", daemon=True)
        self._syncer.start()

    # --- segments of this process ------------------------------------------------------------------

    def new_segment(self, minute_ns: int) -> Segment:
        self._gen += 1
        path = os.path.join(self.directory, self.writer_id, f"{self._gen:06d}.wal")
        return Segment(path, self.writer_id, self._gen, minute_ns)

    def append(self, segment: Segment, record: Encoded) -> None:
        """Hand ``record`` to the OS (it survives the process from here on; fsynced within a second)."""
        size = sum(memoryview(piece).nbytes for piece in record)
        with self._mutex:
            if segment.fd is None:
                try:
                    segment.fd = os.open(segment.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                except OSError as exc:
                    raise JournalError(f"cannot write the journal at {self.directory}: {exc}") from exc
                self._open[segment.gen] = segment
            try:
                written = os.writev(segment.fd, record)
                if written < size:  # a short write (a signal, a full disk): finish it or fail
                    rest = b"".join(bytes(memoryview(piece).cast("B")) for piece in record)[written:]
                    while rest:
                        rest = rest[os.write(segment.fd, rest) :]
            except OSError as exc:
                raise JournalError(f"cannot write the journal at {self.directory}: {exc}") from exc
            segment.size += size
            segment.dirty = True
            self.bytes_on_disk += size

    def sync(self, segment: Segment | None = None) -> None:
        """fsync ``segment`` (before a lake file made from it is committed), or every segment written since the
        last sync."""
        with self._mutex:
            targets = [segment] if segment is not None else list(self._open.values())
            for seg in targets:
                if seg.fd is not None and seg.dirty:
                    os.fsync(seg.fd)
                    seg.dirty = False
                    self.fsyncs += 1

    def close_segment(self, segment: Segment) -> None:
        with self._mutex:
            if segment.fd is not None:
                if segment.dirty:
                    os.fsync(segment.fd)
                    segment.dirty = False
                os.close(segment.fd)
                segment.fd = None
                self._open.pop(segment.gen, None)

    def remove(self, segment: Segment) -> None:
        """The segment's rows are all in the lake: delete it."""
        self.close_segment(segment)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(segment.path)
        with self._mutex:
            self.bytes_on_disk -= segment.size

    # --- segments left over ------------------------------------------------------------------------

    def leftovers(self) -> list[Segment]:
        """Segments of earlier processes (a crash, a lake that never came back before the process stopped), oldest
        writer first, in the order they were written; counted in ``bytes_on_disk``."""
        segments: list[Segment] = []
        for writer in sorted(os.listdir(self.directory)):  # writer ids start with their UTC start time
            folder = os.path.join(self.directory, writer)
            if writer == self.writer_id or not os.path.isdir(folder):
                continue
            names = sorted(n for n in os.listdir(folder) if n.endswith(".wal"))
            if not names:
                os.rmdir(folder)
                continue
            for name in names:
                path = os.path.join(folder, name)
                size = os.path.getsize(path)
                segments.append(Segment(path, writer, int(name[:-4]), 0, size))
        with self._mutex:
            self.bytes_on_disk += sum(s.size for s in segments)
        return segments

    def records(self, segment: Segment) -> Iterator[Record]:
        records, torn = read_segment(segment.path)
        if torn:
            log.warning("journal %s: a torn tail of %d bytes ignored (written as the process died)", segment.path, torn)
        yield from records

    # --- lifecycle ---------------------------------------------------------------------------------

    def _sync_loop(self) -> None:
        while not self._stop.wait(SYNC_INTERVAL_S):
            try:
                self.sync()
            except OSError:
                log.exception("journal fsync failed under %s", self.directory)

    def close(self) -> None:
        """Close every open segment (fsynced) and release the directory; segments still on disk stay for the next
        process."""
        self._stop.set()
        self._syncer.join()
        for segment in list(self._open.values()):
            self.close_segment(segment)
        folder = os.path.join(self.directory, self.writer_id)
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
        os.close(self._lock_fd)
