"""Retention is opt-in (issue 17): after the migrations no table has one, and nothing deletes loaded history however
old; `mdp db retention` reports what it would delete (rows and time range older than the cutoff) and deletes
exactly those rows with --enforce. Plain PostgreSQL here (the TimescaleDB path: test_pg_timescale.py)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from pgdata import H0, HOUR, fetch, trades_frame

from mdplatform.cli import cli
from mdplatform.pg import default_migrations_dir, enforce_retention, migrate, plan_retention, replace_window
from mdplatform.pg import set_retention as set_keep

TABLES = [
    "book_heatmap", "book_invalid", "book_snapshots", "candles", "collector_status", "consolidated_book", "coverage",
    "trade_heatmap", "trades",
]  # fmt: skip


def _now(dsn: str) -> datetime:
    found = fetch(dsn, "SELECT now()")[0][0]
    assert isinstance(found, datetime)
    return found


def _snapshots(dsn: str, times: list[datetime]) -> None:
    fetch(dsn, "DELETE FROM book_snapshots RETURNING 1")
    for t in times:
        fetch(dsn, "INSERT INTO book_snapshots (ts, exchange, symbol) VALUES (%s, 'binance', 'BTC-USDT') RETURNING 1",
              [t])  # fmt: skip


def _times(dsn: str) -> list[object]:
    return [r[0] for r in fetch(dsn, "SELECT ts FROM book_snapshots ORDER BY ts")]


@pytest.fixture(scope="module")
def history(migrated: str) -> str:
    """Two hours of 2024 trades (over two years old) and 2024 book snapshots, loaded as a user loads history."""
    replace_window("trades", trades_frame(H0, 500), "ts", H0, H0 + HOUR, dsn=migrated)
    replace_window("trades", trades_frame(H0 + HOUR, 300, seed=1), "ts", H0 + HOUR, H0 + 2 * HOUR, dsn=migrated)
    return migrated


def test_no_retention_without_opt_in(history: str) -> None:
    old = datetime.fromisoformat("2024-08-09T00:00:00+00:00")
    _snapshots(history, [old, old + timedelta(minutes=1)])
    assert fetch(history, "SELECT table_name FROM mdp_time_tables WHERE drop_after IS NOT NULL") == []
    plans = plan_retention(dsn=history)
    assert [p.table for p in plans] == TABLES
    assert all((p.keep, p.cutoff, p.rows, p.first, p.chunks) == (None, None, 0, None, None) for p in plans)
    assert enforce_retention(dsn=history) == plans
    assert fetch(history, "SELECT count(*) FROM trades") == [(800,)]
    assert _times(history) == [old, old + timedelta(minutes=1)]

    result = CliRunner().invoke(cli, ["db", "retention", "--dsn", history])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "dry run, nothing deleted (--enforce deletes these rows):"
    assert lines[1].split() == ["table", "keep", "cutoff", "rows", "from", "to"]
    assert [line.split() for line in lines[2:]] == [[t, "forever", "-", "0", "-", "-"] for t in TABLES]


def test_dry_run_reports_and_enforce_deletes_exactly_those_rows(history: str) -> None:
    now = _now(history)
    old = datetime.fromisoformat("2024-08-09T00:00:00+00:00")
    kept = [now - timedelta(days=29), now - timedelta(hours=1)]
    _snapshots(history, [old, now - timedelta(days=40), now - timedelta(days=31), *kept])
    runner = CliRunner()
    try:
        result = runner.invoke(cli, ["db", "retention", "book_snapshots", "30 days", "--dsn", history])
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[:2] == ["book_snapshots: kept 30 days", "dry run, nothing deleted (--enforce deletes these rows):"]
        row = next(line.split() for line in lines if line.startswith("book_snapshots "))
        cutoff = datetime.fromisoformat(row[3])
        assert now - timedelta(days=30) <= cutoff < now - timedelta(days=29, hours=23)
        assert row[:3] + row[4:] == [
            "book_snapshots", "30", "days", "3", old.isoformat(), (now - timedelta(days=31)).isoformat()
        ]  # fmt: skip
        assert len(_times(history)) == 5  # a dry run deletes nothing

        plan = {p.table: p for p in plan_retention(dsn=history)}["book_snapshots"]
        assert (plan.keep, plan.rows, plan.first, plan.last, plan.chunks) == (
            "30 days", 3, old, now - timedelta(days=31), None
        )  # fmt: skip
        assert fetch(history, "SELECT count(*) FROM book_snapshots WHERE ts < %s", [plan.cutoff]) == [(3,)]

        result = runner.invoke(cli, ["db", "retention", "--enforce", "--dsn", history])
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0] == "deleted:"
        row = next(line.split() for line in lines if line.startswith("book_snapshots "))
        assert row[4:] == ["3", old.isoformat(), (now - timedelta(days=31)).isoformat()]
        assert _times(history) == kept
        # the other tables have no retention: the 2024 trades stay
        assert next(line.split() for line in lines if line.startswith("trades "))[1:] == ["forever", "-", "0", "-", "-"]
        assert fetch(history, "SELECT count(*) FROM trades") == [(800,)]
        assert {p.table: p.rows for p in enforce_retention(dsn=history)}["book_snapshots"] == 0
        assert _times(history) == kept
    finally:
        set_keep("book_snapshots", None, dsn=history)


def test_retention_usage_errors(history: str) -> None:
    result = CliRunner().invoke(cli, ["db", "retention", "book_snapshots", "--dsn", history])
    assert result.exit_code == 2 and "give the interval" in result.output
    result = CliRunner().invoke(cli, ["db", "retention", "nonesuch", "1 day", "--dsn", history])
    assert result.exit_code == 1 and "nonesuch is not a time table" in result.output


def test_the_upgrade_drops_the_default_retentions_and_keeps_a_chosen_one(fresh_dsn: str, tmp_path: Path) -> None:
    before = tmp_path / "sql"
    before.mkdir()
    for name in ("001_core.sql", "002_book.sql", "003_heatmaps.sql", "004_collector_status.sql"):
        shutil.copy(default_migrations_dir() / name, before / name)
    migrate(fresh_dsn, before)
    assert fetch(fresh_dsn, "SELECT table_name FROM mdp_time_tables WHERE drop_after IS NOT NULL ORDER BY 1") == [
        ("book_heatmap",), ("book_snapshots",), ("collector_status",), ("consolidated_book",)
    ]  # fmt: skip
    fetch(fresh_dsn, "SELECT mdp_set_retention('book_heatmap', '14 days')")  # a user's choice, before the upgrade
    applied = [m.name for m in migrate(fresh_dsn)]
    assert applied[:2] == ["005_retention_opt_in.sql", "006_candles_segmentby.sql"]
    chosen = "SELECT table_name, drop_after::text FROM mdp_time_tables WHERE drop_after IS NOT NULL"
    assert fetch(fresh_dsn, chosen) == [("book_heatmap", "14 days")]
    assert fetch(fresh_dsn, "SELECT to_regprocedure('mdp_enforce_retention()')") == [(None,)]
    assert fetch(fresh_dsn, "SELECT segment_by FROM mdp_time_tables WHERE table_name = 'candles'") == [
        ("exchange, symbol, timeframe",)
    ]
