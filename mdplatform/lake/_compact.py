"""Compaction: the minute files of final hours become one file per exchange and hour, older days one per day.

An hour is *final* once ``min_age`` has passed since its end (lateness plus what a restarted collector's journal
may still replay; later arrivals are merged by the next run). Then its files (minute files, an import's hour
file, an earlier compacted file and late minute files beside it) are rewritten into one hour file; a day whose
end is ``day_age`` old becomes one day file. At most 25 files per exchange-day remain: 24 hour files, or one day
file plus what landed after it until the next run.

Each span is rewritten by the protocol of ``_layout.py``, in this order:

1. stream every file to read (in read order) into a new file with a name never used before, grouped by channel
   group (``_lakefile.py``), recording what it absorbed (every file of the span it replaces, and what those had
   absorbed) and which minutes it holds; rows are checked to lie in their file's span (raw and events rows lie in
   the minute of their ``recv_ts``: what a window read relies on);
2. commit it (rename, or the upload's completion): from here readers read it and ignore what it absorbed;
3. delete what it absorbed, then empty folders (local disk).

A crash before 2 leaves a temp file nobody reads (removed by a later run) or an aborted upload; between 2 and 3,
absorbed files every reader ignores and the next run deletes. Re-running finds one file per span and does nothing.
Compaction writes no landing manifest: the rows are the ones already landed, and no hour needs to run again.

One compaction runs at a time per lake (``_lock``): two would each absorb the same minute files into files that do
not know of each other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from .._time import DAY_NS, HOUR_NS, iso_ns
from ..schemas import EVENTS_ARROW, RAW_ARROW
from ._atomic import TMP_SUFFIX
from ._fs import filesystem, is_local, join, lake_root
from ._lakefile import LakeFileWriter
from ._layout import FileMeta, LakeFile, day_start, file_meta, list_files, list_spans, resolve, span_dir
from ._paths import EVENTS_TABLE, RAW_TABLE, MinuteTable, table_exchange_dir
from ._reader import list_exchanges

__all__ = [
    "COMPACTED_TABLES",
    "DEFAULT_DAY_AGE_NS",
    "DEFAULT_MIN_AGE_NS",
    "CompactStats",
    "CompactionBusy",
    "SpanStats",
    "compact",
]

log = logging.getLogger("mdplatform.lake.compact")

#: the trees compaction rewrites: partitioned by receive minute, which is a column of theirs (``recv_ts``), so a
#: read of part of an hour or day file can still be cut to its minutes. The backfill trees are partitioned by
#: exchange minute, which is not: they keep their minute files (a few per trade gap).
COMPACTED_TABLES: tuple[MinuteTable, ...] = (RAW_TABLE, EVENTS_TABLE)
#: an hour is final this long after its end: the assets' lateness (15 min) plus an hour for a restarted collector's
#: journal to replay what it held
DEFAULT_MIN_AGE_NS = 75 * 60 * 10**9
#: a day becomes one file this long after its end
DEFAULT_DAY_AGE_NS = 2 * DAY_NS
#: a temp file this old is left by a crash (a live write finishes within seconds)
_TEMP_AGE_S = 3600.0
#: the lock of a lake on an object store expires this long after it was taken (a crashed compaction's lock)
_LOCK_TTL_NS = 6 * HOUR_NS
_LOCK = "_compaction.lock"
_SCHEMAS = {RAW_TABLE: RAW_ARROW, EVENTS_TABLE: EVENTS_ARROW}


class CompactionBusy(RuntimeError):
    """Another compaction of the same lake is running."""


@dataclass(slots=True)
class SpanStats:
    """One span rewritten (or, ``written`` False, only cleaned of files a crash left behind)."""

    table: MinuteTable
    exchange: str
    start_ns: int
    span_ns: int
    files_before: int
    bytes_before: int
    files_after: int
    bytes_after: int
    rows: int
    written: bool

    def line(self) -> str:
        done = f"{self.rows:,} rows" if self.written else "left-overs removed"
        return (
            f"{self.table}/{self.exchange} {_label(self.start_ns, self.span_ns)}: {self.files_before} files "
            f"{self.bytes_before / 2**20:.1f} MB"
            f" -> {self.files_after} {self.bytes_after / 2**20:.1f} MB ({done})"
        )


@dataclass(slots=True)
class CompactStats:
    spans: list[SpanStats] = field(default_factory=list)
    #: spans left as they were, and why (rows outside their file's span)
    skipped: list[str] = field(default_factory=list)
    temps_removed: int = 0
    seconds: float = 0.0

    @property
    def files_before(self) -> int:
        return sum(s.files_before for s in self.spans)

    @property
    def files_after(self) -> int:
        return sum(s.files_after for s in self.spans)

    @property
    def bytes_before(self) -> int:
        return sum(s.bytes_before for s in self.spans)

    @property
    def bytes_after(self) -> int:
        return sum(s.bytes_after for s in self.spans)

    def summary(self) -> str:
        written = sum(s.written for s in self.spans)
        text = (
            f"compacted {written} span(s) in {self.seconds:.1f} s: {self.files_before:,} files "
            f"{self.bytes_before / 2**20:,.1f} MB -> {self.files_after:,} files {self.bytes_after / 2**20:,.1f} MB"
        )
        if self.temps_removed:
            text += f"; {self.temps_removed} temp file(s) of crashed writes removed"
        if self.skipped:
            text += f"; {len(self.skipped)} span(s) left as they are: {self.skipped[0]}"
        return text


def compact(
    root: str | None = None,
    *,
    now_ns: int | None = None,
    min_age_ns: int = DEFAULT_MIN_AGE_NS,
    day_age_ns: int = DEFAULT_DAY_AGE_NS,
    tables: Sequence[MinuteTable] = COMPACTED_TABLES,
    exchanges: Sequence[str] | None = None,
    progress: Callable[[SpanStats], None] | None = None,
) -> CompactStats:
    """Compact the lake at ``root`` (default: the configured lake): every final hour's files into one hour file,
    every day ``day_age_ns`` past its end into one day file (module doc). Raises ``CompactionBusy`` when another
    compaction holds the lake."""
    unknown = set(tables) - set(COMPACTED_TABLES)
    if unknown:
        raise ValueError(f"compaction rewrites {', '.join(COMPACTED_TABLES)}, not {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    root = lake_root(root)
    fs, base = filesystem(root)
    now = time.time_ns() if now_ns is None else now_ns
    stats = CompactStats()
    with _lock(fs, base):
        for table in tables:
            for exchange in exchanges if exchanges is not None else list_exchanges(root, table=table):
                for day in _days(fs, table_exchange_dir(base, exchange, table)):
                    for span in _compact_day(fs, base, table, exchange, day, now, min_age_ns, day_age_ns, stats):
                        stats.spans.append(span)
                        if progress is not None:
                            progress(span)
    stats.seconds = time.perf_counter() - started
    return stats


def _days(fs: AbstractFileSystem, exchange_dir: str) -> list[int]:
    fs.invalidate_cache(exchange_dir)
    try:
        names = sorted(str(p).rstrip("/") for p in fs.ls(exchange_dir, detail=False))
    except FileNotFoundError:
        return []
    return [d for d in map(day_start, names) if d is not None]


def _compact_day(
    fs: AbstractFileSystem,
    base: str,
    table: MinuteTable,
    exchange: str,
    day: int,
    now: int,
    min_age_ns: int,
    day_age_ns: int,
    stats: CompactStats,
) -> Iterator[SpanStats]:
    if day + HOUR_NS + min_age_ns > now:
        return  # no hour of the day is final yet
    stats.temps_removed += _remove_temps(fs, span_dir(base, table, exchange, day, DAY_NS), now)
    files = list_files(fs, base, table, exchange, day, day + DAY_NS)
    day_final = day + DAY_NS + min_age_ns <= now
    # a day that has a day file stays one (what lands later is merged into it), once all its hours are final
    if day_final and (day + DAY_NS + day_age_ns <= now or any(f.span_ns == DAY_NS for f in files)):
        spans = {day: files}
        span_ns = DAY_NS
    else:
        spans = list_spans([f for f in files if f.span_ns < DAY_NS], HOUR_NS)
        span_ns = HOUR_NS
    for start, span_files in sorted(spans.items()):
        if start + span_ns + min_age_ns > now:
            continue
        done = _compact_span(fs, base, table, exchange, start, span_ns, span_files, stats)
        if done is not None:
            yield done


def _compact_span(
    fs: AbstractFileSystem,
    base: str,
    table: MinuteTable,
    exchange: str,
    start: int,
    span_ns: int,
    files: list[LakeFile],
    stats: CompactStats,
) -> SpanStats | None:
    metas: dict[str, FileMeta] = {}
    keep, gone = resolve(fs, files, metas)
    if len(keep) == 1:
        if not gone:
            return None  # one file already (compacted, or a lone import or minute file): nothing to gain
        # a crash after the commit left absorbed files behind: they only need deleting
        _delete(fs, gone)
        f = keep[0]
        return SpanStats(table, exchange, start, span_ns, len(files), _size(files), 1, f.size, 0, written=False)
    if not keep:
        _delete(fs, gone)
        return None
    for f in keep:
        if f.compacted and f.path not in metas:
            metas[f.path] = file_meta(fs, f)
    meta = _meta(keep, gone, metas)
    kind = "day" if span_ns == DAY_NS else "hour"
    path = join(
        span_dir(base, table, exchange, start, span_ns), f"{kind}-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
    )
    schema = _SCHEMAS[table]
    writer = LakeFileWriter(_url(fs, path), schema, exchange=exchange if schema.equals(RAW_ARROW) else None)
    with writer:
        for f in keep:
            problem = _copy(fs, f, writer, schema)
            if problem is not None:
                writer.abort()
                why = f"{table}/{exchange} {_label(start, span_ns)}: {problem}"
                log.warning("not compacted: %s", why)
                stats.skipped.append(why)
                return None
        rows = writer.commit(meta, start)
    _delete(fs, [*keep, *gone])
    size = int(fs.size(path))
    return SpanStats(table, exchange, start, span_ns, len(files), _size(files), 1, size, rows, written=True)


def _meta(keep: list[LakeFile], gone: list[LakeFile], metas: dict[str, FileMeta]) -> FileMeta:
    """What the new file says: every file it replaces (and what those had absorbed), its minutes, and how many
    minute files and bytes its rows first landed in."""
    absorbed = {f.rel for f in [*keep, *gone]}
    minutes: set[int] = set()
    source_files = source_bytes = 0
    for f in keep:
        if f.compacted:
            m = metas[f.path]
            absorbed |= m.absorbed
            minutes.update(m.minutes)
            # an import's hour file was never a set of minute files: it counts as one
            source_files += m.source_files or 1
            source_bytes += m.source_bytes or f.size
        else:
            minutes.add(f.start_ns)
            source_files += 1
            source_bytes += f.size
    return FileMeta(tuple(sorted(minutes)), frozenset(absorbed), source_files, source_bytes)


def _copy(fs: AbstractFileSystem, f: LakeFile, writer: LakeFileWriter, schema: pa.Schema) -> str | None:
    """Stream one file's rows into ``writer``, row group by row group (in a raw file each holds one channel
    group's rows: they go to the writer whole); what is wrong instead (a row outside the file's span)."""
    ts_type = schema.field("recv_ts").type
    lo, hi = pa.scalar(f.start_ns, ts_type), pa.scalar(f.end_ns, ts_type)
    with fs.open(f.path, "rb") as fh:
        source = pq.ParquetFile(fh)
        for i in range(source.num_row_groups):
            part = source.read_row_group(i, columns=schema.names)
            if not part.schema.equals(schema):
                part = part.cast(schema)
            recv = part.column("recv_ts")
            if pc.any(pc.or_(pc.less(recv, lo), pc.greater_equal(recv, hi))).as_py():
                return f"{f.rel} holds rows received outside its span"
            writer.write(part)
    return None


def _delete(fs: AbstractFileSystem, files: list[LakeFile]) -> None:
    """Delete absorbed files (one request per thousand on S3), then, locally, the folders left empty."""
    if not files:
        return
    with contextlib.suppress(FileNotFoundError):
        fs.rm([f.path for f in files])
    if is_local(fs):
        for folder in sorted({os.path.dirname(f.path) for f in files}, key=len, reverse=True):
            with contextlib.suppress(OSError):  # not empty (another file, a temp file): kept
                os.rmdir(folder)


def _remove_temps(fs: AbstractFileSystem, date_dir: str, now_ns: int) -> int:
    """Temp files of writes that never finished (a crash) under a date folder (local disk; an object store has
    none: an unfinished upload never appears). Only old ones: a live write's temp file is seconds old."""
    if not is_local(fs) or not os.path.isdir(date_dir):
        return 0
    removed = 0
    for folder, _, names in os.walk(date_dir):
        for name in names:
            path = os.path.join(folder, name)
            if name.startswith(".") and name.endswith(TMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    if now_ns / 1e9 - os.path.getmtime(path) > _TEMP_AGE_S:
                        os.unlink(path)
                        removed += 1
    return removed


def _label(start_ns: int, span_ns: int) -> str:
    """``day 2024-08-08`` or ``hour 2024-08-08T23``."""
    what, fmt = ("day", "%Y-%m-%d") if span_ns == DAY_NS else ("hour", "%Y-%m-%dT%H")
    return f"{what} {time.strftime(fmt, time.gmtime(start_ns // 10**9))}"


def _size(files: list[LakeFile]) -> int:
    return sum(f.size for f in files)


def _url(fs: AbstractFileSystem, path: str) -> str:
    """A protocol-less path back to a URL ``open_atomic`` resolves to the same filesystem."""
    if is_local(fs):
        return path
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return f"{protocol}://{path}"


@contextlib.contextmanager
def _lock(fs: AbstractFileSystem, base: str) -> Iterator[None]:
    """One compaction per lake: an ``flock`` on local disk (released by the kernel if the process dies); on an
    object store a lock object created only if absent (a conditional PUT), taken over once it is older than
    ``_LOCK_TTL_NS`` (a crashed compaction's)."""
    path = join(base, _LOCK)
    if is_local(fs):
        import fcntl

        os.makedirs(base, exist_ok=True)
        with open(path, "a+b") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CompactionBusy(f"another compaction is running on {base}") from None
            yield
        return
    body = orjson.dumps({"pid": os.getpid(), "taken_ns": time.time_ns()})
    for _ in range(2):
        try:
            with fs.open(path, "xb") as fh:
                fh.write(body)
            break
        except FileExistsError:
            with fs.open(path, "rb") as fh:
                taken = int(orjson.loads(fh.read()).get("taken_ns", 0))
            if time.time_ns() - taken < _LOCK_TTL_NS:
                raise CompactionBusy(f"another compaction is running on {base} (since {iso_ns(taken)})") from None
            fs.rm(path)
    else:
        raise CompactionBusy(f"another compaction took the lock of {base}")
    try:
        yield
    finally:
        fs.rm(path)
