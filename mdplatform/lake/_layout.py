"""Which files hold a minute table's rows: minute files, and the hour and day files of compaction and imports.

A minute table (``raw/``, ``events/``, ...) holds files at three depths under ``{table}/exchange=X/``:

- ``date=D/hour=H/minute=M/<name>.parquet``: a *minute file* (the collector's, a backfill's);
- ``date=D/hour=H/<name>.parquet``: an *hour file* (``mdp lake compact``, ``mdp import-capture``);
- ``date=D/<name>.parquet``: a *day file* (``mdp lake compact`` of older days).

An hour or day file says in its Parquet key-value metadata (``META_KEY``, ``FileMeta``) which minutes it holds and
which files it *absorbed*: the files of its span whose rows it holds (paths relative to the exchange folder,
transitively: what the files it absorbed had absorbed). Readers read every file of the window except absorbed
ones: compaction commits its file before it deletes what it absorbed, so a reader sees the minute files or the
file that replaced them, never both and never neither, and a crash between the two leaves files every reader
ignores (the next compaction deletes them). A minute file that lands in a compacted hour later (a journal replayed
after a crash) is not listed, so it is read, and the next compaction merges it; one landing under a name that was
absorbed (the same rows written again: a journal replay, a repeated import) stays ignored.

Files are ordered by span start, then longer spans first, then name: within one channel group (``_groups.py``)
that is receive order, the order compaction writes them in.
"""

from __future__ import annotations

import calendar
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from .._time import DAY_NS, HOUR_NS, MINUTE_NS
from ._fs import is_local, join
from ._paths import MinuteTable, table_exchange_dir

__all__ = [
    "META_KEY",
    "FileMeta",
    "LakeFile",
    "day_start",
    "file_meta",
    "list_files",
    "list_spans",
    "minute_window",
    "parse_lake_file",
    "resolve",
    "span_dir",
]

#: Parquet key-value metadata of an hour or day file: JSON ``FileMeta``
META_KEY = b"mdp.lake"
PARQUET = ".parquet"


@dataclass(frozen=True, slots=True)
class LakeFile:
    """One Parquet file of a minute table: its path (without protocol), its path relative to the exchange folder
    (``rel``), the span its depth stands for: [start_ns, start_ns + span_ns), and its size in bytes."""

    path: str
    rel: str
    exchange: str
    start_ns: int
    span_ns: int
    size: int = 0

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.span_ns

    @property
    def compacted(self) -> bool:
        """An hour or day file (it carries ``FileMeta``)."""
        return self.span_ns > MINUTE_NS

    def holds(self, other: LakeFile) -> bool:
        """Whether ``other`` lies in this file's span (and is another file)."""
        return other.rel != self.rel and self.start_ns <= other.start_ns and other.end_ns <= self.end_ns

    def order(self) -> tuple[int, int, str]:
        return self.start_ns, -self.span_ns, self.rel


@dataclass(frozen=True, slots=True)
class FileMeta:
    """What an hour or day file says about itself: the minutes it holds rows of (start ns), the files it absorbed
    (``LakeFile.rel``), and how many minute files / bytes its rows first landed in (what compaction saved)."""

    minutes: tuple[int, ...] = ()
    absorbed: frozenset[str] = frozenset()
    source_files: int = 0
    source_bytes: int = 0

    def encode(self, span_start_ns: int) -> bytes:
        return orjson.dumps(
            {
                # minute offsets from the span's start: a day's 1,440 minutes stay a few kB
                "minutes": [(m - span_start_ns) // MINUTE_NS for m in self.minutes],
                "absorbed": sorted(self.absorbed),
                "source_files": self.source_files,
                "source_bytes": self.source_bytes,
            }
        )

    @classmethod
    def decode(cls, raw: bytes | None, span_start_ns: int) -> FileMeta:
        if not raw:
            return cls()
        obj = orjson.loads(raw)
        return cls(
            tuple(span_start_ns + int(m) * MINUTE_NS for m in obj.get("minutes", ())),
            frozenset(str(a) for a in obj.get("absorbed", ())),
            int(obj.get("source_files", 0)),
            int(obj.get("source_bytes", 0)),
        )


def file_meta(fs: AbstractFileSystem, f: LakeFile) -> FileMeta:
    """The ``FileMeta`` of an hour or day file (its footer is read); a minute file's own minute."""
    if not f.compacted:
        return FileMeta(minutes=(f.start_ns,))
    with fs.open(f.path, "rb") as fh:
        kv = pq.ParquetFile(fh).metadata.metadata
    return FileMeta.decode((kv or {}).get(META_KEY), f.start_ns)


def span_dir(base: str, table: MinuteTable, exchange: str, start_ns: int, span_ns: int) -> str:
    """The folder of a file spanning [start, start + span): the date folder for a day, the hour folder for an
    hour, the minute folder for a minute."""
    from ._paths import hour_parts, minute_dir

    if span_ns == MINUTE_NS:
        return minute_dir(base, exchange, start_ns, table)
    date, hour = hour_parts(start_ns)
    parts = [date] if span_ns == DAY_NS else [date, hour]
    return join(table_exchange_dir(base, exchange, table), *parts)


def parse_lake_file(path: str, exchange_dir: str, exchange: str, size: int = 0) -> LakeFile | None:
    """The ``LakeFile`` of a path under ``exchange_dir``; None for anything else (temp files, folders, other
    names)."""
    rel = path[len(exchange_dir) :].strip("/")
    parts = rel.split("/")
    name = parts[-1]
    if not name.endswith(PARQUET) or name.startswith(".") or not 2 <= len(parts) <= 4:
        return None
    try:
        key, _, value = parts[0].partition("=")
        if key != "date":
            return None
        y, mo, d = (int(x) for x in value.split("-"))
        start = calendar.timegm((y, mo, d, 0, 0, 0, 0, 0, 0)) * 10**9
        span = DAY_NS
        for depth, (prefix, unit) in enumerate((("hour=", HOUR_NS), ("minute=", MINUTE_NS)), 1):
            if len(parts) <= depth + 1:
                break
            if not parts[depth].startswith(prefix):
                return None
            start += int(parts[depth][len(prefix) :]) * unit
            span = unit
    except ValueError:
        return None
    return LakeFile(path, rel, exchange, start, span, size)


def minute_window(start_ns: int, end_ns: int) -> tuple[int, int]:
    """[first, end) of the minute starts m with start_ns <= m < end_ns."""
    return -(-start_ns // MINUTE_NS) * MINUTE_NS, -(-end_ns // MINUTE_NS) * MINUTE_NS


def day_start(path: str) -> int | None:
    """Start (ns) of the day of a ``date=YYYY-MM-DD`` folder (a path ending in one); None for anything else."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if not name.startswith("date="):
        return None
    try:
        y, m, d = (int(x) for x in name[5:].split("-"))
    except ValueError:
        return None
    return calendar.timegm((y, m, d, 0, 0, 0, 0, 0, 0)) * 10**9


def _listing(fs: AbstractFileSystem, path: str, *, recursive: bool) -> dict[str, int]:
    """Path -> size of the files in ``path`` (and below it, ``recursive``), fresh: an object store's cached
    listing would still show what compaction has deleted since."""
    if is_local(fs):
        return _local_listing(path, recursive=recursive)
    fs.invalidate_cache(path)
    try:
        if recursive:
            found = fs.find(path, detail=True)
        else:
            found = {str(i["name"]): i for i in fs.ls(path, detail=True) if i.get("type") == "file"}
    except FileNotFoundError:
        return {}
    return {str(name).rstrip("/"): int(info.get("size") or 0) for name, info in found.items()}


def _local_listing(path: str, *, recursive: bool) -> dict[str, int]:
    """``_listing`` on local disk by ``os.scandir``: the same paths and sizes, without fsspec's per-file ``info``
    (a range's hours list the lake once per hour and table: this was most of an empty hour's cost)."""
    out: dict[str, int] = {}
    stack = [path]
    while stack:
        folder = stack.pop()
        try:
            entries = os.scandir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue  # gone since it was listed (compaction removed a minute folder): as fsspec's find skips it
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        stack.append(entry.path)
                elif entry.is_file():
                    try:
                        out[entry.path] = entry.stat().st_size
                    except FileNotFoundError:
                        continue
    return out


def list_files(
    fs: AbstractFileSystem, base: str, table: MinuteTable, exchange: str, start_ns: int, end_ns: int
) -> list[LakeFile]:
    """Every Parquet file of ``exchange`` in ``table`` holding minutes in [start_ns, end_ns) (an hour or day file
    counts when its span meets the window), absorbed ones included, unordered. Lists only the dates of the
    window, and for a short window only its hours."""
    first, end = minute_window(start_ns, end_ns)
    exchange_dir = table_exchange_dir(base, exchange, table)
    fs.invalidate_cache(exchange_dir)
    try:
        dates = sorted(str(p).rstrip("/") for p in fs.ls(exchange_dir, detail=False))
    except FileNotFoundError:
        return []
    out: list[LakeFile] = []
    for date_dir in dates:
        day = day_start(date_dir)
        if day is None or day + DAY_NS <= first or day >= end:
            continue
        lo, hi = max(first, day), min(end, day + DAY_NS)
        if hi - lo > 6 * HOUR_NS:
            sizes = _listing(fs, date_dir, recursive=True)
        else:
            # the day's own files, then only the hours of the window
            sizes = _listing(fs, date_dir, recursive=False)
            for hour in range(lo - lo % HOUR_NS, hi, HOUR_NS):
                sizes |= _listing(fs, span_dir(base, table, exchange, hour, HOUR_NS), recursive=True)
        for path, size in sizes.items():
            f = parse_lake_file(path, exchange_dir, exchange, size)
            if f is not None and f.start_ns < end and f.end_ns > first:
                out.append(f)
    return out


def resolve(
    fs: AbstractFileSystem, files: Iterable[LakeFile], metas: dict[str, FileMeta] | None = None
) -> tuple[list[LakeFile], list[LakeFile]]:
    """(files to read, in read order; files absorbed by another one present). Footers are read only for hour and
    day files that share their span with another file (``metas`` caches them by path)."""
    files = sorted(files, key=LakeFile.order)
    metas = {} if metas is None else metas
    absorbed: set[str] = set()
    for f in files:
        if f.compacted and any(f.holds(g) for g in files):
            if f.path not in metas:
                metas[f.path] = file_meta(fs, f)
            absorbed |= metas[f.path].absorbed
    keep = [f for f in files if f.rel not in absorbed]
    gone = [f for f in files if f.rel in absorbed]
    return keep, gone


def list_spans(files: Sequence[LakeFile], span_ns: int) -> dict[int, list[LakeFile]]:
    """Files grouped by the ``span_ns``-long span (hour or day) they lie in."""
    out: dict[int, list[LakeFile]] = {}
    for f in files:
        out.setdefault(f.start_ns - f.start_ns % span_ns, []).append(f)
    return out
