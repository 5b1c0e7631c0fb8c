"""The TimescaleDB statements mdplatform.pg emits when the extension is there (issue 17), checked two ways, as no
TimescaleDB can be installed here: the SQL-building functions' text, against the TimescaleDB documentation's
signatures; and the code run on a plain server dressed as TimescaleDB (fake_timescale.py: stubs with the documented
names, arguments and behaviour, recording each call)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from fake_timescale import add_chunk, install, ts_calls
from pgdata import H0, HOUR, fetch, trades_frame

from mdplatform.pg import (
    MigrationError,
    Window,
    default_migrations_dir,
    enforce_retention,
    migrate,
    plan_retention,
    replace_window,
    replace_windows,
    set_retention,
)
from mdplatform.pg._aggregates import refresh_sql, refreshes
from mdplatform.pg._retention import chunk_boundary_sql, count_sql, delete_sql

MINUTE = 60 * 10**9
T0 = datetime(2024, 8, 9, tzinfo=UTC)  # H0


def _window(table: str, start_ns: int, end_ns: int, closed: str = "left") -> Window:
    return Window(table, pl.DataFrame(), "ts", start_ns, end_ns, closed)  # type: ignore[arg-type]


def test_refreshes_cover_whole_buckets_of_the_book_windows_only() -> None:
    assert refreshes([_window("book_snapshots", H0, H0 + HOUR)]) == [
        ("book_metrics_1m", T0, T0 + timedelta(hours=1))
    ]  # fmt: skip
    # (start, end]: the instant `end` is in the bucket after it
    assert refreshes([_window("book_snapshots", H0, H0 + HOUR, "right")]) == [
        ("book_metrics_1m", T0, T0 + timedelta(hours=1, minutes=1))
    ]  # fmt: skip
    # a window off the minute is widened to the buckets holding its ends
    assert refreshes([_window("book_snapshots", H0 + 30 * 10**9, H0 + 2 * MINUTE + 1)]) == [
        ("book_metrics_1m", T0, T0 + timedelta(minutes=3))
    ]  # fmt: skip
    twice = [_window("book_snapshots", H0, H0 + HOUR)] * 2
    assert refreshes([*twice, _window("trades", H0, H0 + HOUR), _window("book_heatmap", H0, H0 + HOUR)]) == [
        ("book_metrics_1m", T0, T0 + timedelta(hours=1))
    ]  # fmt: skip


def test_statement_texts() -> None:
    # CALL refresh_continuous_aggregate(continuous_aggregate REGCLASS, window_start, window_end)
    assert refresh_sql("book_metrics_1m", T0, T0 + timedelta(hours=1)).as_string() == (
        "CALL refresh_continuous_aggregate('book_metrics_1m', '2024-08-09T00:00:00+00:00'::timestamptz, "
        "'2024-08-09T01:00:00+00:00'::timestamptz)"
    )
    # drop_chunks(relation REGCLASS, older_than => ...) returns the dropped chunks' names
    assert delete_sql("book_snapshots", "ts", hypertable=True).as_string() == (
        "SELECT count(*) FROM drop_chunks('book_snapshots'::regclass, older_than => %s::timestamptz)"
    )
    assert delete_sql("book_snapshots", "ts", hypertable=False).as_string() == (
        'DELETE FROM "book_snapshots" WHERE "ts" < %s'
    )
    assert count_sql("book_invalid", "start").as_string() == (
        'SELECT count(*), min("start"), max("start") FROM "book_invalid" WHERE "start" < %s'
    )
    boundary = chunk_boundary_sql("book_snapshots").as_string()
    assert "FROM timescaledb_information.chunks c" in boundary
    assert "IN (SELECT show_chunks('book_snapshots'::regclass, older_than => %s::timestamptz))" in boundary


def test_the_migrations_guard_their_timescaledb_statements() -> None:
    opt_in = (default_migrations_dir() / "005_retention_opt_in.sql").read_text()
    guarded = opt_in[opt_in.index("IF mdp_timescale() THEN") :]
    assert "PERFORM remove_retention_policy(t::regclass, if_exists => TRUE);" in guarded
    assert "add_retention_policy" not in opt_in
    segments = (default_migrations_dir() / "006_candles_segmentby.sql").read_text()
    guarded = segments[segments.index("IF mdp_timescale() THEN") :]
    alter = (
        "ALTER TABLE candles SET (timescaledb.compress, "
        "timescaledb.compress_segmentby = 'exchange, symbol, timeframe', "
        "timescaledb.compress_orderby = 'close_time DESC')"
    )
    assert alter in " ".join(guarded.split())
    assert "PERFORM decompress_chunk(c, if_compressed => TRUE) FROM show_chunks('candles') c;" in guarded


@pytest.fixture(scope="module")
def fake_ts(migrated: str) -> str:
    install(migrated)
    return migrated


def _book(start_ns: int, n: int) -> pl.DataFrame:
    ts = [start_ns + i * (HOUR // n) for i in range(n)]
    return pl.DataFrame(
        {"ts": ts, "exchange": ["binance"] * n, "symbol": ["BTC-USDT"] * n, "mid": [60_000.0 + i for i in range(n)]}
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))


def test_a_book_load_refreshes_the_aggregate_over_its_window_after_committing(fake_ts: str) -> None:
    fetch(fake_ts, "DELETE FROM ts_calls RETURNING 1")
    replace_window("trades", trades_frame(H0, 30), "ts", H0, H0 + HOUR, dsn=fake_ts)
    assert ts_calls(fake_ts) == []
    # the stub COMMITs: had the CALL run inside the load's transaction, the load would fail here
    assert replace_window("book_snapshots", _book(H0, 60), "ts", H0, H0 + HOUR, dsn=fake_ts) == (0, 60)
    assert ts_calls(fake_ts) == [
        ("refresh_continuous_aggregate", ["book_metrics_1m", "2024-08-09 00:00:00", "2024-08-09 01:00:00"])
    ]
    # the pooled connection is back to normal: a two-table load in one transaction, then its refresh
    windows = [
        Window("book_snapshots", _book(H0 + HOUR, 6), "ts", H0 + HOUR, H0 + 2 * HOUR),
        Window("trades", trades_frame(H0 + HOUR, 10), "ts", H0 + HOUR, H0 + 2 * HOUR),
    ]
    assert [tuple(r) for r in replace_windows(windows, dsn=fake_ts)] == [(0, 6), (0, 10)]
    assert ts_calls(fake_ts)[1:] == [
        ("refresh_continuous_aggregate", ["book_metrics_1m", "2024-08-09 01:00:00", "2024-08-09 02:00:00"])
    ]
    assert fetch(fake_ts, "SELECT count(*) FROM book_snapshots") == [(66,)]


def test_retention_drops_whole_chunks_older_than_the_cutoff(fake_ts: str) -> None:
    fetch(fake_ts, "DELETE FROM ts_calls RETURNING 1")
    fetch(fake_ts, "DELETE FROM book_snapshots RETURNING 1")
    now = fetch(fake_ts, "SELECT now()")[0][0]
    assert isinstance(now, datetime)
    day = timedelta(days=1)
    rows = [now - 40 * day, now - 35 * day, now - 31 * day, now - 29 * day]
    for t in rows:
        fetch(fake_ts, "INSERT INTO book_snapshots (ts, exchange, symbol) VALUES (%s, 'x', 'y') RETURNING 1", [t])
    add_chunk(fake_ts, "book_snapshots", "a", now - 41 * day, now - 34 * day)
    add_chunk(fake_ts, "book_snapshots", "b", now - 34 * day, now - 30 * day + timedelta(hours=1))
    add_chunk(fake_ts, "book_snapshots", "c", now - 30 * day + timedelta(hours=1), now + day)
    set_retention("book_snapshots", "30 days", dsn=fake_ts)
    try:
        plan = {p.table: p for p in plan_retention(dsn=fake_ts)}
        snap = plan["book_snapshots"]
        # chunk b ends after the cutoff: its row 31 days old stays, as drop_chunks keeps it
        assert (snap.rows, snap.first, snap.last, snap.chunks) == (2, rows[0], rows[1], 1)
        assert snap.cutoff is not None and now - 30 * day <= snap.cutoff < now - 29 * day
        assert all(p.keep is None and p.rows == 0 for t, p in plan.items() if t != "book_snapshots")
        assert ts_calls(fake_ts) == []  # the plan drops nothing

        done = {p.table: p for p in enforce_retention(dsn=fake_ts)}["book_snapshots"]
        assert (done.rows, done.first, done.last, done.chunks) == (2, rows[0], rows[1], 1)
        calls = ts_calls(fake_ts)
        assert [(c, a[0]) for c, a in calls] == [("drop_chunks", "book_snapshots")]
        dropped_at = datetime.fromisoformat(calls[0][1][1]).replace(tzinfo=UTC)
        assert now - 30 * day <= dropped_at < now - 29 * day
        assert [r[0] for r in fetch(fake_ts, "SELECT ts FROM book_snapshots ORDER BY ts")] == rows[2:]
    finally:
        set_retention("book_snapshots", None, dsn=fake_ts)


def test_the_upgrade_removes_the_retention_policies(fresh_dsn: str, tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    files = sorted(p.name for p in default_migrations_dir().glob("*.sql"))
    for name in files[:4]:
        shutil.copy(default_migrations_dir() / name, sql_dir / name)
    migrate(fresh_dsn, sql_dir)
    install(fresh_dsn)
    shutil.copy(default_migrations_dir() / "005_retention_opt_in.sql", sql_dir)
    assert [m.name for m in migrate(fresh_dsn, sql_dir)] == ["005_retention_opt_in.sql"]
    tables = sorted(str(r[0]) for r in fetch(fresh_dsn, "SELECT table_name FROM mdp_time_tables"))
    assert len(tables) == 9
    assert ts_calls(fresh_dsn) == [("remove_retention_policy", [t, "true"]) for t in tables]
    # 006 takes its TimescaleDB branch too, up to the ALTER TABLE only a real TimescaleDB accepts
    shutil.copy(default_migrations_dir() / "006_candles_segmentby.sql", sql_dir)
    only_timescaledb = r'006_candles_segmentby\.sql.*unrecognized parameter namespace "timescaledb"'
    with pytest.raises(MigrationError, match=only_timescaledb):
        migrate(fresh_dsn, sql_dir)
