"""Retention per time table: ``mdp_set_retention`` / ``mdp_enforce_retention`` of sql/postgres/001_core.sql."""

from __future__ import annotations

import psycopg

from ._dsn import database_error, resolve_dsn
from ._pool import connect

__all__ = ["enforce_retention", "set_retention"]


def set_retention(table: str, keep: str | None, *, dsn: str | None = None) -> None:
    """Keep ``table``'s rows for ``keep`` (a PostgreSQL interval, e.g. ``"30 days"``; None: forever). With
    TimescaleDB this replaces the table's retention policy; without it ``enforce_retention`` applies it."""
    dsn = resolve_dsn(dsn)
    try:
        with connect(dsn) as conn:
            conn.execute("SELECT mdp_set_retention(%s, %s::interval)", [table, keep])
    except psycopg.Error as exc:
        raise database_error(dsn, f"setting the retention of {table}", exc) from None


def enforce_retention(*, dsn: str | None = None) -> dict[str, int]:
    """Plain PostgreSQL: delete the rows older than each table's retention; table -> rows deleted. With
    TimescaleDB the background policies do it and this returns ``{}``."""
    dsn = resolve_dsn(dsn)
    try:
        with connect(dsn) as conn:
            return {name: n for name, n in conn.execute("SELECT * FROM mdp_enforce_retention()").fetchall()}
    except psycopg.Error as exc:
        raise database_error(dsn, "enforcing retention", exc) from None
