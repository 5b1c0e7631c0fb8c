"""Failed hours are run again until they succeed: `mdp materialize` while the PostgreSQL database does not exist
yet fails its hours (exit 1, nothing in the lake); once the database is there, ``failed_hours_sensor`` requests
each failed hour again (tags naming the run it retries), and those runs load every trade once. The backoff and
what stops a retry are checked on the pure plan (``plan_retries``)."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import psycopg
import pytest
from _pipeline import RECORDING, drop_db, fresh_db, mdp, record, recording_trade_ids
from dagster import SkipReason, build_sensor_context

from assets._jobs import definitions_for
from assets._resources import MdpResource
from assets._runner import _instance
from assets.partitions import hour_key, hourly_partitions, mdp_start
from mdplatform.capture import import_capture
from mdplatform.pg import close_pools, migrate
from mdplatform.warehouse import partition_exists
from sensors import FinishedRun, Retry, failed_hours_sensor, plan_retries

H = 1723158000 * 10**9  # 2024-08-08 23:00 UTC
HOUR = 3_600 * 10**9


def _run(
    run_id: str, status: str, ended: float | None, hours: tuple[int, ...] = (H,), job: str = "mdp_hourly"
) -> FinishedRun:
    return FinishedRun(run_id, job, hours, status, ended)


def test_backoff_doubles_with_each_failure_in_a_row() -> None:
    # newest first: three failures in a row on top of a success
    runs = [_run("f3", "FAILURE", 1000.0), _run("f2", "FAILURE", 900.0), _run("f1", "FAILURE", 800.0)]
    runs.append(_run("ok", "SUCCESS", 700.0))
    # third failure: due 60 * 2^2 = 240 s after it ended
    assert plan_retries(runs, 1239.0, base_s=60, max_s=3600) == []
    assert plan_retries(runs, 1240.0, base_s=60, max_s=3600) == [Retry(H, "mdp_hourly", "f3", 3)]
    # capped
    assert plan_retries(runs, 1100.0, base_s=60, max_s=100) == [Retry(H, "mdp_hourly", "f3", 3)]


def test_no_retry_over_a_success_or_a_run_in_progress_and_candles_retried_as_candles() -> None:
    later_ok = [_run("ok", "SUCCESS", 2.0), _run("f", "FAILURE", 1.0)]
    running = [_run("r", "STARTED", None), _run("f", "FAILURE", 1.0)]
    cancelled = [_run("c", "CANCELED", 1.0)]
    for runs in (later_ok, running, cancelled):
        assert plan_retries(runs, 10**9, base_s=0, max_s=0) == []
    # a range run (`mdp materialize`) covers each of its hours; a candles-only failure is retried as candles (its
    # hour failed twice in a row: in the range run, then alone)
    ranged = [_run("c", "FAILURE", 1.0, (H + HOUR,), "mdp_candles"), _run("m", "FAILURE", 1.0, (H, H + HOUR))]
    assert plan_retries(ranged, 10.0, base_s=1, max_s=1) == [
        Retry(H, "mdp_hourly", "m", 1),
        Retry(H + HOUR, "mdp_candles", "c", 2),
    ]


def test_hours_failed_on_a_missing_database_are_retried_once_it_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, home, name = str(tmp_path / "lake"), tmp_path / "home", "mdp_fault_not_there_yet"
    import_capture(RECORDING, "binance", lake)
    home.mkdir()
    dsn = fresh_db(name)
    drop_db(name)  # the DSN of a database that does not exist yet
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MDP_PG_DSN", dsn)
    monkeypatch.setenv("MDP_BOOKS", "0")  # trades, coverage and candles: the point is the retry
    env = {**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1"}
    args = ["materialize", "--lake", lake, "--from", "2024-08-08T23:00", "--to", "2024-08-09T01:00", "--no-progress"]
    failed = mdp(args, env)
    assert failed.returncode == 1 and "2 hour(s) failed" in failed.stderr
    assert f'database "{name}" does not exist' in failed.stderr
    assert not partition_exists(lake, "trades", H) and not partition_exists(lake, "trades", H + HOUR)
    try:
        fresh_db(name)
        migrate(dsn)
        mdp_resource = MdpResource(lake=lake, warehouse=str(Path(lake) / "warehouse.duckdb"))
        defs = definitions_for(hourly_partitions(mdp_start(lake)), {"mdp": mdp_resource})
        with _instance(str(home)) as instance:
            # not due yet: the first retry waits MDP_RETRY_BASE_S after the failure
            monkeypatch.setenv("MDP_RETRY_BASE_S", "3600")
            waiting = failed_hours_sensor(build_sensor_context(instance=instance, resources={"mdp": mdp_resource}))
            assert isinstance(waiting, SkipReason)
            monkeypatch.setenv("MDP_RETRY_BASE_S", "0")
            result = failed_hours_sensor(build_sensor_context(instance=instance, resources={"mdp": mdp_resource}))
            requests = result.run_requests or []
            assert [(r.job_name, r.partition_key) for r in requests] == [
                ("mdp_hourly", hour_key(H)),
                ("mdp_hourly", hour_key(H + HOUR)),
            ]
            failed_run = requests[0].tags["mdp/retry_of"]
            assert all(r.tags["mdp/attempt"] == "1" and r.tags["mdp/retry_of"] == failed_run for r in requests)
            assert requests[0].tags["mdp/reason"] == f"retry 1 of {hour_key(H)}: run {failed_run} failed"
            for request in requests:  # what the daemon does with them, in order
                job = defs.resolve_job_def(request.job_name)
                done = job.execute_in_process(
                    instance=instance, partition_key=request.partition_key, tags=request.tags, raise_on_error=False
                )
                assert done.success
            after = failed_hours_sensor(build_sensor_context(instance=instance, resources={"mdp": mdp_resource}))
            assert isinstance(after, SkipReason)
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT count(*), count(DISTINCT (exchange, symbol, trade_id)) FROM trades").fetchone()
        assert row is not None
        rows, distinct = int(row[0]), int(row[1])
        lake_trades = sum(pl.read_parquet(f).height for f in Path(lake, "trades").glob("**/data.parquet"))
        assert rows == distinct == lake_trades == recording_trade_ids() == 19_904
    finally:
        close_pools(dsn)
        drop_db(name)
    record(
        "PostgreSQL database not there yet, then created: failed hours retried by the sensor",
        expected=19_904,
        found=rows,
        duplicated=rows - distinct,
        exit="1 (no database), retries succeeded",
        note="`failed_hours_sensor` requested both failed hours again (tags mdp/retry_of, mdp/attempt, mdp/reason) "
        "once the backoff had passed; the failed run had written nothing to the lake",
    )
