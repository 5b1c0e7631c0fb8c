"""Loads that wait are bounded and serialised: the advisory lock keys of a window, the lock and statement
timeouts (one line naming the table, nothing replaced), a load cancelled from another thread, and two loads of the
same hour from two threads ending with each row once."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from pgdata import H0, HOUR, fetch, trades_frame

from mdplatform.pg import PgError, Timeouts, Window, cancel_loads, lock_keys, replace_window
from mdplatform.warehouse import hour_window


@pytest.fixture
def dsn(migrated: str) -> str:
    with psycopg.connect(migrated) as conn:
        conn.execute("TRUNCATE trades, candles")
    return migrated


def _waiting(dsn: str) -> int:
    rows = fetch(
        dsn,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'mdplatform' AND wait_event_type = 'Lock'",
    )
    return int(rows[0][0])  # type: ignore[call-overload]


def _until(check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_lock_keys_cover_each_hour_of_a_window_once() -> None:
    empty = trades_frame(H0, 0)
    hour = H0 // HOUR
    (trades,) = lock_keys([hour_window("trades", empty, H0)])
    assert trades[1] == hour
    # a candle hour (close_time in (H, H + 1h]) takes the same single key as a [H, H + 1h) window
    assert [k[1] for k in lock_keys([hour_window("candles", empty, H0)])] == [hour]
    two = lock_keys([Window("trades", empty, "ts", H0, H0 + 2 * HOUR), hour_window("trades", empty, H0)])
    assert two == [(trades[0], hour), (trades[0], hour + 1)]  # sorted, each once
    assert lock_keys([hour_window("coverage", empty, H0)])[0][0] != trades[0]


def test_timeouts_come_from_the_environment_and_must_be_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Timeouts.from_env() == Timeouts(30.0, 300.0)
    monkeypatch.setenv("MDP_PG_LOCK_TIMEOUT_S", "2.5")
    assert Timeouts.from_env().lock_s == 2.5
    for bad in ("0", "-1", "soon"):
        monkeypatch.setenv("MDP_PG_STATEMENT_TIMEOUT_S", bad)
        with pytest.raises(PgError, match="MDP_PG_STATEMENT_TIMEOUT_S"):
            Timeouts.from_env()


def test_a_lock_held_elsewhere_fails_the_load_naming_the_table(dsn: str) -> None:
    replace_window("trades", trades_frame(H0, 10), "ts", H0, H0 + HOUR, dsn=dsn)
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE trades IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(PgError) as caught:
            replace_window("trades", trades_frame(H0, 99), "ts", H0, H0 + HOUR, dsn=dsn, timeouts=Timeouts(0.5, 60))
    message = str(caught.value)
    assert "\n" not in message
    assert "waited 0.5 s for a lock on trades, held by another session; nothing was replaced" in message
    assert fetch(dsn, "SELECT count(*) FROM trades") == [(10,)]


def test_a_statement_over_its_bound_fails_the_load(dsn: str) -> None:
    with pytest.raises(PgError, match=r"loading trades into .*: a statement ran over 0.001 s"):
        replace_window("trades", trades_frame(H0, 50_000), "ts", H0, H0 + HOUR, dsn=dsn, timeouts=Timeouts(5, 0.001))
    assert fetch(dsn, "SELECT count(*) FROM trades") == [(0,)]


def test_a_waiting_load_is_cancelled_from_another_thread(dsn: str) -> None:
    errors: list[str] = []

    def load() -> None:
        try:
            replace_window("trades", trades_frame(H0, 10), "ts", H0, H0 + HOUR, dsn=dsn, timeouts=Timeouts(600, 600))
        except PgError as exc:
            errors.append(str(exc))

    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE trades IN ACCESS EXCLUSIVE MODE")
        worker = threading.Thread(target=load)
        worker.start()
        _until(lambda: _waiting(dsn) == 1)
        assert cancel_loads(3600) == 0  # none has run that long
        assert cancel_loads(0) == 1
        worker.join(30)
        assert not worker.is_alive()
        assert holder.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS  # ended with the lock held
    assert len(errors) == 1 and "cancelled: the process is stopping; nothing was replaced" in errors[0]
    assert fetch(dsn, "SELECT count(*) FROM trades") == [(0,)]


def test_two_threads_loading_one_hour_leave_each_row_once(dsn: str) -> None:
    frame = trades_frame(H0, 20_000)
    results: list[tuple[int, int]] = []
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE trades IN ACCESS EXCLUSIVE MODE")
        threads = [
            threading.Thread(
                target=lambda: results.append(tuple(replace_window("trades", frame, "ts", H0, H0 + HOUR, dsn=dsn)))
            )
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        _until(lambda: _waiting(dsn) == 2)
    for t in threads:
        t.join(60)
    assert sorted(results) == [(0, 20_000), (20_000, 20_000)]
    assert fetch(dsn, "SELECT count(*), count(DISTINCT trade_id) FROM trades") == [(20_000, 20_000)]
