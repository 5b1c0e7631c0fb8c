"""Migrations: applied once each and recorded; a second run is a no-op; an edited applied file is refused."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from pgdata import fetch

from mdplatform.cli import cli
from mdplatform.pg import MigrationError, default_migrations_dir, migrate

FILES = sorted(p.name for p in default_migrations_dir().glob("*.sql"))
TABLES = {
    "trades", "candles", "coverage", "book_snapshots", "book_invalid", "consolidated_book", "book_heatmap",
    "trade_heatmap", "collector_status",
}  # fmt: skip


def test_the_package_ships_the_repo_sql() -> None:
    repo_sql = Path(__file__).resolve().parents[2] / "sql" / "postgres"
    assert sorted(p.name for p in repo_sql.glob("*.sql")) == FILES
    assert FILES[0] == "001_core.sql" and len(FILES) >= 4


def test_migrate_twice_applies_each_file_once(pg_dsn: str) -> None:
    first = migrate(pg_dsn)
    assert [m.name for m in first] == FILES
    recorded = fetch(pg_dsn, "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
    assert [(v, n) for v, n, _, _ in recorded] == [(int(f[:3]), f) for f in FILES]
    for (_, name, checksum, applied_at), m in zip(recorded, first, strict=True):
        assert checksum == hashlib.sha256((default_migrations_dir() / name).read_bytes()).hexdigest() == m.checksum
        assert applied_at == m.applied_at

    assert migrate(pg_dsn) == []
    assert (
        fetch(pg_dsn, "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version") == recorded
    )

    tables = {r[0] for r in fetch(pg_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == TABLES | {"schema_migrations", "mdp_time_tables"}
    # plain PostgreSQL here: every time table has its BRIN index on its window column
    brin = {r[0] for r in fetch(pg_dsn, "SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING brin%'")}
    windows = fetch(pg_dsn, "SELECT table_name, time_column FROM mdp_time_tables")
    assert {t for t, _ in windows} == TABLES
    assert brin == {f"{t}_{c}_brin" for t, c in windows}


def test_the_cli_says_up_to_date(pg_dsn: str) -> None:
    migrate(pg_dsn)
    result = CliRunner().invoke(cli, ["db", "migrate", "--dsn", pg_dsn])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(": up to date")
    assert len(fetch(pg_dsn, "SELECT * FROM schema_migrations")) == len(FILES)


def test_an_edited_applied_migration_is_refused_by_name(pg_dsn: str, tmp_path: Path) -> None:
    migrate(pg_dsn)
    edited = tmp_path / "sql"
    shutil.copytree(default_migrations_dir(), edited)
    (edited / "002_book.sql").write_text((edited / "002_book.sql").read_text() + "\n-- an afterthought\n")
    (edited / "099_later.sql").write_text("CREATE TABLE later (x INT);")
    with pytest.raises(MigrationError, match=r"002_book\.sql: already applied"):
        migrate(pg_dsn, edited)
    # refused before anything ran: the new file after it was not applied either
    assert fetch(pg_dsn, "SELECT to_regclass('later')") == [(None,)]
    assert len(fetch(pg_dsn, "SELECT * FROM schema_migrations")) == len(FILES)


def test_a_new_migration_is_applied_alone(pg_dsn: str, tmp_path: Path) -> None:
    migrate(pg_dsn)
    more = tmp_path / "sql"
    shutil.copytree(default_migrations_dir(), more)
    (more / "099_later.sql").write_text("CREATE TABLE later (x INT);")
    assert [m.name for m in migrate(pg_dsn, more)] == ["099_later.sql"]
    assert fetch(pg_dsn, "SELECT to_regclass('later')::text") == [("later",)]


def test_a_failing_migration_leaves_no_trace(pg_dsn: str, tmp_path: Path) -> None:
    migrate(pg_dsn)
    bad = tmp_path / "sql"
    shutil.copytree(default_migrations_dir(), bad)
    (bad / "098_half.sql").write_text("CREATE TABLE half (x INT); SELECT 1 / 0;")
    with pytest.raises(MigrationError, match=r"098_half\.sql.*division by zero"):
        migrate(pg_dsn, bad)
    assert fetch(pg_dsn, "SELECT to_regclass('half')") == [(None,)]
    assert fetch(pg_dsn, "SELECT count(*) FROM schema_migrations WHERE version = 98") == [(0,)]
