"""kill -9 of `mdp materialize` while its run holds the `mdp_warehouse` pool slot: the next `mdp materialize`
frees the dead run's slot (naming the run) and completes, every trade of the recording in the lake once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import polars as pl
import pytest
from _pipeline import MDP, RECORDING, mdp, one_line, record, recording_trade_ids, wait_for

from assets._runner import _instance
from mdplatform.capture import import_capture

REPO = Path(__file__).resolve().parents[2]


def _claimed(home: str) -> list[str]:
    """Run ids holding a slot of the pool (read through the same storage `mdp materialize` uses)."""
    with _instance(home) as instance:
        info = instance.event_log_storage.get_concurrency_info("mdp_warehouse")
        return [slot.run_id for slot in info.claimed_slots]


def test_kill9_mid_run_does_not_block_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake, home = str(tmp_path / "lake"), tmp_path / "home"
    import_capture(RECORDING, "binance", lake)
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    # the instance's storage made before the test polls it beside the run (two processes creating a fresh SQLite
    # storage at once is not what this test is about)
    assert _claimed(str(home)) == []
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDP_PG_")}
    env.update(DAGSTER_DISABLE_TELEMETRY="1", MDP_BOOKS="1", MDP_PICTURES="0")
    args = ["materialize", "--lake", lake, "--no-progress"]
    log = tmp_path / "killed.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*MDP, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    held: list[str] = []

    def slot_taken() -> bool:
        held[:] = _claimed(str(home))
        return bool(held) or proc.poll() is not None

    wait_for("the run to take the pool slot", slot_taken, timeout=600)
    assert proc.poll() is None, f"the run ended before it could be killed: {log.read_text()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    dead = held[0]
    assert _claimed(str(home)) == [dead]  # the dead run still holds the slot
    # bounded: before the fix this run waited for the slot forever (and ignored SIGTERM)
    after = mdp(args, env, timeout=900)
    assert after.returncode == 0, after.stderr
    line = one_line(after.stderr, dead)
    assert "which is gone (killed?): marked failed, its concurrency slots freed" in line
    assert _claimed(str(home)) == []
    with _instance(str(home)) as instance:
        run = instance.get_run_by_id(dead)
        assert run is not None and run.status.value == "FAILURE"
    trades = pl.concat([pl.read_parquet(f) for f in Path(lake, "trades").glob("**/data.parquet")])
    distinct = trades.select("exchange", "symbol", "trade_id").n_unique()
    expected = recording_trade_ids()
    assert trades.height == distinct == expected == 19_904
    record(
        "kill -9 of `mdp materialize` holding the `mdp_warehouse` pool slot, then `mdp materialize` again",
        expected=expected,
        found=trades.height,
        duplicated=trades.height - distinct,
        exit="-9 (killed), 0 (next)",
        note="the next run marks the dead run failed, frees its slot with a line naming it, and completes (before: "
        "it waited for the slot forever, ignoring SIGTERM)",
    )


def test_a_stop_while_a_live_run_holds_the_pool_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another live process's run holds the `mdp_warehouse` slot: `mdp materialize` says whose and waits; SIGTERM
    ends the wait (Dagster's own wait for a slot heeded no signal), nothing of the range begun."""
    from dagster import DagsterRun, DagsterRunStatus

    from assets._dead_runs import PROCESS_TAG, process_tag

    lake, home = str(tmp_path / "lake"), tmp_path / "home"
    import_capture(RECORDING, "binance", lake)
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    holder = DagsterRun(job_name="mdp_hourly", status=DagsterRunStatus.STARTED, tags={PROCESS_TAG: process_tag()})
    with _instance(str(home)) as instance:
        instance.add_run(holder)  # this test's own process: alive, so its slot is not freed
        instance.event_log_storage.initialize_concurrency_limit_to_default("mdp_warehouse")  # as a run does
        assert instance.event_log_storage.claim_concurrency_slot("mdp_warehouse", holder.run_id, "trades").is_claimed
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDP_PG_")}
    env.update(DAGSTER_DISABLE_TELEMETRY="1", MDP_BOOKS="0", MDP_PICTURES="0")
    proc = subprocess.Popen(
        [*MDP, "materialize", "--lake", lake, "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    first = proc.stderr.readline().decode()  # blocks until it says it waits (bounded by the test's timeout)
    assert first.strip() == f"waiting for the mdp_warehouse pool: its 1 slot(s) are held by run {holder.run_id}"
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "stopped by SIGTERM before the first hour" in rest.decode()
    assert _claimed(str(home)) == [holder.run_id]  # the live run's slot was left alone
    assert not Path(lake, "trades").exists()
    record(
        "SIGTERM to `mdp materialize` waiting for the pool slot a live run holds",
        expected=0,
        found=0,
        duplicated=0,
        exit="1",
        note="it said which run held the slot, then ended on the signal with nothing of its range begun (before: "
        "silent, a core spinning, SIGTERM ignored)",
    )
