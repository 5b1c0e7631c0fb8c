"""A backfill launched from the Dagster UI, exactly as the UI launches it, on a real `dagster dev`.

The lake is the demo capture (BTC and ETH spot, 2024-08-08 23:00 .. 2024-08-09 00:05) imported with
`mdp import-capture`, with MDP_START on its first day. The backfill covers 22:00 (nothing in it), 23:00 and 00:00
with the three assets selected, sent as the UI's "Launch backfill" sends it (`launchPartitionBackfill` with
`assetSelection` and `partitionNames`, the `dagster/from_ui` tag). What the single-run backfill policy promises:
two runs whatever the number of hours, trades+coverage over the range, then candles over it (a self-dependent
asset is never launched in the same run as its parents), both successful. The candles in DuckDB must equal, row for
row, those `mdp materialize` writes for the same hours into another warehouse (from a copy of the same raw lake,
run meanwhile under its own Dagster instance).

Most of the test's minute is the backfill daemon's fixed 30 s between iterations: one to request trades, one to
request candles once trades are there (and one more to mark the backfill completed, which the test does not wait
for: the backfill is complete when its runs are).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CAPTURES = sorted(str(p) for p in (REPO / "demo/data/binance-spot").glob("*.gz"))
HOURS = ["2024-08-08-22:00", "2024-08-08-23:00", "2024-08-09-00:00"]
FIRST, END = "2024-08-08 22:00:00+00", "2024-08-09 01:00:00+00"
ASSETS = [{"path": ["trades"]}, {"path": ["coverage"]}, {"path": ["candles"]}]
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def _complete(backfill: dict[str, Any], runs: list[dict[str, Any]]) -> bool:
    """Its status is final; or its runs are: a failure, or all of them done and together covering every asset (the
    daemon marks the backfill completed at its next iteration, up to 30 s later; a run over a range materializes
    each of its partitions)."""
    if backfill["status"] in TERMINAL or any(r["status"] in {"FAILURE", "CANCELED"} for r in runs):
        return True
    done = {k["path"][0] for r in runs if r["status"] == "SUCCESS" for k in r["assetSelection"]}
    return all(r["status"] == "SUCCESS" for r in runs) and done == {a["path"][0] for a in ASSETS}


LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message }
    ... on RepositoryLocation { repositories { sensors { name sensorState { id status } } } } } } } } }"""
STOP_SENSOR = "mutation($id: String!) { stopSensor(id: $id) { __typename } }"
LAUNCH = """mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
    ... on PartitionKeysNotFoundError { message } } }"""
BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status error { message } } } }"""
RUNS = """query($backfill: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $backfill}]}) {
  ... on Runs { results { runId status jobName startTime endTime assetSelection { path } tags { key value } } } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dagster:
    """`dagster dev` in its own process group, and its GraphQL endpoint."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path):
        self.proc, self.url, self.log = proc, f"http://127.0.0.1:{port}/graphql", log

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            out = json.load(response)
        assert "errors" not in out, out["errors"]
        return out["data"]  # type: ignore[no-any-return]

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_loaded(self, timeout: float) -> list[dict[str, Any]]:
        """The code location's repositories once it is loaded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"dagster dev exited:\n{self.tail()}"
            try:
                entries = self.gql(LOCATIONS)["workspaceOrError"]["locationEntries"]
            except OSError:
                entries = []
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                locations = [e["locationOrLoadError"] for e in entries]
                assert all(loc["__typename"] == "RepositoryLocation" for loc in locations), locations
                return [repo for loc in locations for repo in loc["repositories"]]
            time.sleep(0.3)
        raise AssertionError(f"dagster dev did not load the workspace in {timeout} s:\n{self.tail()}")


@contextmanager
def dagster_dev(env: dict[str, str], log: Path) -> Iterator[Dagster]:
    port = _free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: webserver, daemon, code server, runs
        )
    try:
        yield Dagster(proc, port, log)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with suppress(ProcessLookupError):  # whatever the group left behind (run workers)
            os.killpg(proc.pid, signal.SIGKILL)


def _candles(warehouse: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "SELECT * FROM candles WHERE close_time > ?::TIMESTAMPTZ AND close_time <= ?::TIMESTAMPTZ "
            "ORDER BY exchange, symbol, timeframe, open_time",
            [FIRST, END],
        ).fetchall()
    finally:
        con.close()


# most of its minute and a half is waiting for the daemon's 30 s backfill ticks: it runs beside the CPU-bound suite
@pytest.mark.waits
@pytest.mark.timeout(300)
def test_ui_backfill_two_runs_same_candles_as_mdp_materialize(tmp_path: Path) -> None:
    lake, home = tmp_path / "lake", tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")  # telemetry off, the mdp_warehouse pool
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "MDP_LAKE": str(lake),
        "MDP_WAREHOUSE": str(tmp_path / "ui.duckdb"),
        "MDP_START": "2024-08-08",
        # nothing here may reach an exchange: a REST host on a closed loopback port
        "MDP_REST_URL": f"http://127.0.0.1:{_free_port()}",
    }
    mdp = [sys.executable, "-m", "mdplatform"]
    subprocess.run([*mdp, "import-capture", *CAPTURES, "--exchange", "binance"], env=env, check=True, cwd=REPO)
    shutil.copytree(lake, tmp_path / "lake-cli")  # the same raw lake for `mdp materialize`

    with dagster_dev(env, tmp_path / "dagster-dev.log") as dagster:
        repositories = dagster.wait_loaded(timeout=90)
        # the sensors would run hours of this lake too: this test is about the backfill's runs alone
        for repo in repositories:
            for sensor in repo["sensors"]:
                dagster.gql(STOP_SENSOR, {"id": sensor["sensorState"]["id"]})

        # meanwhile, `mdp materialize` over the same hours: another lake copy, warehouse and Dagster instance
        cli_home = tmp_path / "dagster-cli"
        cli_env = {**env, "DAGSTER_HOME": str(cli_home), "MDP_LAKE": str(tmp_path / "lake-cli")}
        cli_env["MDP_WAREHOUSE"] = str(tmp_path / "cli.duckdb")
        began = time.monotonic()
        cli = subprocess.Popen(
            [*mdp, "materialize", "--from", "2024-08-08T22:00", "--to", "2024-08-09T01:00", "--no-progress"],
            env=cli_env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

        launched = time.monotonic()
        params = {
            "tags": [{"key": "dagster/from_ui", "value": "true"}],
            "assetSelection": ASSETS,
            "partitionNames": HOURS,
            "fromFailure": False,
        }
        result = dagster.gql(LAUNCH, {"backfillParams": params})["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        backfill_id = result["backfillId"]

        cli_out, _ = cli.communicate(timeout=120)
        cli_elapsed = time.monotonic() - began
        assert cli.returncode == 0, cli_out

        deadline = time.monotonic() + 180
        while True:
            backfill = dagster.gql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
            runs = dagster.gql(RUNS, {"backfill": backfill_id})["runsOrError"]["results"]
            if _complete(backfill, runs):
                break
            assert time.monotonic() < deadline, f"backfill still {backfill['status']}:\n{dagster.tail()}"
            time.sleep(0.5)
        ui_elapsed = time.monotonic() - launched

    print(
        f"UI backfill of {len(HOURS)} hours: {ui_elapsed:.1f} s from launch to complete, runs "
        + ", ".join(f"{r['endTime'] - r['startTime']:.1f} s" for r in runs)
        + f"; mdp materialize (started with it): {cli_elapsed:.1f} s ({cli_out.splitlines()[0]})"
    )
    assert backfill["status"] in {"REQUESTED", "COMPLETED_SUCCESS"}, backfill
    assert all(r["status"] == "SUCCESS" for r in runs), [(r["runId"], r["status"]) for r in runs]
    # the single-run policy: one run per asset definition over the whole range, trades+coverage before candles
    assert len(runs) == 2, runs
    by_assets = {}
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        keys = frozenset(k["path"][0] for k in run["assetSelection"])
        by_assets[keys] = run
        assert run["jobName"] == "__ASSET_JOB"
        assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
            HOURS[0],
            HOURS[-1],
        )
    trades_run, candles_run = by_assets[frozenset({"trades", "coverage"})], by_assets[frozenset({"candles"})]
    assert trades_run["endTime"] <= candles_run["startTime"]

    ui, cli_rows = _candles(tmp_path / "ui.duckdb"), _candles(tmp_path / "cli.duckdb")
    assert len(ui) > 20 and {r[1] for r in ui} == {"BTC-USDT", "ETH-USDT"}
    assert ui == cli_rows


def test_a_range_run_loops_its_hours_in_order(tmp_path: Path, dagster_home: str) -> None:
    """What each of the backfill's runs does, in process: a run over a range of hours (the range tags a single-run
    backfill sets) materializes them in order, its metadata sums them and breaks them down by hour, the checks
    cover every hour; a failing hour is named as a time, after the hours before it were written."""
    from dagster import DagsterInstance

    from assets import MdpResource, definitions_for, hourly_partitions
    from assets.partitions import mdp_start
    from mdplatform.capture import import_capture

    lake = str(tmp_path / "lake")
    import_capture(CAPTURES, "binance", lake)
    os.environ.pop("MDP_START", None)
    assert f"{mdp_start(lake):%Y-%m-%d %H:%M}" == "2024-08-08 00:00"  # the lake's first day
    parts = hourly_partitions(mdp_start(lake))
    defs = definitions_for(parts, {"mdp": MdpResource(lake=lake, warehouse=str(tmp_path / "wh.duckdb"))})

    def run(job: str, first: str, last: str):  # type: ignore[no-untyped-def]
        tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        return defs.resolve_job_def(job).execute_in_process(
            tags=tags, instance=DagsterInstance.get(), raise_on_error=False
        )

    result = run("mdp_hourly", HOURS[1], HOURS[2])
    assert result.success
    checks_run = {(e.check_name, e.passed) for e in result.get_asset_check_evaluations()}
    assert checks_run == {("trades_valid", True), ("coverage_valid", True), ("candles_valid", True)}
    # one materialization per partition, each with the run's metadata (MDP_BOOKS=0 here: tests/conftest.py)
    mats = result.get_asset_materialization_events()
    every = ("trades", "coverage", "candles")
    assert sorted((m.asset_key.path[0], m.partition) for m in mats) == sorted(
        (key, hour) for key in every for hour in HOURS[1:]
    )
    trades = next(m.materialization.metadata for m in mats if m.asset_key.path[0] == "trades")
    assert trades["hours"].value == 2
    by_hour = trades["by_hour"].value
    assert list(by_hour) == HOURS[1:]
    assert trades["dagster/row_count"].value == sum(h["rows"] for h in by_hour.values()) > 0
    candle_meta = next(m.materialization.metadata for m in mats if m.asset_key.path[0] == "candles")
    assert candle_meta["rows_by_timeframe"].value["1m"] == sum(h["1m"] for h in candle_meta["by_hour"].value.values())

    # the trades of 01:00 were never materialized: candles over 00:00 .. 01:00 write 00:00, then fail naming 01:00
    failed = run("mdp_candles", HOURS[2], "2024-08-09-01:00")
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "trades partition for 2024-08-09 01:00 UTC is not materialized" in str(failure.event_specific_data)
    logs = DagsterInstance.get().all_logs(failed.run_id)
    assert any(
        "candles for 2024-08-09 01:00 UTC failed (hour 2 of 2; 2024-08-09 00:00 UTC already written)"
        in (e.user_message or "")
        for e in logs
    )
