"""Loading a partition: delete its time window and binary-COPY its rows, in one transaction."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

import polars as pl
import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from mdplatform.warehouse import Window

from ._copy import PgColumn, encode, supported, write_rows
from ._dsn import PgError, database_error, resolve_dsn
from ._pool import pooled

__all__ = ["LoadResult", "replace_window", "replace_windows", "table_columns"]

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LoadResult(tuple[int, int]):
    """(rows deleted, rows inserted) of one window, as ``Warehouse.replace_window`` returns."""

    __slots__ = ()

    @property
    def deleted(self) -> int:
        return self[0]

    @property
    def inserted(self) -> int:
        return self[1]


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise PgError(f"not a plain lowercase SQL identifier: {name!r}")
    return name


def _timestamp(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def table_columns(conn: psycopg.Connection, table: str) -> dict[str, PgColumn]:
    """The table's columns as the catalog has them (type names and OIDs, element type for arrays)."""
    rows = conn.execute(
        "SELECT a.attname, t.typname, t.oid::int, e.typname, e.oid::int "
        "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        [_ident(table)],
    ).fetchall()
    if not rows:
        raise PgError(f"table {table} does not exist (run `mdp db migrate`)")
    return {r[0]: PgColumn(*r) for r in rows}


def _load(conn: psycopg.Connection, w: Window, fast: bool) -> LoadResult:
    table, column = _ident(w.table), _ident(w.column)
    catalog = table_columns(conn, table)
    unknown = [c for c in w.rows.columns if c not in catalog]
    if unknown or column not in catalog:
        raise PgError(f"{table} has no column(s) {', '.join(unknown or [column])}")
    lo, hi = (">=", "<") if w.closed == "left" else (">", "<=")
    delete = sql.SQL("DELETE FROM {t} WHERE {c} " + lo + " %s AND {c} " + hi + " %s").format(
        t=sql.Identifier(table), c=sql.Identifier(column)
    )
    deleted = conn.execute(delete, [_timestamp(w.start_ns), _timestamp(w.end_ns)]).rowcount
    if w.rows.height == 0:
        return LoadResult((deleted, 0))
    outside = w.rows.filter(_outside(column, w))
    if outside.height:
        raise PgError(f"{table}: {outside.height} row(s) have {column} outside the window being replaced")
    columns = [catalog[c] for c in w.rows.columns]
    copy_sql = sql.SQL("COPY {t} ({cols}) FROM STDIN (FORMAT BINARY)").format(
        t=sql.Identifier(table), cols=sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    )
    # the queued writer sends from its own thread: the server parses one batch while the next is encoded
    with conn.cursor() as cur, cur.copy(copy_sql, writer=QueuedLibpqWriter(cur)) as copy:
        if fast and supported(columns, w.rows.schema):
            for chunk in encode(w.rows, columns):
                copy.write(chunk)
        else:
            write_rows(copy, w.rows, columns)
    return LoadResult((deleted, w.rows.height))


def _outside(column: str, w: Window) -> pl.Expr:
    """Rows the window would not hold: loading them would make a re-run of the window leave them duplicated."""
    ns = pl.col(column).dt.epoch("ns")
    if w.closed == "left":
        return (ns < w.start_ns) | (ns >= w.end_ns)
    return (ns <= w.start_ns) | (ns > w.end_ns)


def replace_windows(windows: Sequence[Window], *, dsn: str | None = None, fast: bool = True) -> list[LoadResult]:
    """``replace_window`` for several tables in ONE transaction: readers see all of them replaced or none, and a
    failure anywhere (a constraint, a bad value mid-COPY, a lost connection) leaves every table as it was.
    ``fast=False`` dumps each value through psycopg (Python objects) instead of the column-wise encoder."""
    dsn = resolve_dsn(dsn)
    try:
        with pooled(dsn) as conn, conn.transaction():
            return [_load(conn, w, fast) for w in windows]
    except psycopg.Error as exc:
        raise database_error(dsn, f"loading {', '.join(w.table for w in windows)}", exc) from None


def replace_window(
    table: str,
    df: pl.DataFrame,
    ts_column: str,
    start_ns: int,
    end_ns: int,
    *,
    closed: Literal["left", "right"] = "left",
    dsn: str | None = None,
) -> LoadResult:
    """Replace the rows of ``table`` whose ``ts_column`` is in [start, end) (``closed="left"``) or (start, end]
    (``"right"``) by ``df``: DELETE of the window then binary COPY, in one transaction, so a re-run never
    duplicates and a failed load leaves the previous rows. ``df``'s columns are a subset of the table's, by name
    (the others take their defaults); every row must lie in the window. Returns (deleted, inserted)."""
    return replace_windows([Window(table, df, ts_column, start_ns, end_ns, closed)], dsn=dsn)[0]
