"""Versioned migrations: ``NNN_name.sql`` files applied in order, each once, recorded in ``schema_migrations``."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

from ._dsn import PgError, database_error, resolve_dsn
from ._pool import connect

__all__ = ["Migration", "MigrationError", "applied_migrations", "default_migrations_dir", "migrate"]

_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
#: pg_advisory_lock key: concurrent `mdp db migrate` runs (several containers starting) apply each file once
_LOCK_KEY = 0x6D64705F6D6967  # "mdp_mig"

_RECORD_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INT         PRIMARY KEY,
    name       TEXT        NOT NULL,
    checksum   TEXT        NOT NULL,  -- sha256 of the file: an applied file edited later is refused
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


class MigrationError(PgError):
    """The migration files disagree with what the database recorded, or one failed."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    checksum: str
    applied_at: datetime | None = None


def default_migrations_dir() -> Path:
    """The PostgreSQL DDL shipped in the package (``mdplatform/_sql/postgres``: the repo's ``sql/postgres``
    through a symlink in a checkout, real files in a wheel)."""
    return Path(__file__).resolve().parents[1] / "_sql" / "postgres"


def _files(sql_dir: Path) -> list[tuple[Migration, str]]:
    found: dict[int, tuple[Migration, str]] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: a migration is named NNN_lowercase_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version:03d} is also {found[version][0].name}")
        text = path.read_text()
        found[version] = (Migration(version, path.name, hashlib.sha256(text.encode()).hexdigest()), text)
    if not found:
        raise MigrationError(f"no migrations in {sql_dir}")
    return [found[v] for v in sorted(found)]


def applied_migrations(conn: psycopg.Connection) -> list[Migration]:
    """What ``schema_migrations`` records, oldest first (empty before the first migrate)."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return []
    rows = conn.execute("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
    return [Migration(*row) for row in rows.fetchall()]


def migrate(dsn: str | None = None, sql_dir: Path | None = None) -> list[Migration]:
    """Apply the migrations not applied yet, each in its own transaction with its record; returns those applied
    now (empty: the database was up to date). A file whose content changed after it was applied, or renamed, is a
    ``MigrationError`` naming it, raised before anything runs."""
    dsn = resolve_dsn(dsn)
    files = _files(sql_dir or default_migrations_dir())
    done: list[Migration] = []
    with connect(dsn) as conn:
        conn.autocommit = True
        conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            conn.execute(_RECORD_TABLE)
            recorded = {m.version: m for m in applied_migrations(conn)}
            for migration, _ in files:
                old = recorded.get(migration.version)
                if old is not None and (old.checksum, old.name) != (migration.checksum, migration.name):
                    raise MigrationError(
                        f"{migration.name}: already applied as {old.name} with checksum {old.checksum[:12]}, now "
                        f"{migration.checksum[:12]}; an applied migration is never edited: add a new NNN_*.sql"
                    )
            for migration, text in files:
                if migration.version in recorded:
                    continue
                try:
                    with conn.transaction():
                        conn.execute(text)  # no parameters: the whole file goes as one simple query
                        row = conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s) "
                            "RETURNING applied_at",
                            [migration.version, migration.name, migration.checksum],
                        ).fetchone()
                except psycopg.Error as exc:
                    raise MigrationError(str(database_error(dsn, f"migration {migration.name}", exc))) from None
                assert row is not None
                done.append(Migration(migration.version, migration.name, migration.checksum, row[0]))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
    return done
