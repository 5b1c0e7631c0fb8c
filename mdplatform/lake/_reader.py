"""Reading the raw layer and the events beside it back for a window of receive time."""

from __future__ import annotations

import calendar
from collections.abc import Sequence

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
from fsspec import AbstractFileSystem
from pyarrow.fs import FSSpecHandler, PyFileSystem

from .._time import DAY_NS, HOUR_NS
from ..schemas import EVENTS, EVENTS_ARROW, RAW, RAW_ARROW
from ._fs import filesystem, is_local, join, lake_root
from ._paths import (
    BACKFILL_EVENTS_TABLE,
    BACKFILL_TABLE,
    EVENTS_TABLE,
    RAW_TABLE,
    MinuteTable,
    minute_dir,
    parse_minute_dir,
    table_exchange_dir,
)

__all__ = [
    "list_exchanges",
    "list_raw_minutes",
    "raw_minute_bounds",
    "read_backfill",
    "read_backfill_events",
    "read_events",
    "read_raw",
]


def list_exchanges(root: str | None = None, *, table: MinuteTable = RAW_TABLE) -> list[str]:
    """Exchanges with a folder in ``table`` ("raw" or "events")."""
    fs, base = filesystem(lake_root(root))
    tree = join(base, table)
    if not fs.exists(tree):
        return []
    names = (p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(tree, detail=False))
    return sorted(n.split("=", 1)[1] for n in names if n.startswith("exchange="))


def list_raw_minutes(
    root: str | None,
    start_ns: int,
    end_ns: int,
    *,
    exchanges: Sequence[str] | None = None,
    table: MinuteTable = RAW_TABLE,
) -> dict[tuple[str, int], list[str]]:
    """(exchange, minute start ns) -> its part files (protocol-less paths), for minutes in [start, end) of the
    ``raw/`` tree, or of the ``events/`` tree with ``table="events"``.

    Lists only dates that exist; short windows glob hour by hour so an hourly asset never lists a whole day.
    """
    root = lake_root(root)
    fs, base = filesystem(root)
    found: dict[tuple[str, int], list[str]] = {}
    for exchange in exchanges if exchanges is not None else list_exchanges(root, table=table):
        exchange_dir = table_exchange_dir(base, exchange, table)
        if not fs.exists(exchange_dir):
            continue
        for date_dir in sorted(fs.ls(exchange_dir, detail=False)):
            day = _day_start_ns(date_dir)
            if day is None or day + DAY_NS <= start_ns or day >= end_ns:
                continue
            lo, hi = max(start_ns, day), min(end_ns, day + DAY_NS)
            if hi - lo > 6 * HOUR_NS:
                patterns = [f"{date_dir}/hour=*/minute=*/*.parquet"]
            else:
                first = lo - lo % HOUR_NS
                patterns = [
                    f"{minute_dir(base, exchange, h, table).rsplit('/', 1)[0]}/minute=*/*.parquet"
                    for h in range(first, hi, HOUR_NS)
                ]
            for pattern in patterns:
                for path in sorted(fs.glob(pattern)):
                    parsed = parse_minute_dir(path)
                    if parsed and start_ns <= parsed[1] < end_ns:
                        found.setdefault(parsed, []).append(path)
    return found


def raw_minute_bounds(root: str | None = None) -> tuple[int, int] | None:
    """(first, last) minute start (ns) holding frames or events, over all exchanges (a quiet market may have
    event minutes and no frame minutes), None for an empty lake; walks only the first and last date/hour folders
    holding a part file, so it stays cheap on a long history."""
    root = lake_root(root)
    fs, base = filesystem(root)
    found: list[int] = []
    for table in (RAW_TABLE, EVENTS_TABLE):
        for exchange in list_exchanges(root, table=table):
            dates = _names(fs, table_exchange_dir(base, exchange, table))
            for ordered, last in ((dates, False), (dates[::-1], True)):
                edge = _edge_minute(fs, ordered, last=last)
                if edge is not None:
                    found.append(edge)
    return (min(found), max(found)) if found else None


def _names(fs: AbstractFileSystem, path: str) -> list[str]:
    """Child folders of ``path`` (full paths), sorted; none if it does not exist."""
    try:
        return sorted(str(p).rstrip("/") for p in fs.ls(path, detail=False))
    except FileNotFoundError:
        return []


def _edge_minute(fs: AbstractFileSystem, date_dirs: list[str], *, last: bool) -> int | None:
    for date_dir in date_dirs:
        hours = _names(fs, date_dir)
        for hour_dir in hours[::-1] if last else hours:
            minutes = _names(fs, hour_dir)
            for folder in minutes[::-1] if last else minutes:
                parsed = parse_minute_dir(folder)
                # a writer's temp file (".part-*.tmp") does not count: the minute is there once a part is
                if parsed is not None and any(n.endswith(".parquet") for n in _names(fs, folder)):
                    return parsed[1]
    return None


def _day_start_ns(date_dir: str) -> int | None:
    name = date_dir.rstrip("/").rsplit("/", 1)[-1]
    if not name.startswith("date="):
        return None
    try:
        y, m, d = (int(x) for x in name[5:].split("-"))
    except ValueError:
        return None
    return calendar.timegm((y, m, d, 0, 0, 0, 0, 0, 0)) * 10**9


def read_raw(
    root: str | None,
    start_ns: int,
    end_ns: int,
    *,
    exchanges: Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Raw rows whose receive minute lies in [start_ns, end_ns), in the RAW schema, in file order."""
    flt = ds.field("channel").isin(list(channels)) if channels is not None else None
    return _read_minutes(root, RAW_TABLE, start_ns, end_ns, exchanges, columns, flt)


def read_events(
    root: str | None, start_ns: int, end_ns: int, *, exchanges: Sequence[str] | None = None
) -> pl.DataFrame:
    """The collector's events whose receive minute lies in [start_ns, end_ns), in the EVENTS schema, ordered by
    ``recv_ts`` (stable: rows of one time keep the order they were recorded in)."""
    df = _read_minutes(root, EVENTS_TABLE, start_ns, end_ns, exchanges, None, None)
    return df.sort("recv_ts", maintain_order=True)


def read_backfill(
    root: str | None, start_ns: int, end_ns: int, *, exchanges: Sequence[str] | None = None
) -> pl.DataFrame:
    """Trade records fetched from REST history whose exchange-time minute lies in [start_ns, end_ns): RAW rows
    plus ``minute`` (the minute's start, ns Int64), in file order."""
    root = lake_root(root)
    minutes = list_raw_minutes(root, start_ns, end_ns, exchanges=exchanges, table=BACKFILL_TABLE)
    parts = [
        _read_files(root, paths, RAW, RAW_ARROW, list(RAW), None).with_columns(minute=pl.lit(minute, pl.Int64))
        for (_, minute), paths in sorted(minutes.items())
    ]
    return pl.concat(parts) if parts else pl.DataFrame(schema={**RAW, "minute": pl.Int64()})


def read_backfill_events(
    root: str | None, start_ns: int, end_ns: int, *, exchanges: Sequence[str] | None = None
) -> pl.DataFrame:
    """What REST history fetches proved (``backfilled`` rows, EVENTS schema) for exchange-time minutes in
    [start_ns, end_ns)."""
    return _read_minutes(root, BACKFILL_EVENTS_TABLE, start_ns, end_ns, exchanges, None, None)


def _read_minutes(
    root: str | None,
    table: MinuteTable,
    start_ns: int,
    end_ns: int,
    exchanges: Sequence[str] | None,
    columns: Sequence[str] | None,
    flt: ds.Expression | None,
) -> pl.DataFrame:
    schema, arrow_schema = (RAW, RAW_ARROW) if table in (RAW_TABLE, BACKFILL_TABLE) else (EVENTS, EVENTS_ARROW)
    root = lake_root(root)
    minutes = list_raw_minutes(root, start_ns, end_ns, exchanges=exchanges, table=table)
    files = [f for _, paths in sorted(minutes.items()) for f in paths]
    cols = list(columns) if columns is not None else list(schema)
    return _read_files(root, files, schema, arrow_schema, cols, flt)


def _read_files(
    root: str,
    files: list[str],
    schema: dict[str, pl.DataType],
    arrow_schema: pa.Schema,
    cols: list[str],
    flt: ds.Expression | None,
) -> pl.DataFrame:
    if not files:
        return pl.DataFrame(schema={c: schema[c] for c in cols})
    fs, _ = filesystem(root)
    filesystem_arg = None if is_local(fs) else PyFileSystem(FSSpecHandler(fs))
    dataset = ds.dataset(files, schema=arrow_schema, format="parquet", filesystem=filesystem_arg)
    result: pa.Table = dataset.to_table(columns=cols, filter=flt)
    out = pl.from_arrow(result)
    assert isinstance(out, pl.DataFrame)
    return out
