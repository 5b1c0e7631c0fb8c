"""The statements of the readers' DuckDB catalog: views over the lake's Parquet partitions, no data of its own.

For every table of the DDL (``sql/duckdb/*.sql``: the ``CREATE TABLE`` statements are the tables' column
contracts) the view is a ``UNION ALL`` of one branch per *day* folder of the table in the lake (one per month for
days older than ``DAY_BRANCHES_DAYS`` before the newest), each reading that folder's hour files through a glob
and bounded by the day's window on the table's served column (``_served``). A query filtering on that column
(``WHERE ts >= '2024-08-09'``) is pruned to the branches it can reach before any of their files is opened: a
query's cost follows the days it touches, not the lake's history. Inside a branch DuckDB prunes row groups by
their statistics. Globs are expanded when a query binds, so an hour written into an existing day is visible at
once: the statements change, and a new catalog is published, only when a day (or month) folder appears, the DDL
changes or the lake's raw trees appear.

Each branch lists an empty Parquet file of the partitions' own schema first (an *anchor*, kept beside the
catalog), so a day whose files are gone reads as no rows rather than an error, and binding reads that small
file's schema instead of a data file's. Columns are cast to the DDL's types (times ``TIMESTAMPTZ``, compared in
UTC); DuckDB pushes time filters through those casts into the Parquet scan.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import os
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from mdplatform.lake import filesystem, is_local, join

from ._lakeviews import MINUTE_TREES, lake_view_sql
from ._served import SERVED

if TYPE_CHECKING:
    import duckdb  # imported where used: the catalog module loads without DuckDB

__all__ = [
    "DAY_BRANCHES_DAYS",
    "catalog_layout",
    "catalog_statements",
    "contract_columns",
    "described_columns",
    "split_ddl",
]

#: days before the newest day folder of a table that keep a branch each (from the start of that month); older days
#: share one per month
DAY_BRANCHES_DAYS = 62
_DAY_NS = 86_400 * 10**9
_DATE = re.compile(r"^date=(\d{4})-(\d{2})-(\d{2})$")
_CREATE_TABLE = re.compile(r"\bCREATE\s+TABLE\b", re.IGNORECASE)


def split_ddl(ddl: Sequence[str]) -> tuple[list[str], list[str]]:
    """(files defining tables: the column contracts, files defining views over them)."""
    tables = [text for text in ddl if _CREATE_TABLE.search(text)]
    return tables, [text for text in ddl if not _CREATE_TABLE.search(text)]


@functools.lru_cache(maxsize=8)
def _contract_columns(table_ddl: tuple[str, ...]) -> dict[str, tuple[tuple[str, str], ...]]:
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        for text in table_ddl:
            con.execute(text)
        out = described_columns(con)
    finally:
        con.close()
    return {table: tuple(columns) for table, columns in out.items()}


def described_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """relation -> [(column, DuckDB type)] of every table and view of ``con``'s main schema, in column order."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for relation, column, dtype in rows:
        out.setdefault(relation, []).append((column, dtype))
    return out


def contract_columns(table_ddl: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """table -> [(column, DuckDB type)] of the ``CREATE TABLE`` statements, in order (worked out once per process
    for the same DDL)."""
    return {table: list(columns) for table, columns in _contract_columns(tuple(table_ddl)).items()}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _instant(ns: int) -> str:
    g = time.gmtime(ns // 10**9)
    text = f"{g.tm_year:04d}-{g.tm_mon:02d}-{g.tm_mday:02d} {g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d}+00"
    return "TIMESTAMPTZ " + _literal(text)


def _day_ns(name: str) -> int | None:
    m = _DATE.match(name)
    if m is None:
        return None
    y, mo, d = (int(x) for x in m.groups())
    try:
        return calendar.timegm((y, mo, d, 0, 0, 0)) * 10**9
    except ValueError:
        return None


def _month_bounds(day_ns: int) -> tuple[int, int, str]:
    """(month start ns, next month start ns, ``YYYY-MM``) of the month holding ``day_ns``."""
    g = time.gmtime(day_ns // 10**9)
    start = calendar.timegm((g.tm_year, g.tm_mon, 1, 0, 0, 0))
    year, month = (g.tm_year + 1, 1) if g.tm_mon == 12 else (g.tm_year, g.tm_mon + 1)
    return start * 10**9, calendar.timegm((year, month, 1, 0, 0, 0)) * 10**9, f"{g.tm_year:04d}-{g.tm_mon:02d}"


def _branches(days: list[tuple[int, str]]) -> list[tuple[int, int, str]]:
    """(start ns, end ns, folder glob relative to the table) per branch: a day each from the month holding the day
    ``DAY_BRANCHES_DAYS`` before the newest, a whole month each before it (so no day is in two branches)."""
    if not days:
        return []
    cutoff = _month_bounds(max(d for d, _ in days) - DAY_BRANCHES_DAYS * _DAY_NS)[0]
    out: dict[str, tuple[int, int, str]] = {}
    for day, name in sorted(days):
        if day >= cutoff:
            out[name] = (day, day + _DAY_NS, name)
        else:
            start, end, month = _month_bounds(day)
            out[month] = (start, end, f"date={month}-*")
    return sorted(out.values())


def _partition_schema(fs: fsspec.AbstractFileSystem, table_dir: str, newest_day: str) -> pa.Schema | None:
    """The schema of one of the newest day's partition files (the anchor takes it), None if it has none."""
    day_dir = join(table_dir, newest_day)
    for hour in reversed(_names(fs, day_dir)):
        path = join(day_dir, hour, "data.parquet")
        if fs.exists(path):
            with fs.open(path, "rb") as fh:
                schema: pa.Schema = pq.read_schema(fh)
            return schema.remove_metadata()
    return None


def _anchor(anchor_dir: Path, table: str, schema: pa.Schema) -> str:
    """An empty Parquet file of ``schema`` (named by its hash, so a new schema gets a new anchor)."""
    digest = hashlib.sha256(schema.serialize().to_pybytes()).hexdigest()[:16]
    path = anchor_dir / f"{table}-{digest}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp")  # several threads or processes may race here
        pq.write_table(schema.empty_table(), tmp)
        tmp.replace(path)
    return str(path)


def _select(columns: list[tuple[str, str]], present: set[str]) -> str:
    return ", ".join(f"CAST({_quote(c) if c in present else 'NULL'} AS {t}) AS {_quote(c)}" for c, t in columns)


def _names(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    """The entries of a folder, by name; none if it does not exist."""
    if is_local(fs):
        try:
            return sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []
    try:
        return sorted(str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))
    except FileNotFoundError:
        return []


def catalog_layout(lake: str, tables: Sequence[str]) -> dict[str, list[str]]:
    """What the catalog's statements depend on in the lake: each table's day folders, and which raw trees exist
    (key ``""``). One listing per table: cheap enough to compare after every hour."""
    fs, lake_path = filesystem(lake)
    out = {table: [n for n in _names(fs, join(lake_path, table)) if _day_ns(n) is not None] for table in tables}
    out[""] = [n for n in _names(fs, lake_path) if n in MINUTE_TREES]
    return out


def _table_view(
    fs: fsspec.AbstractFileSystem,
    lake_path: str,
    url_prefix: str,
    table: str,
    columns: list[tuple[str, str]],
    day_names: list[str],
    anchor_dir: Path,
) -> str:
    table_dir = join(lake_path, table)
    days = [(day, name) for name in day_names if (day := _day_ns(name)) is not None]
    schema = _partition_schema(fs, table_dir, max(days)[1]) if days else None
    if schema is None:
        empty = ", ".join(f"CAST(NULL AS {t}) AS {_quote(c)}" for c, t in columns)
        return f"CREATE OR REPLACE VIEW {_quote(table)} AS SELECT {empty} LIMIT 0"
    anchor = _literal(_anchor(anchor_dir, table, schema))
    select = _select(columns, set(schema.names))
    served = SERVED.get(table)
    parts = []
    for start, end, folder in _branches(days):
        files = _literal(url_prefix + join(table_dir, folder, "hour=*", "data.parquet"))
        source = f"read_parquet([{anchor}, {files}], allow_empty = true, hive_partitioning = false)"
        branch = f"SELECT {select} FROM {source}"
        if served is not None:
            col = _quote(served.column)
            lo, hi = (">=", "<") if served.closed == "left" else (">", "<=")
            bounds = [f"{col} {lo} {_instant(start)}", f"{col} {hi} {_instant(end)}"]
            for other, before, after in served.implied:
                bounds += [
                    f"{_quote(other)} >= {_instant(start - before)}",
                    f"{_quote(other)} < {_instant(end + after)}",
                ]
            branch = f"SELECT * FROM ({branch}) WHERE {' AND '.join(bounds)}"
        parts.append(branch)
    return f"CREATE OR REPLACE VIEW {_quote(table)} AS " + "\nUNION ALL ".join(parts)


def catalog_statements(
    lake: str, ddl: Sequence[str], anchor_dir: Path, layout: dict[str, list[str]] | None = None
) -> list[str]:
    """Every statement of the catalog for ``lake`` (a local path or fsspec URL): the tables' views, the DDL's
    own views over them, and (local lakes) the views and macros over the raw trees. ``layout``: the lake's
    ``catalog_layout``, if just listed."""
    table_ddl, view_ddl = split_ddl(ddl)
    columns_of = contract_columns(table_ddl)
    layout = layout if layout is not None else catalog_layout(lake, sorted(columns_of))
    fs, lake_path = filesystem(lake)
    local = is_local(fs)
    protocol = "" if local else lake.split("://", 1)[0] + "://"
    out = [
        _table_view(fs, lake_path, protocol, table, columns, layout.get(table, []), anchor_dir)
        for table, columns in sorted(columns_of.items())
    ]
    out += view_ddl
    if local:
        out += lake_view_sql(Path(lake_path), anchor_dir)
    return out
