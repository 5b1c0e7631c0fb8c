"""Loading a partition: delete its time window and binary-COPY its rows, in one transaction.

Exactly once whoever loads: the transaction first takes a transaction-scoped advisory lock per (table, hour) of
every window it replaces, so two loaders of the same hour (two hosts, a CLI run beside ``dagster dev``) run one
after the other; without it the second DELETE would not see the first one's uncommitted rows and both COPYs would
stay. Every wait is bounded: ``lock_timeout`` and ``statement_timeout`` are set for the transaction (``Timeouts``),
and a load still running when the process stops can be cancelled from another thread (``cancel_loads``).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import polars as pl
import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from mdplatform.warehouse import Window

from ._aggregates import AGGREGATES, refresh_aggregates, refreshes, timescale
from ._copy import PgColumn, encode, supported, write_rows
from ._dsn import PgError, database_error, redact_dsn, resolve_dsn, scrub
from ._pool import pooled

__all__ = ["LoadResult", "Timeouts", "cancel_loads", "lock_keys", "replace_window", "replace_windows", "table_columns"]

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR_NS = 3_600 * 10**9
LOCK_TIMEOUT_S = 30.0
STATEMENT_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long a load may wait for a lock (another loader of the same hour, a ``LOCK TABLE``, a long transaction)
    and how long one statement may run, in seconds. ``from_env``: ``MDP_PG_LOCK_TIMEOUT_S`` (default 30) and
    ``MDP_PG_STATEMENT_TIMEOUT_S`` (default 300: an hour's COPY takes seconds)."""

    lock_s: float = LOCK_TIMEOUT_S
    statement_s: float = STATEMENT_TIMEOUT_S

    @classmethod
    def from_env(cls) -> Timeouts:
        def seconds(name: str, default: float) -> float:
            text = os.environ.get(name)
            try:
                value = float(text) if text else default
            except ValueError:
                raise PgError(f"{name}={text!r} is not a number of seconds") from None
            if value <= 0:
                raise PgError(f"{name}={text!r}: a load's wait must have a bound (> 0 s)")
            return value

        return cls(
            seconds("MDP_PG_LOCK_TIMEOUT_S", LOCK_TIMEOUT_S), seconds("MDP_PG_STATEMENT_TIMEOUT_S", STATEMENT_TIMEOUT_S)
        )


#: the connections loading now (id -> connection, when its load began, monotonic): ``cancel_loads`` reaches them
_ACTIVE: dict[int, tuple[psycopg.Connection, float]] = {}
_ACTIVE_LOCK = threading.Lock()


@contextmanager
def _active(conn: psycopg.Connection) -> Iterator[None]:
    with _ACTIVE_LOCK:
        _ACTIVE[id(conn)] = (conn, time.monotonic())
    try:
        yield
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.pop(id(conn), None)


def cancel_loads(running_for_s: float = 0.0) -> int:
    """Cancel the loads of this process that have run at least ``running_for_s`` (from another thread: a process
    told to stop does not wait out a lock); each fails with a ``PgError`` saying so and leaves its tables as they
    were. Returns how many were cancelled."""
    now = time.monotonic()
    with _ACTIVE_LOCK:
        conns = [conn for conn, began in _ACTIVE.values() if now - began >= running_for_s]
    for conn in conns:
        with contextlib.suppress(psycopg.Error):  # finished or lost meanwhile: nothing left to cancel
            conn.cancel_safe(timeout=1.0)
    return len(conns)


def _table_key(table: str) -> int:
    return int.from_bytes(zlib.crc32(table.encode()).to_bytes(4, "big"), "big", signed=True)


def lock_keys(windows: Sequence[Window]) -> list[tuple[int, int]]:
    """The advisory lock keys of the windows, sorted (every loader takes them in the same order: no deadlock):
    (crc32 of the table name as a signed int4, hour index since the epoch) for each hour of [start, end). Two
    windows (s1, e1] and (s2, e2] overlap exactly when [s1, e1) and [s2, e2) do, so a "right" window takes the
    same keys as a "left" one over the same bounds (a table's windows are all of one side)."""
    keys: set[tuple[int, int]] = set()
    for w in windows:
        table = _table_key(w.table)
        keys.update((table, hour) for hour in range(w.start_ns // _HOUR_NS, (w.end_ns - 1) // _HOUR_NS + 1))
    return sorted(keys)


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


def _load(conn: psycopg.Connection, w: Window, fast: bool, doing: list[str]) -> LoadResult:
    table, column = _ident(w.table), _ident(w.column)
    doing[:] = [table]
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


def replace_windows(
    windows: Sequence[Window], *, dsn: str | None = None, fast: bool = True, timeouts: Timeouts | None = None
) -> list[LoadResult]:
    """``replace_window`` for several tables in ONE transaction: readers see all of them replaced or none, and a
    failure anywhere (a constraint, a bad value mid-COPY, a lost connection, a timeout) leaves every table as it
    was. Concurrent loads of the same (table, hour) run one after the other (advisory locks); a wait over
    ``timeouts`` (default ``Timeouts.from_env()``) is a ``PgError`` naming the table.
    ``fast=False`` dumps each value through psycopg (Python objects) instead of the column-wise encoder.
    With TimescaleDB, the continuous aggregates over a loaded table (``book_metrics_1m``) are then refreshed over
    its windows, after the commit (``_aggregates``)."""
    dsn = resolve_dsn(dsn)
    limits = timeouts or Timeouts.from_env()
    doing = [", ".join(w.table for w in windows)]  # the table being worked on, for the error
    try:
        with pooled(dsn) as conn, _active(conn):
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = {round(limits.lock_s * 1000)}")
                conn.execute(f"SET LOCAL statement_timeout = {round(limits.statement_s * 1000)}")
                names = {_table_key(w.table): w.table for w in windows}
                for key in lock_keys(windows):
                    doing[:] = [f"{names[key[0]]} (the same hour being loaded by another process)"]
                    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", key)
                results = [_load(conn, w, fast, doing) for w in windows]
                sources = any(w.table in AGGREGATES for w in windows)
                calls = refreshes(windows) if sources and timescale(conn) else []
            _refresh(conn, calls, dsn, limits)
            return results
    except psycopg.errors.LockNotAvailable:
        raise PgError(
            f"loading into {redact_dsn(dsn)}: waited {limits.lock_s:g} s for a lock on {doing[0]}, held by another "
            "session; nothing was replaced (MDP_PG_LOCK_TIMEOUT_S sets the wait)"
        ) from None
    except psycopg.errors.QueryCanceled as exc:
        why = (
            f"a statement ran over {limits.statement_s:g} s (MDP_PG_STATEMENT_TIMEOUT_S)"
            if "statement timeout" in str(exc)
            else "cancelled: the process is stopping"
        )
        raise PgError(f"loading {doing[0]} into {redact_dsn(dsn)}: {why}; nothing was replaced") from None
    except psycopg.Error as exc:
        raise database_error(dsn, f"loading {', '.join(w.table for w in windows)}", exc) from None


def _refresh(conn: psycopg.Connection, calls: list[tuple[str, datetime, datetime]], dsn: str, limits: Timeouts) -> None:
    """The continuous aggregates over the windows just committed (TimescaleDB only: ``calls`` is empty otherwise).
    A failure fails the load, though its rows stay: a re-run replaces them alike and refreshes again."""
    try:
        refresh_aggregates(conn, calls, lock_s=limits.lock_s, statement_s=limits.statement_s)
    except psycopg.Error as exc:
        views = ", ".join(sorted({view for view, _, _ in calls}))
        raise PgError(
            f"loaded, but refreshing {views} over the loaded window(s) ({redact_dsn(dsn)}) failed: "
            f"{scrub(str(exc), dsn)}; a re-run of the load refreshes it again"
        ) from None


def replace_window(
    table: str,
    df: pl.DataFrame,
    ts_column: str,
    start_ns: int,
    end_ns: int,
    *,
    closed: Literal["left", "right"] = "left",
    dsn: str | None = None,
    timeouts: Timeouts | None = None,
) -> LoadResult:
    """Replace the rows of ``table`` whose ``ts_column`` is in [start, end) (``closed="left"``) or (start, end]
    (``"right"``) by ``df``: DELETE of the window then binary COPY, in one transaction, so a re-run never
    duplicates and a failed load leaves the previous rows. ``df``'s columns are a subset of the table's, by name
    (the others take their defaults); every row must lie in the window. Returns (deleted, inserted)."""
    return replace_windows([Window(table, df, ts_column, start_ns, end_ns, closed)], dsn=dsn, timeouts=timeouts)[0]
