"""Reading the raw layer and the events beside it back for a window of receive time.

A file that cannot be read (a torn or corrupt Parquet file, a bad compressed page) must not fail every reader of
its window, nor hide which file it is: it is moved aside to ``quarantine/unreadable/<its lake path>`` with a
``.reason`` file beside it, logged with its path, and the window is read without it (``unreadable_files`` lists
what was moved, for the runs' metadata). Only local lakes quarantine: a remote store's read errors may be
transient, and are raised naming the file instead.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
from fsspec import AbstractFileSystem
from pyarrow.fs import FSSpecHandler, PyFileSystem

from .._time import DAY_NS
from ..schemas import EVENTS, EVENTS_ARROW, RAW, RAW_ARROW
from ._fs import filesystem, is_local, join, lake_root
from ._groups import groups_of, row_group_groups
from ._layout import FileMeta, LakeFile, day_start, file_meta, list_files, minute_window, resolve
from ._paths import (
    BACKFILL_EVENTS_TABLE,
    BACKFILL_TABLE,
    EVENTS_TABLE,
    RAW_TABLE,
    MinuteTable,
    table_exchange_dir,
)

__all__ = [
    "UNREADABLE_DIR",
    "list_exchanges",
    "list_raw_minutes",
    "raw_minute_bounds",
    "read_backfill",
    "read_backfill_events",
    "read_events",
    "read_raw",
    "unreadable_files",
]

log = logging.getLogger("mdplatform.lake")

#: where unreadable files go, under the lake root, each at its own lake path
UNREADABLE_DIR = "quarantine/unreadable"
_REASON_SUFFIX = ".reason"

#: reads of a window whose files compaction replaced meanwhile, before giving up
_READ_ATTEMPTS = 5


def list_exchanges(root: str | None = None, *, table: MinuteTable = RAW_TABLE) -> list[str]:
    """Exchanges with a folder in ``table`` ("raw" or "events")."""
    fs, base = filesystem(lake_root(root))
    tree = join(base, table)
    if not fs.exists(tree):
        return []
    names = (p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(tree, detail=False))
    return sorted(n.split("=", 1)[1] for n in names if n.startswith("exchange="))


def _exchanges(root: str, table: MinuteTable, exchanges: Sequence[str] | None) -> list[str]:
    """The exchanges to read, in name order (reads return them in this order)."""
    return sorted(exchanges) if exchanges is not None else list_exchanges(root, table=table)


def list_raw_minutes(
    root: str | None,
    start_ns: int,
    end_ns: int,
    *,
    exchanges: Sequence[str] | None = None,
    table: MinuteTable = RAW_TABLE,
) -> dict[tuple[str, int], list[str]]:
    """(exchange, minute start ns) -> the files holding its rows (protocol-less paths), for minutes in [start, end)
    of the ``raw/`` tree, or of another minute tree with ``table=``. An hour or day file is listed under every
    minute it holds (``_layout.FileMeta``); files absorbed by another one are not listed.

    Lists only dates that exist; short windows list hour by hour so an hourly asset never lists a whole day.
    """
    root = lake_root(root)
    fs, base = filesystem(root)
    found: dict[tuple[str, int], list[str]] = {}
    for exchange in _exchanges(root, table, exchanges):
        metas: dict[str, FileMeta] = {}
        keep, _ = resolve(fs, list_files(fs, base, table, exchange, start_ns, end_ns), metas)
        for f in keep:
            minutes = (metas.get(f.path) or file_meta(fs, f)).minutes if f.compacted else (f.start_ns,)
            for minute in minutes:
                if start_ns <= minute < end_ns:
                    found.setdefault((exchange, minute), []).append(f.path)
    return found


def raw_minute_bounds(root: str | None = None) -> tuple[int, int] | None:
    """(first, last) minute start (ns) holding frames or events, over all exchanges (a quiet market may have
    event minutes and no frame minutes), None for an empty lake; lists only the first and last dates holding a
    file (and reads the footers of their hour and day files), so it stays cheap on a long history."""
    root = lake_root(root)
    fs, base = filesystem(root)
    found: list[int] = []
    for table in (RAW_TABLE, EVENTS_TABLE):
        for exchange in list_exchanges(root, table=table):
            days = [d for d in map(day_start, _names(fs, table_exchange_dir(base, exchange, table))) if d is not None]
            for ordered, pick in ((days, min), (days[::-1], max)):
                for day in ordered:
                    minutes = [
                        m
                        for f in resolve(fs, list_files(fs, base, table, exchange, day, day + DAY_NS))[0]
                        for m in (file_meta(fs, f).minutes if f.compacted else (f.start_ns,))
                    ]
                    if minutes:
                        found.append(pick(minutes))
                        break
    return (min(found), max(found)) if found else None


def _names(fs: AbstractFileSystem, path: str) -> list[str]:
    """Child folders of ``path`` (full paths), sorted; none if it does not exist."""
    fs.invalidate_cache(path)
    try:
        return sorted(str(p).rstrip("/") for p in fs.ls(path, detail=False))
    except FileNotFoundError:
        return []


def read_raw(
    root: str | None,
    start_ns: int,
    end_ns: int,
    *,
    exchanges: Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Raw rows whose receive minute lies in [start_ns, end_ns), in the RAW schema.

    Row order: the rows of one channel group (``_groups.py``: an exchange's trade channels, its book channels, the
    rest) come in receive order per exchange, exactly as landed (each connection's frames by ``seq``), whatever
    files hold them: minute files, or the hour and day files of compaction and imports. A read of several groups
    gets them interleaved file by file and row group by row group: sort (by ``recv_ts``, or ``conn_id`` and
    ``seq``) when one order across groups matters. With ``channels``, the row groups of the other channel groups
    are not read.
    """
    return _read_window(root, RAW_TABLE, start_ns, end_ns, exchanges, columns, channels)


def read_events(
    root: str | None, start_ns: int, end_ns: int, *, exchanges: Sequence[str] | None = None
) -> pl.DataFrame:
    """The collector's events whose receive minute lies in [start_ns, end_ns), in the EVENTS schema, ordered by
    ``recv_ts`` (stable: rows of one time keep the order they were recorded in)."""
    df = _read_window(root, EVENTS_TABLE, start_ns, end_ns, exchanges, None, None)
    return df.sort("recv_ts", maintain_order=True)


def read_backfill(
    root: str | None, start_ns: int, end_ns: int, *, exchanges: Sequence[str] | None = None
) -> pl.DataFrame:
    """Trade records fetched from REST history whose exchange-time minute lies in [start_ns, end_ns): RAW rows
    plus ``minute`` (the minute's start, ns Int64), in file order. (The backfill trees hold minute files only:
    their partition minute is no column of theirs, so compaction leaves them as they are.)"""
    root = lake_root(root)
    fs, base = filesystem(root)
    parts = []
    for exchange in _exchanges(root, BACKFILL_TABLE, exchanges):
        files = resolve(fs, list_files(fs, base, BACKFILL_TABLE, exchange, start_ns, end_ns))[0]
        for minute, group in itertools.groupby((f for f in files if start_ns <= f.start_ns < end_ns), key=_start):
            df = _read_or_quarantine(fs, base, list(group), RAW, RAW_ARROW, list(RAW), None, None)
            parts.append(df.with_columns(minute=pl.lit(minute, pl.Int64)))
    return pl.concat(parts) if parts else pl.DataFrame(schema={**RAW, "minute": pl.Int64()})


def _start(f: LakeFile) -> int:
    return f.start_ns


def read_backfill_events(
    root: str | None, start_ns: int, end_ns: int, *, exchanges: Sequence[str] | None = None
) -> pl.DataFrame:
    """What REST history fetches proved (``backfilled`` rows, EVENTS schema) for exchange-time minutes in
    [start_ns, end_ns)."""
    return _read_window(root, BACKFILL_EVENTS_TABLE, start_ns, end_ns, exchanges, None, None)


def _read_window(
    root: str | None,
    table: MinuteTable,
    start_ns: int,
    end_ns: int,
    exchanges: Sequence[str] | None,
    columns: Sequence[str] | None,
    channels: Sequence[str] | None,
) -> pl.DataFrame:
    schema, arrow_schema = (RAW, RAW_ARROW) if table in (RAW_TABLE, BACKFILL_TABLE) else (EVENTS, EVENTS_ARROW)
    cols = list(columns) if columns is not None else list(schema)
    root = lake_root(root)
    fs, base = filesystem(root)
    first, end = minute_window(start_ns, end_ns)
    for attempt in range(_READ_ATTEMPTS):
        files: list[LakeFile] = []
        for exchange in _exchanges(root, table, exchanges):
            files += resolve(fs, list_files(fs, base, table, exchange, start_ns, end_ns))[0]
        # an hour or day file reaching out of the window: its rows are cut to the window's minutes by receive time
        # (raw and events rows lie in the minute of their recv_ts; the backfill trees have minute files only)
        window = (first, end) if any(f.start_ns < first or f.end_ns > end for f in files if f.compacted) else None
        try:
            return _read_or_quarantine(fs, base, files, schema, arrow_schema, cols, channels, window)
        except FileNotFoundError:
            # compaction replaced files between the listing and the read: the next listing has what replaced them
            if attempt == _READ_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _read_or_quarantine(
    fs: AbstractFileSystem,
    base: str,
    files: list[LakeFile],
    schema: dict[str, pl.DataType],
    arrow_schema: pa.Schema,
    cols: list[str],
    channels: Sequence[str] | None,
    window: tuple[int, int] | None,
) -> pl.DataFrame:
    """``_read_files``; when that fails on a file's content, file by file, the unreadable ones quarantined (same
    rows, same order, without theirs)."""
    try:
        return _read_files(fs, files, schema, arrow_schema, cols, channels, window)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError):
        pass  # which file it is: read them one by one
    parts = []
    for f in files:
        try:
            parts.append(_read_files(fs, [f], schema, arrow_schema, cols, channels, window))
        except FileNotFoundError:
            raise
        except (pa.ArrowException, OSError) as exc:
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            if not is_local(fs) and not isinstance(exc, pa.ArrowInvalid):
                raise OSError(f"cannot read {f.path}: {reason}") from exc
            _quarantine(fs, base, f.path, reason)
    return pl.concat(parts) if parts else pl.DataFrame(schema={c: schema[c] for c in cols})


def _quarantine(fs: AbstractFileSystem, base: str, path: str, reason: str) -> None:
    """Move ``path`` (a file under the lake ``base``) to the unreadable quarantine, with its reason beside it."""
    rel = path[len(base.rstrip("/")) + 1 :] if path.startswith(base.rstrip("/") + "/") else path.lstrip("/")
    target = join(base, UNREADABLE_DIR, rel)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(target + _REASON_SUFFIX, f"{stamp} {reason}\n".encode())
    fs.mv(path, target)
    log.error("quarantined unreadable file %s (now %s): %s", path, target, reason)


def unreadable_files(root: str | None = None) -> list[tuple[str, str]]:
    """(lake path, reason) of every file quarantined as unreadable, by path."""
    fs, base = filesystem(lake_root(root))
    folder = join(base, UNREADABLE_DIR)
    if not fs.exists(folder):
        return []
    out = []
    for found in sorted(str(p) for p in fs.find(folder)):
        if found.endswith(_REASON_SUFFIX):
            rel = found[len(folder.rstrip("/")) + 1 : -len(_REASON_SUFFIX)]
            out.append((rel, fs.cat_file(found).decode().strip()))
    return out


def _read_files(
    fs: AbstractFileSystem,
    files: list[LakeFile],
    schema: dict[str, pl.DataType],
    arrow_schema: pa.Schema,
    cols: list[str],
    channels: Sequence[str] | None,
    window: tuple[int, int] | None,
) -> pl.DataFrame:
    if not files:
        return pl.DataFrame(schema={c: schema[c] for c in cols})
    if is_local(fs) and (channels is None or not any(f.compacted for f in files)):
        return _scan_local(files, schema, cols, channels, window)
    filesystem_arg = None if is_local(fs) else PyFileSystem(FSSpecHandler(fs))
    parquet = ds.ParquetFileFormat()
    dataset = ds.dataset([f.path for f in files], schema=arrow_schema, format=parquet, filesystem=filesystem_arg)
    flt: ds.Expression | None = None
    if channels is not None:
        flt = ds.field("channel").isin(list(channels))
        dataset = _only_groups(dataset, files, channels, arrow_schema, parquet, filesystem_arg)
    if window is not None:
        ts = arrow_schema.field("recv_ts").type
        inside = (ds.field("recv_ts") >= pa.scalar(window[0], ts)) & (ds.field("recv_ts") < pa.scalar(window[1], ts))
        flt = inside if flt is None else flt & inside
    result: pa.Table = dataset.to_table(columns=cols, filter=flt)
    out = pl.from_arrow(result)
    assert isinstance(out, pl.DataFrame)
    return out


def _scan_local(
    files: list[LakeFile],
    schema: dict[str, pl.DataType],
    cols: list[str],
    channels: Sequence[str] | None,
    window: tuple[int, int] | None,
) -> pl.DataFrame:
    """``_read_files`` on local disk when no row group needs cutting to channel groups: polars reads many small
    files (a window's minute files) at a fifth of the CPU a pyarrow dataset takes; same rows, same order."""
    frame = pl.scan_parquet(
        [f.path for f in files],
        schema=schema,
        hive_partitioning=False,
        glob=False,
        missing_columns="insert",
        extra_columns="ignore",
        # the footers' statistics serve the filters below only: without one, reading them cost a sixth of the CPU
        # of an hour's sixty minute files of events
        use_statistics=channels is not None or window is not None,
    )
    if channels is not None:
        frame = frame.filter(pl.col("channel").is_in(list(channels)))
    if window is not None:
        ts = pl.col("recv_ts").dt.epoch("ns")
        frame = frame.filter((ts >= window[0]) & (ts < window[1]))
    return frame.select(cols).collect()


def _only_groups(
    dataset: ds.FileSystemDataset,
    files: list[LakeFile],
    channels: Sequence[str],
    arrow_schema: pa.Schema,
    parquet: ds.ParquetFileFormat,
    filesystem_arg: PyFileSystem | None,
) -> ds.FileSystemDataset:
    """The dataset with the row groups of hour and day files cut to the channel groups of ``channels`` (their
    footers say which group each row group holds). Minute files are left to the scan's statistics: reading their
    many footers one by one would cost more than the little it saves."""
    fragments = []
    for f, fragment in zip(files, dataset.get_fragments(), strict=True):
        if not f.compacted:
            fragments.append(fragment)
            continue
        md = fragment.metadata
        names = row_group_groups(md.metadata, md.num_row_groups)
        if names is None:
            fragments.append(fragment)
            continue
        wanted = groups_of(f.exchange, channels)
        ids = [i for i, name in enumerate(names) if name in wanted]
        if ids:
            fragments.append(fragment.subset(row_group_ids=ids))
    return ds.FileSystemDataset(fragments, arrow_schema, parquet, filesystem_arg)
