"""PostgreSQL under the pipeline's faults, with the real `mdp` in processes of its own and the bundled Binance spot
recording (19,904 trades over two hours): two loaders of the same hours (two Dagster instances), a lock held on a
table, a stop signal while waiting for it, and a database dropped and recreated then reloaded from the lake."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import psycopg
import pytest
from _pipeline import MDP, RECORDING, drop_db, fresh_db, mdp, one_line, record, recording_trade_ids, wait_for

from mdplatform.capture import import_capture
from mdplatform.warehouse import SERVED, partition_exists

H23 = 1723158000 * 10**9  # 2024-08-08 23:00 UTC, the recording's first hour
HOUR = 3_600 * 10**9
#: a row's identity per table: PostgreSQL holding more rows than distinct keys holds duplicates
KEYS = {
    "trades": "exchange, symbol, trade_id",
    "coverage": "exchange, symbol, channel, start_time",
    "candles": "exchange, symbol, timeframe, close_time",
    "book_snapshots": "exchange, symbol, ts",
    "book_invalid": 'exchange, symbol, "start"',
    "book_heatmap": "exchange, symbol, step, ts, side, price",
    "trade_heatmap": "exchange, symbol, minute, price_bucket",
    "consolidated_book": "base, ts",
}


@pytest.fixture(scope="module")
def raw_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recording imported once; tests work on copies."""
    root = tmp_path_factory.mktemp("pipeline_pg") / "lake"
    import_capture(RECORDING, "binance", str(root))
    return root


def _lake(raw_lake: Path, tmp_path: Path) -> str:
    copy = tmp_path / "lake"
    shutil.copytree(raw_lake, copy)
    return str(copy)


def _env(tmp_path: Path, name: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MDP_PG_", "DAGSTER_HOME"))}
    home = tmp_path / name
    home.mkdir(exist_ok=True)
    env.update(DAGSTER_HOME=str(home), DAGSTER_DISABLE_TELEMETRY="1", MDP_BOOKS="1", MDP_PICTURES="0", **extra)
    return env


def _lake_rows(lake: str, table: str) -> int:
    files = list(Path(lake, table).glob("**/data.parquet"))
    return sum(pl.read_parquet(f).height for f in files)


def _pg_rows(dsn: str, table: str) -> tuple[int, int]:
    """(rows, distinct keys) of ``table``."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*), count(DISTINCT ({KEYS[table]})) FROM {table}").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _waiting_loads(dsn: str) -> int:
    """Sessions of mdplatform in the database waiting for a lock (a table's or an advisory one)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'mdplatform' AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture(scope="module")
def two_instances(raw_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, list[int]]]:
    """Two `mdp materialize` of the same hours at once, each with its own Dagster instance, into one database."""
    tmp = tmp_path_factory.mktemp("two_instances")
    lake, name = _lake(raw_lake, tmp), "mdp_fault_two_loaders"
    dsn = fresh_db(name)
    base = _env(tmp, "unused", MDP_PG_DSN=dsn)
    assert mdp(["db", "migrate"], base).returncode == 0
    procs = [
        subprocess.Popen(
            [*MDP, "materialize", "--lake", lake, "--no-progress"],
            env={**base, **_env(tmp, f"home{i}", MDP_PG_DSN=dsn)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (1, 2)
    ]
    for p in procs:
        p.communicate(timeout=900)
    yield lake, dsn, [p.returncode for p in procs]
    drop_db(name)


def test_two_instances_load_each_row_once(two_instances: tuple[str, str, list[int]]) -> None:
    lake, dsn, codes = two_instances
    assert codes == [0, 0]
    found = {table: _pg_rows(dsn, table) for table in KEYS}
    expected = {table: _lake_rows(lake, table) for table in KEYS}
    assert expected["trades"] == recording_trade_ids() == 19_904
    assert expected["book_snapshots"] > 0 and expected["book_heatmap"] > 0
    for table in KEYS:
        rows, distinct = found[table]
        assert rows == distinct == expected[table], table
    books = sum(found[t][0] for t in KEYS if t.startswith("book") or t == "consolidated_book")
    record(
        "two `mdp materialize` of the same hours at once, two Dagster instances, one PostgreSQL",
        expected=expected["trades"],
        found=found["trades"][0],
        duplicated=found["trades"][0] - found["trades"][1],
        exit="0 and 0",
        note=f"trades shown; the {books:,} rows of the four book tables and candles/coverage also equal the "
        "lake's, each once (per-(table, hour) advisory lock around delete-then-COPY)",
    )


def test_database_dropped_and_recreated_reloads_from_the_lake(two_instances: tuple[str, str, list[int]]) -> None:
    lake, dsn, _ = two_instances
    fresh_db("mdp_fault_two_loaders")  # dropped and recreated: empty, no tables
    env = _env(Path(lake).parent, "home")
    reload = ["db", "reload", "--from", "2024-08-08", "--to", "2024-08-09", "--lake", lake]
    refused = mdp(reload, env)
    assert refused.returncode == 2 and "no PostgreSQL DSN" in refused.stderr  # not an exit 0 over nothing done
    result = mdp([*reload, "--dsn", dsn], env)
    assert result.returncode == 0, result.stderr
    assert "48 hour(s) reloaded" in result.stdout
    for table in KEYS:
        rows, distinct = _pg_rows(dsn, table)
        assert rows == distinct == _lake_rows(lake, table), table
    # again over the recording's hours: the same rows, replaced (not added)
    again = mdp(
        ["db", "reload", "--dsn", dsn, "--from", "2024-08-08T23:00", "--to", "2024-08-09T01:00", "--lake", lake], env
    )
    assert again.returncode == 0, again.stderr
    trades = _pg_rows(dsn, "trades")
    assert trades == (19_904, 19_904)
    assert one_line(again.stdout, r"^  trades:").strip() == "trades: 19,904 rows loaded, 19,904 replaced"
    record(
        "PostgreSQL database dropped and recreated, then `mdp db reload`",
        expected=19_904,
        found=trades[0],
        duplicated=trades[0] - trades[1],
        exit="0 (reload), 0 (again)",
        note="every served table equals the lake's partitions; a second reload replaces the same rows; "
        f"{', '.join(t for t in SERVED if t not in KEYS) or 'no'} table(s) without a PostgreSQL table skipped",
    )


_LOADER = """
import sys
import polars as pl
from mdplatform.pg import Timeouts, replace_window
n, hour = 50_000, 1723158000 * 10**9
ts = pl.Series([hour + i * 10**6 for i in range(n)]).cast(pl.Datetime("ns", "UTC"))
rows = pl.DataFrame({
    "exchange": ["binance"] * n, "symbol": ["BTC-USDT"] * n, "ts": ts, "recv_ts": ts,
    "trade_id": [str(i) for i in range(n)], "price": pl.Series(["61000.5"] * n).cast(pl.Decimal(38, 12)),
    "size": pl.Series(["0.001"] * n).cast(pl.Decimal(38, 12)), "side": ["buy"] * n, "fills": [1] * n,
})
print(*replace_window("trades", rows, "ts", hour, hour + 3_600 * 10**9, dsn=sys.argv[1], timeouts=Timeouts(600, 600)))
"""


def test_two_loaders_released_at_once_load_the_hour_once(tmp_path: Path) -> None:
    """Two processes replacing the same hour, both held at the door by a table lock and let in together: without
    the advisory lock both DELETEs ran before either COPY committed and the hour held every row twice."""
    name = "mdp_fault_released_together"
    dsn = fresh_db(name)
    env = _env(tmp_path, "home")
    assert mdp(["db", "migrate", "--dsn", dsn], env).returncode == 0
    try:
        with psycopg.connect(dsn) as holder:
            holder.execute("LOCK TABLE trades IN ACCESS EXCLUSIVE MODE")
            procs = [
                subprocess.Popen(
                    [MDP[0], "-c", _LOADER, dsn], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
                for _ in range(2)
            ]
            wait_for(
                "both loaders to wait", lambda: _waiting_loads(dsn) == 2 or any(p.poll() is not None for p in procs)
            )
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        # one replaced nothing, the other replaced the first one's rows
        assert sorted(out.split() for out, _ in outs) == [["0", "50000"], ["50000", "50000"]]
        rows = _pg_rows(dsn, "trades")
        assert rows == (50_000, 50_000)
    finally:
        drop_db(name)
    record(
        "two loaders of one hour let in at the same instant (PostgreSQL, library level)",
        expected=50_000,
        found=rows[0],
        duplicated=rows[0] - rows[1],
        exit="0 and 0",
        note="both held by a LOCK TABLE until both waited, then released together: the second waits on the "
        "(table, hour) advisory lock, then deletes the first one's 50,000 rows and loads its own",
    )


def test_a_table_lock_fails_the_hour_within_the_bound(raw_lake: Path, tmp_path: Path) -> None:
    lake, name = _lake(raw_lake, tmp_path), "mdp_fault_lock_table"
    dsn = fresh_db(name)
    env = _env(tmp_path, "home", MDP_PG_DSN=dsn, MDP_PG_LOCK_TIMEOUT_S="3")
    assert mdp(["db", "migrate"], env).returncode == 0
    args = ["materialize", "--lake", lake, "--from", "2024-08-08T23:00", "--to", "2024-08-09T01:00", "--no-progress"]
    try:
        with psycopg.connect(dsn) as holder:
            holder.execute("LOCK TABLE trades IN ACCESS EXCLUSIVE MODE")  # held until the block ends
            failed = mdp(args, env)
            assert holder.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS  # still held
        assert failed.returncode == 1
        line = one_line(failed.stderr, r"waited 3 s for a lock on trades")
        assert "held by another session; nothing was replaced" in line
        # nothing of the failed hours anywhere: no lake file marks them done
        assert not partition_exists(lake, "trades", H23) and not partition_exists(lake, "trades", H23 + HOUR)
        assert _pg_rows(dsn, "trades") == (0, 0)
        again = mdp(args, env)
        assert again.returncode == 0, again.stderr
        trades = _pg_rows(dsn, "trades")
        assert trades == (19_904, 19_904) and _lake_rows(lake, "trades") == 19_904
    finally:
        drop_db(name)
    record(
        "`LOCK TABLE trades` held by another session during `mdp materialize` (PostgreSQL)",
        expected=19_904,
        found=trades[0],
        duplicated=trades[0] - trades[1],
        exit="1 (lock held), 0 (after)",
        note="MDP_PG_LOCK_TIMEOUT_S=3: the hours fail after 3 s with one line naming the table, nothing replaced "
        "and no lake file written; the run after the lock is released loads every trade once",
    )


def test_a_stop_signal_is_honoured_while_waiting_for_a_lock(raw_lake: Path, tmp_path: Path) -> None:
    lake, name = _lake(raw_lake, tmp_path), "mdp_fault_lock_sigterm"
    dsn = fresh_db(name)
    env = _env(tmp_path, "home", MDP_PG_DSN=dsn, MDP_PG_LOCK_TIMEOUT_S="600")  # the bound is not what ends it
    assert mdp(["db", "migrate"], env).returncode == 0
    args = ["materialize", "--lake", lake, "--from", "2024-08-08T23:00", "--to", "2024-08-09T01:00", "--no-progress"]
    try:
        with psycopg.connect(dsn) as holder:
            holder.execute("LOCK TABLE trades IN ACCESS EXCLUSIVE MODE")
            proc = subprocess.Popen([*MDP, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_for("the load to wait for the lock", lambda: _waiting_loads(dsn) >= 1 or proc.poll() is not None)
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=300)
            took = time.monotonic() - signalled
            # it ended while the lock was still held: the signal, not the lock's release or a timeout, ended it
            assert holder.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
            assert _waiting_loads(dsn) == 0
        assert proc.returncode == 1
        assert "SIGTERM" in stderr
        assert _pg_rows(dsn, "trades") == (0, 0)
        assert not partition_exists(lake, "trades", H23)
    finally:
        drop_db(name)
    record(
        "SIGTERM to `mdp materialize` waiting for a PostgreSQL lock",
        expected=0,
        found=0,
        duplicated=0,
        exit="1",
        note=f"the load was cancelled and the process ended {took:.1f} s after the signal (interpreter and Dagster "
        "shutdown included) while the lock was still held; nothing replaced, no lake file: the hours are not done "
        "and say so",
    )
