"""What the lake holds: files, rows and bytes per layer and exchange, and what compaction saved and would save.

The minute tables (``raw/``, ``events/``, ``backfill/``, ``backfill_events/``) are counted per exchange and by file
depth (minute, hour, day files); an hour or day file's footer says how many minute files and bytes its rows first
landed in (``FileMeta``), which is what compaction saved. *Compactable* is what ``mdp lake compact`` would do now
(with the same ages): the files of final hours and days that are not one file yet, and how many files they would
become. Every other top-level folder (``trades/``, ``candles/``, ``book_snapshots/``, ``quarantine/``...) is a
derived table, counted as a whole. Rows come from the Parquet footers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from .._time import DAY_NS, HOUR_NS
from ._compact import COMPACTED_TABLES, DEFAULT_DAY_AGE_NS, DEFAULT_MIN_AGE_NS
from ._fs import filesystem, join, lake_root
from ._landed import LANDED_DIR
from ._layout import LakeFile, file_meta, list_files, list_spans, resolve
from ._paths import BACKFILL_EVENTS_TABLE, BACKFILL_TABLE, EVENTS_TABLE, RAW_TABLE, MinuteTable
from ._reader import list_exchanges

__all__ = ["LakeStats", "lake_stats"]

_MINUTE_TABLES: tuple[MinuteTable, ...] = (RAW_TABLE, EVENTS_TABLE, BACKFILL_TABLE, BACKFILL_EVENTS_TABLE)
_FOOTER_READERS = 8


@dataclass(slots=True)
class LakeStats:
    """One layer (and exchange, for the minute tables; "" for a derived table)."""

    layer: str
    exchange: str
    files: int = 0
    rows: int = 0
    bytes: int = 0
    minute_files: int = 0
    hour_files: int = 0
    day_files: int = 0
    #: absorbed files a crash left behind (readers ignore them; the next compaction deletes them)
    leftover_files: int = 0
    #: the minute files and bytes the rows of today's files first landed in (equal to files/bytes uncompacted)
    landed_files: int = 0
    landed_bytes: int = 0
    #: what compaction would rewrite now: files (bytes) in final hours and days, and the files they would become
    compactable_files: int = 0
    compactable_bytes: int = 0
    compacted_to: int = 0


def lake_stats(
    root: str | None = None,
    *,
    now_ns: int | None = None,
    min_age_ns: int = DEFAULT_MIN_AGE_NS,
    day_age_ns: int = DEFAULT_DAY_AGE_NS,
) -> list[LakeStats]:
    """Stats of every layer of the lake at ``root`` (default: the configured lake), minute tables first."""
    root = lake_root(root)
    fs, base = filesystem(root)
    now = time.time_ns() if now_ns is None else now_ns
    out: list[LakeStats] = []
    with ThreadPoolExecutor(_FOOTER_READERS) as pool:
        for table in _MINUTE_TABLES:
            for exchange in list_exchanges(root, table=table):
                out.append(_minute_table(fs, base, pool, table, exchange, now, min_age_ns, day_age_ns))
        for layer in _derived_layers(fs, base):
            paths = {p: s for p, s in _parquet_files(fs, join(base, layer)).items()}
            st = LakeStats(layer, "", files=len(paths), bytes=sum(paths.values()))
            st.rows = sum(pool.map(lambda p: _rows(fs, p), paths))
            st.landed_files, st.landed_bytes = st.files, st.bytes
            out.append(st)
    return out


def _minute_table(
    fs: AbstractFileSystem,
    base: str,
    pool: ThreadPoolExecutor,
    table: MinuteTable,
    exchange: str,
    now: int,
    min_age_ns: int,
    day_age_ns: int,
) -> LakeStats:
    st = LakeStats(table, exchange)
    files = list_files(fs, base, table, exchange, 0, 2**62)
    keep, gone = resolve(fs, files)
    st.leftover_files = len(gone)
    st.files, st.bytes = len(keep), sum(f.size for f in keep)
    st.rows = sum(pool.map(lambda f: _rows(fs, f.path), keep))
    metas = dict(
        zip(
            (f.path for f in keep if f.compacted),
            pool.map(lambda f: file_meta(fs, f), [f for f in keep if f.compacted]),
            strict=True,
        )
    )
    for f in keep:
        if f.span_ns == DAY_NS:
            st.day_files += 1
        elif f.span_ns == HOUR_NS:
            st.hour_files += 1
        else:
            st.minute_files += 1
        meta = metas.get(f.path)
        st.landed_files += (meta.source_files or 1) if meta is not None else 1
        st.landed_bytes += (meta.source_bytes or f.size) if meta is not None else f.size
    if table in COMPACTED_TABLES:
        for span_files in _compactable(keep, now, min_age_ns, day_age_ns):
            st.compactable_files += len(span_files)
            st.compactable_bytes += sum(f.size for f in span_files)
            st.compacted_to += 1
    return st


def _compactable(files: list[LakeFile], now: int, min_age_ns: int, day_age_ns: int) -> Iterable[list[LakeFile]]:
    """The spans compaction would rewrite now (``_compact._compact_day``'s choice), each as its files."""
    for day, day_files in sorted(list_spans(files, DAY_NS).items()):
        day_final = day + DAY_NS + min_age_ns <= now
        if day_final and (day + DAY_NS + day_age_ns <= now or any(f.span_ns == DAY_NS for f in day_files)):
            spans, span_ns = {day: day_files}, DAY_NS
        else:
            spans, span_ns = list_spans([f for f in day_files if f.span_ns < DAY_NS], HOUR_NS), HOUR_NS
        for start, span_files in spans.items():
            if start + span_ns + min_age_ns > now:
                continue
            if len(span_files) == 1:
                continue
            yield span_files


def _rows(fs: AbstractFileSystem, path: str) -> int:
    with fs.open(path, "rb") as fh:
        return int(pq.ParquetFile(fh).metadata.num_rows)


def _derived_layers(fs: AbstractFileSystem, base: str) -> list[str]:
    """Top-level folders that are neither minute tables nor the landing log (nor hidden)."""
    fs.invalidate_cache(base)
    try:
        entries = fs.ls(base, detail=True)
    except FileNotFoundError:
        return []
    names = [str(e["name"]).rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory"]
    skip = {*_MINUTE_TABLES, LANDED_DIR}
    return sorted(n for n in names if n not in skip and not n.startswith((".", "_")))


def _parquet_files(fs: AbstractFileSystem, folder: str) -> dict[str, int]:
    fs.invalidate_cache(folder)
    found = fs.find(folder, detail=True)
    return {
        str(p): int(i.get("size") or 0)
        for p, i in found.items()
        if str(p).endswith(".parquet") and not str(p).rsplit("/", 1)[-1].startswith(".")
    }
