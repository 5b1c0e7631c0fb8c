"""TimescaleDB continuous aggregates brought up to date with the windows a load replaced.

``book_metrics_1m`` (sql/postgres/002_book.sql) is refreshed by a policy over the last 3 hours only: history loaded
from older recordings would never reach it. So after a load commits, each replaced window of its source table is
refreshed: ``CALL refresh_continuous_aggregate(view, lo, hi)``, with [lo, hi) the window widened to whole buckets
(only buckets wholly inside the refresh window are refreshed). The procedure refuses to run in a transaction block
(TimescaleDB docs, refresh_continuous_aggregate: "Errors"), hence after the load's transaction, in autocommit.
Plain PostgreSQL has a view of the same name computed when read: nothing to refresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from mdplatform.warehouse import Window

__all__ = ["AGGREGATES", "refresh_aggregates", "refresh_sql", "refreshes", "timescale"]

#: source table -> (continuous aggregate, its time_bucket width in ns)
AGGREGATES: dict[str, tuple[str, int]] = {"book_snapshots": ("book_metrics_1m", 60 * 10**9)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def refreshes(windows: Sequence[Window]) -> list[tuple[str, datetime, datetime]]:
    """(aggregate, lo, hi) for each window of a source table, once each: [lo, hi) the whole buckets holding the
    window's first and last possible instants ([start, end) or (start, end])."""
    found: list[tuple[str, datetime, datetime]] = []
    for w in windows:
        if w.table not in AGGREGATES or w.end_ns <= w.start_ns:
            continue
        view, bucket = AGGREGATES[w.table]
        first, last = (w.start_ns, w.end_ns - 1) if w.closed == "left" else (w.start_ns + 1, w.end_ns)
        lo, hi = first - first % bucket, last - last % bucket + bucket
        call = (view, _time(lo), _time(hi))
        if call not in found:
            found.append(call)
    return found


def refresh_sql(view: str, lo: datetime, hi: datetime) -> sql.Composed:
    """The statement, with its bounds as timestamptz literals (the procedure's window arguments are "any": they
    must come typed)."""
    return sql.SQL("CALL refresh_continuous_aggregate({v}, {lo}::timestamptz, {hi}::timestamptz)").format(
        v=sql.Literal(view), lo=sql.Literal(lo.isoformat()), hi=sql.Literal(hi.isoformat())
    )


def timescale(conn: psycopg.Connection) -> bool:
    """Whether the database was migrated with TimescaleDB (``mdp_timescale()``, the migrations' own test)."""
    row = conn.execute("SELECT mdp_timescale()").fetchone()
    return bool(row and row[0])


def refresh_aggregates(
    conn: psycopg.Connection, calls: Sequence[tuple[str, datetime, datetime]], *, lock_s: float, statement_s: float
) -> None:
    """Run the refreshes on ``conn``, idle (no transaction open), in autocommit, each wait bounded as the load's
    were; ``conn`` is left as it was (a pooled connection goes back to its pool)."""
    if not calls:
        return
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        conn.execute(f"SET lock_timeout = {round(lock_s * 1000)}")
        conn.execute(f"SET statement_timeout = {round(statement_s * 1000)}")
        for view, lo, hi in calls:
            conn.execute(refresh_sql(view, lo, hi))
    finally:
        if not conn.closed:
            conn.execute("RESET lock_timeout")
            conn.execute("RESET statement_timeout")
            conn.autocommit = autocommit
