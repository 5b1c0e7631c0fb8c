"""Retention per time table, opt-in: ``mdp_set_retention`` records how long a table keeps its rows
(``mdp_time_tables.drop_after``, NULL: forever, the default); ``plan_retention`` says what applying it would delete and
``enforce_retention`` deletes that. Nothing runs in the background (sql/postgres/005_retention_opt_in.sql): a
retention acts on the data's time, not the load's, so history loaded from old recordings is only ever deleted by
someone who asked for it, having been told what goes.

Plain tables lose their rows older than the cutoff (``now() - drop_after``) by DELETE. A hypertable loses whole chunks
(``drop_chunks(older_than => cutoff)``): the rows before the end of the last chunk wholly older than the cutoff, so
the plan counts the rows before that boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import psycopg
from psycopg import sql

from ._dsn import database_error, resolve_dsn
from ._pool import connect

__all__ = [
    "Retention",
    "chunk_boundary_sql",
    "count_sql",
    "delete_sql",
    "enforce_retention",
    "plan_retention",
    "set_retention",
]


@dataclass(frozen=True, slots=True)
class Retention:
    """One time table's retention and the rows it deletes: from ``plan_retention``, the rows it would delete now;
    from ``enforce_retention``, those it deleted. ``keep`` None: kept forever (nothing deleted, ``cutoff`` None).
    ``cutoff``: ``now() - keep``; a plain table loses its rows with ``time_column < cutoff``, a hypertable its
    chunks wholly older than it (``chunks`` of them; None for a plain table), so maybe fewer rows. ``rows``,
    ``first``, ``last``: how many rows go and their time range."""

    table: str
    time_column: str
    keep: str | None
    cutoff: datetime | None
    rows: int
    first: datetime | None
    last: datetime | None
    chunks: int | None


def set_retention(table: str, keep: str | None, *, dsn: str | None = None) -> None:
    """Keep ``table``'s rows for ``keep`` (a PostgreSQL interval, e.g. ``"30 days"``; None: forever). Only recorded:
    ``enforce_retention`` applies it."""
    dsn = resolve_dsn(dsn)
    try:
        with connect(dsn) as conn:
            conn.execute("SELECT mdp_set_retention(%s, %s::interval)", [table, keep])
    except psycopg.Error as exc:
        raise database_error(dsn, f"setting the retention of {table}", exc) from None


def count_sql(table: str, column: str) -> sql.Composed:
    """The rows a cutoff (the one parameter) deletes: count, first and last time."""
    return sql.SQL("SELECT count(*), min({c}), max({c}) FROM {t} WHERE {c} < %s").format(
        t=sql.Identifier(table), c=sql.Identifier(column)
    )


def delete_sql(table: str, column: str, *, hypertable: bool) -> sql.Composed:
    """What deletes them: a DELETE on a plain table; ``drop_chunks`` on a hypertable, whose chunks wholly older than
    the cutoff go (it returns their names: the statement counts them)."""
    if hypertable:
        return sql.SQL("SELECT count(*) FROM drop_chunks({t}::regclass, older_than => %s::timestamptz)").format(
            t=sql.Literal(table)
        )
    return sql.SQL("DELETE FROM {t} WHERE {c} < %s").format(t=sql.Identifier(table), c=sql.Identifier(column))


def chunk_boundary_sql(table: str) -> sql.Composed:
    """A hypertable's chunks ``drop_chunks(older_than => cutoff)`` would drop (``show_chunks`` takes the same
    arguments), and the end of the last one: every row before it is in those chunks, none after."""
    return sql.SQL(
        "SELECT count(*), max(c.range_end) FROM timescaledb_information.chunks c "
        "WHERE (quote_ident(c.chunk_schema) || '.' || quote_ident(c.chunk_name))::regclass "
        "IN (SELECT show_chunks({t}::regclass, older_than => %s::timestamptz))"
    ).format(t=sql.Literal(table))


def _hypertables(conn: psycopg.Connection) -> set[str]:
    row = conn.execute("SELECT mdp_timescale()").fetchone()
    if not row or not row[0]:
        return set()
    rows = conn.execute(
        "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE hypertable_schema = current_schema()"
    ).fetchall()
    return {r[0] for r in rows}


def _plan(conn: psycopg.Connection, hyper: set[str]) -> list[Retention]:
    tables = conn.execute(
        "SELECT table_name, time_column, drop_after::text, now() - drop_after FROM mdp_time_tables ORDER BY 1"
    ).fetchall()
    plans: list[Retention] = []
    for table, column, keep, cutoff in tables:
        if cutoff is None:
            plans.append(Retention(table, column, keep, None, 0, None, None, None))
            continue
        chunks: int | None = None
        before = cutoff
        if table in hyper:
            found = conn.execute(chunk_boundary_sql(table), [cutoff]).fetchone()
            assert found is not None
            chunks, before = found
            if not chunks:  # no chunk wholly older than the cutoff: nothing goes
                plans.append(Retention(table, column, keep, cutoff, 0, None, None, 0))
                continue
        counted = conn.execute(count_sql(table, column), [before]).fetchone()
        assert counted is not None
        plans.append(Retention(table, column, keep, cutoff, counted[0], counted[1], counted[2], chunks))
    return plans


def plan_retention(*, dsn: str | None = None) -> list[Retention]:
    """Per time table (by name), what ``enforce_retention`` would delete now; deletes nothing."""
    dsn = resolve_dsn(dsn)
    try:
        with connect(dsn) as conn:
            return _plan(conn, _hypertables(conn))
    except psycopg.Error as exc:
        raise database_error(dsn, "reading what retention would delete", exc) from None


def enforce_retention(*, dsn: str | None = None) -> list[Retention]:
    """Delete, per time table with a retention, the rows ``plan_retention`` reports (the plan is made in the same
    transaction, then each table's rows before its cutoff go); returns the plan with the rows deleted (or, for a
    hypertable, the rows its dropped chunks held) and the chunks dropped."""
    dsn = resolve_dsn(dsn)
    try:
        with connect(dsn) as conn, conn.transaction():
            hyper = _hypertables(conn)
            done: list[Retention] = []
            for plan in _plan(conn, hyper):
                if plan.cutoff is None:
                    done.append(plan)
                    continue
                hypertable = plan.table in hyper
                cur = conn.execute(delete_sql(plan.table, plan.time_column, hypertable=hypertable), [plan.cutoff])
                if hypertable:
                    dropped = cur.fetchone()
                    done.append(replace(plan, chunks=dropped[0] if dropped else 0))
                else:
                    done.append(replace(plan, rows=cur.rowcount))
            return done
    except psycopg.Error as exc:
        raise database_error(dsn, "enforcing retention", exc) from None
