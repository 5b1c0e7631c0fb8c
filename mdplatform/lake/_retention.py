"""Retention of the receive-time trees: whole day folders of ``raw/`` and ``events/`` older than N days, once every
hour that reads them is materialized.

An hour H reads the receive minutes [H - lateness, H + 1h + lateness) (trades, coverage, the books): a day folder
is needed by the hours whose window meets one of its minutes (a minute file's own minute; what an hour or day file
holds, from its footer). Deleting it before those hours are materialized would lose data for good, so such a day
is kept, saying which hours are missing; the next run deletes it once they are done. The derived tables (trades,
candles, books, the warehouse) are left as they are: only the frames as received go.

A day is *old* once ``keep_days`` whole days have passed since its end: with 7, on the 9th the days up to the 1st
go. Deletion takes the compaction lock (``_compact._lock``): a compaction rewriting an old day's files at the same
time would write them back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fsspec import AbstractFileSystem

from .._time import DAY_NS, HOUR_NS, MINUTE_NS, floor_ns, from_ns
from ._compact import COMPACTED_TABLES, _lock
from ._fs import filesystem, lake_root
from ._layout import LakeFile, day_start, file_meta, list_files, resolve
from ._paths import MinuteTable, table_exchange_dir
from ._reader import list_exchanges

__all__ = ["DayFolder", "RetentionStats", "expire_days", "hours_reading"]

#: the missing hours a kept day names (the rest are counted)
_SHOWN = 5


@dataclass(frozen=True, slots=True)
class DayFolder:
    """One ``{table}/exchange=X/date=D`` folder: its files (absorbed ones included) and bytes."""

    table: MinuteTable
    exchange: str
    day_ns: int
    files: int
    bytes: int

    @property
    def label(self) -> str:
        return f"{self.table}/{self.exchange}/{from_ns(self.day_ns):%Y-%m-%d}"


@dataclass(slots=True)
class RetentionStats:
    deleted: list[DayFolder] = field(default_factory=list)
    #: old day folders kept, and why (hours reading them not materialized)
    kept: dict[str, str] = field(default_factory=dict)
    #: day folders younger than the cutoff
    recent: int = 0

    def summary(self) -> str:
        size = sum(d.bytes for d in self.deleted) / 2**20
        text = f"deleted {len(self.deleted)} day folder(s) ({size:,.1f} MB); {self.recent} recent one(s) kept"
        if self.kept:
            text += f"; {len(self.kept)} old one(s) kept: hours reading them not materialized"
        return text


def hours_reading(minute_ns: int, lateness_ns: int) -> range:
    """The hours H whose read window [H - lateness, H + 1h + lateness) holds the receive minute ``minute_ns``."""
    first = floor_ns(minute_ns - lateness_ns - HOUR_NS, HOUR_NS) + HOUR_NS
    return range(first, floor_ns(minute_ns + lateness_ns, HOUR_NS) + 1, HOUR_NS)


def expire_days(
    root: str | None = None,
    *,
    keep_days: int,
    lateness_ns: int,
    materialized: Callable[[int], bool],
    now_ns: int,
    tables: Sequence[MinuteTable] = COMPACTED_TABLES,
) -> RetentionStats:
    """Delete the day folders of ``tables`` (default raw and events) older than ``keep_days`` days whose minutes
    are read only by hours ``materialized(hour start ns)`` says are done (module doc). Raises ``CompactionBusy``
    when a compaction holds the lake."""
    if keep_days < 1:
        raise ValueError(f"retention keeps at least one day, not {keep_days}")
    root = lake_root(root)
    fs, base = filesystem(root)
    cutoff = floor_ns(now_ns, DAY_NS) - keep_days * DAY_NS  # days ending by then are old
    done: dict[int, bool] = {}

    def missing(hours: set[int]) -> list[int]:
        for hour in hours - done.keys():
            done[hour] = materialized(hour)
        return sorted(h for h in hours if not done[h])

    stats = RetentionStats()
    with _lock(fs, base):
        for table in tables:
            for exchange in list_exchanges(root, table=table):
                for date_dir, day in _days(fs, table_exchange_dir(base, exchange, table)):
                    if day + DAY_NS > cutoff:
                        stats.recent += 1
                        continue
                    files = list_files(fs, base, table, exchange, day, day + DAY_NS)
                    folder = DayFolder(table, exchange, day, len(files), sum(f.size for f in files))
                    needed = _hours_needed(fs, files, lateness_ns)
                    lacking = missing(needed)
                    if lacking:
                        shown = ", ".join(f"{from_ns(h):%Y-%m-%d %H:00}" for h in lacking[:_SHOWN])
                        more = f" and {len(lacking) - _SHOWN} more" if len(lacking) > _SHOWN else ""
                        stats.kept[folder.label] = f"{len(lacking)} hour(s) reading it not materialized: {shown}{more}"
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        fs.rm(date_dir, recursive=True)
                    stats.deleted.append(folder)
    return stats


def _days(fs: AbstractFileSystem, exchange_dir: str) -> list[tuple[str, int]]:
    """(folder, day start) of the date folders under ``exchange_dir``, oldest first."""
    fs.invalidate_cache(exchange_dir)
    try:
        names = sorted(str(p).rstrip("/") for p in fs.ls(exchange_dir, detail=False))
    except FileNotFoundError:
        return []
    return [(name, day) for name in names if (day := day_start(name)) is not None]


def _hours_needed(fs: AbstractFileSystem, files: Sequence[LakeFile], lateness_ns: int) -> set[int]:
    """The hours reading the minutes the files hold (what readers read of them: absorbed files are left out; an
    hour or day file that does not say its minutes counts as all of them)."""
    keep, _ = resolve(fs, files)
    minutes: set[int] = set()
    for f in keep:
        held = file_meta(fs, f).minutes
        minutes.update(held or range(f.start_ns, f.end_ns, MINUTE_NS))
    return {h for m in minutes for h in hours_reading(m, lateness_ns)}
