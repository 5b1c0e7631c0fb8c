"""PostgreSQL brought back to the lake: each hour's derived partitions (the lake is the source of truth) replace
that hour's windows, one transaction per hour, after a database was dropped and recreated, restored from an old
backup, or missed loads while it was down."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import polars as pl
import psycopg

from mdplatform.lake import filesystem, is_local
from mdplatform.warehouse import SERVED, hour_window, partition_path

from ._dsn import database_error, resolve_dsn
from ._load import Timeouts, replace_windows
from ._migrate import migrate
from ._pool import connect

__all__ = ["ReloadResult", "reload_from_lake"]

_HOUR_NS = 3_600 * 10**9


@dataclass(slots=True)
class ReloadResult:
    """Per table: rows deleted and inserted; the hours reloaded; ``missing``: table -> hours whose partition the
    lake does not have (their rows in PostgreSQL were left as they are); ``skipped``: served tables PostgreSQL has
    no table for."""

    deleted: dict[str, int] = field(default_factory=dict)
    inserted: dict[str, int] = field(default_factory=dict)
    hours: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _read(path: str) -> pl.DataFrame | None:
    fs, target = filesystem(path)
    if not fs.exists(target):
        return None
    if is_local(fs):
        return pl.read_parquet(target)
    with fs.open(target, "rb") as fh:
        return pl.read_parquet(fh)


def _pg_columns(dsn: str, tables: Sequence[str]) -> dict[str, set[str]]:
    """table -> its columns, for the tables the database has."""
    try:
        with connect(dsn) as conn:
            rows = conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
                [list(tables)],
            ).fetchall()
    except psycopg.Error as exc:
        raise database_error(dsn, "reading the tables", exc) from None
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


def reload_from_lake(
    root: str,
    start_ns: int,
    end_ns: int,
    *,
    dsn: str | None = None,
    tables: Sequence[str] | None = None,
    timeouts: Timeouts | None = None,
    on_hour: Callable[[int], None] | None = None,
) -> ReloadResult:
    """Replace, for each hour in [start, end), the windows of ``tables`` (default: every served table the database
    has) by the lake's partitions of that hour, the migrations applied first. An hour is one transaction (its
    tables replaced together, under the loads' advisory locks: a concurrent materialize of the hour waits). A
    lake column the table does not have is left out; a partition the lake does not have leaves the table's rows of
    that hour as they are (counted in ``missing``)."""
    dsn = resolve_dsn(dsn)
    migrate(dsn)
    wanted = list(tables) if tables is not None else list(SERVED)
    columns = _pg_columns(dsn, wanted)
    result = ReloadResult(skipped=[t for t in wanted if t not in columns])
    present = [t for t in wanted if t in columns]
    hour = start_ns - start_ns % _HOUR_NS
    while hour < end_ns:
        windows = []
        for table in present:
            rows = _read(partition_path(root, table, hour))
            if rows is None:
                result.missing[table] = result.missing.get(table, 0) + 1
                continue
            windows.append(hour_window(table, rows.select([c for c in rows.columns if c in columns[table]]), hour))
        for w, loaded in zip(windows, replace_windows(windows, dsn=dsn, timeouts=timeouts), strict=True):
            result.deleted[w.table] = result.deleted.get(w.table, 0) + loaded.deleted
            result.inserted[w.table] = result.inserted.get(w.table, 0) + loaded.inserted
        result.hours += 1
        if on_hour is not None:
            on_hour(hour)
        hour += _HOUR_NS
    return result
