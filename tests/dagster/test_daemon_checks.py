"""The sensors as Dagster's own daemon runs them (`dagster-daemon run` on workspace.yaml, the defaults users get:
books on), on the bundled real recording (demo/data: Binance spot, 2024-08-08 23:54 .. 08-09 00:05): the landing
sensor launches one run per hour; the trades partition of 23:00 is corrupted as it is written (three rows twice),
so its ERROR check fails with a readable message and candles for 23:00 are not materialized, while 00:00 goes on.

The corruption is injected from outside the platform's code: a ``sitecustomize`` module on the daemon's
PYTHONPATH, which every process it starts (code servers, run workers) inherits, wraps the hourly assets' partition
writer. The schedules are evaluated by Dagster's own tick logic in tests/dagster/test_schedules.py (their cron
times cannot be waited for here)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _ui_server import BIN, REPO, demo_env, import_demo
from dagster import AssetCheckSeverity, DagsterEventType, DagsterInstance, DagsterRunStatus

from mdplatform.warehouse import partition_exists

H23 = int(datetime(2024, 8, 8, 23, tzinfo=UTC).timestamp()) * 10**9
H00 = H23 + 3600 * 10**9

#: wraps ``assets._hourly.write_partition`` when that module is first imported, in any process of the daemon
HOOK = """
import importlib.abc, importlib.machinery, os, sys

class _Corrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "assets._hourly":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            write, bad = module.write_partition, os.environ["MDP_TEST_CORRUPT"]

            def corrupting(path, df):
                if path.endswith(bad):
                    import polars as pl
                    df = pl.concat([df, df.head(3)]).sort("exchange", "symbol", "ts", maintain_order=True)
                write(path, df)

            module.write_partition = corrupting

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _Corrupt())
"""


@pytest.mark.waits  # the daemon's ticks and two hourly runs: a few minutes, mostly waiting
@pytest.mark.timeout(900)
def test_the_daemon_runs_each_hour_and_a_failed_error_check_stops_only_its_hour(tmp_path: Path) -> None:
    env = demo_env(tmp_path)
    import_demo(env)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    env |= {
        "PYTHONPATH": os.pathsep.join([str(hook), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "MDP_TEST_CORRUPT": "trades/date=2024-08-08/hour=23/data.parquet",
        "MDP_SENSOR_INTERVAL_S": "5",
        "MDP_REST_URL": "none",  # the gap sensor would heal the demo's edges from a real exchange
    }
    lake = env["MDP_LAKE"]
    init = [sys.executable, "-c", "from dagster import DagsterInstance; DagsterInstance.get()"]
    subprocess.run(init, cwd=REPO, env=env, check=True, capture_output=True)
    log = (tmp_path / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        os.environ["DAGSTER_HOME"], home = env["DAGSTER_HOME"], os.environ.get("DAGSTER_HOME")
        with DagsterInstance.get() as instance:
            runs = _wait_for_hours(instance, daemon, tmp_path / "daemon.log", timeout=600)
            by_hour = {r.tags["dagster/partition"]: r for r in runs}
            bad, good = by_hour["2024-08-08-23:00"], by_hour["2024-08-09-00:00"]
            assert (bad.status, good.status) == (DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS)
            assert {bad.tags.get("dagster/sensor_name"), good.tags.get("dagster/sensor_name")} == {"landed_data_sensor"}
            checks = {
                e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data  # type: ignore[union-attr]
                for e in instance.all_logs(bad.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
            }
            failed = checks["trades_valid"]
            assert not failed.passed and failed.severity == AssetCheckSeverity.ERROR
            assert failed.description == "trades: one row per (exchange, symbol, trade_id): 6 of 15839 trades fail"
            built = {
                e.dagster_event.asset_key.path[0]  # type: ignore[union-attr]
                for e in instance.all_logs(bad.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
            }
            # the hour's quarantine is written with its trades (what was rejected, whatever the trades' checks say);
            # nothing built from the trades (candles) ran
            assert built == {"trades", "coverage", "quarantine"}
    finally:
        if home is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = home
        os.killpg(daemon.pid, 15)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, 9)
            daemon.wait()
    assert not partition_exists(lake, "candles", H23)
    assert partition_exists(lake, "candles", H00) and partition_exists(lake, "book_snapshots", H00)


def _wait_for_hours(instance: DagsterInstance, daemon: subprocess.Popen[bytes], log: Path, timeout: float) -> list:
    """The finished runs of both hours, once the landing sensor launched them and they ended."""
    deadline = time.monotonic() + timeout
    done = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    while time.monotonic() < deadline:
        assert daemon.poll() is None, log.read_text(errors="replace")[-3000:]
        runs = [r for r in instance.get_runs() if r.job_name == "mdp_hourly"]
        hours = {r.tags.get("dagster/partition") for r in runs if r.status in done}
        if {"2024-08-08-23:00", "2024-08-09-00:00"} <= hours:
            return [r for r in runs if r.status in done]
        time.sleep(2)
    raise AssertionError(f"the hours were not run in {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")
