"""What a database holds: server, TimescaleDB or not, migrations, and per table rows, size and time range."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from ._dsn import database_error, redact_dsn, resolve_dsn
from ._migrate import Migration, applied_migrations
from ._pool import connect

__all__ = ["DatabaseInfo", "TableInfo", "info"]


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    time_column: str
    rows: int
    bytes: int
    first: datetime | None
    last: datetime | None
    hypertable: bool
    retention: str | None  # e.g. "30 days"; None: kept forever


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    dsn: str  # redacted: no password
    server_version: str
    timescaledb: str | None  # the extension's version, None when absent
    migrations: list[Migration] = field(default_factory=list)
    tables: list[TableInfo] = field(default_factory=list)


def info(dsn: str | None = None) -> DatabaseInfo:
    """Counts are exact (``count(*)``), the time range comes from the time column's index."""
    dsn = resolve_dsn(dsn)
    try:
        with connect(dsn) as conn:
            return _info(conn, dsn)
    except psycopg.Error as exc:
        raise database_error(dsn, "reading the database's contents", exc) from None


def _info(conn: psycopg.Connection, dsn: str) -> DatabaseInfo:
    version = conn.execute("SHOW server_version").fetchone()
    ts_row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    timescaledb = ts_row[0] if ts_row else None
    tables: list[TableInfo] = []
    registry = conn.execute("SELECT to_regclass('mdp_time_tables') IS NOT NULL").fetchone()
    if registry and registry[0]:
        rows = conn.execute(
            "SELECT table_name, time_column, drop_after::text FROM mdp_time_tables ORDER BY table_name"
        ).fetchall()
        for name, column, retention in rows:
            stats = conn.execute(
                sql.SQL("SELECT count(*), min({c}), max({c}) FROM {t}").format(
                    c=sql.Identifier(column), t=sql.Identifier(name)
                )
            ).fetchone()
            assert stats is not None
            # a hypertable's rows live in its chunks: hypertable_size counts them, pg_total_relation_size would not
            size_sql = "SELECT hypertable_size(%s::regclass)" if timescaledb else "SELECT pg_total_relation_size(%s)"
            size = conn.execute(size_sql, [name]).fetchone()
            hyper = False
            if timescaledb:
                found = conn.execute(
                    "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = %s", [name]
                ).fetchone()
                hyper = found is not None
            tables.append(
                TableInfo(
                    name, column, stats[0], int(size[0] or 0) if size else 0, stats[1], stats[2], hyper, retention
                )
            )
    return DatabaseInfo(
        dsn=redact_dsn(dsn),
        server_version=version[0] if version else "?",
        timescaledb=timescaledb,
        migrations=applied_migrations(conn),
        tables=tables,
    )
