"""The Dagster UI as `make dagster` runs it (`dagster-webserver` and `dagster-daemon run` on workspace.yaml, from
the repository's root), on a loopback port, for the tests that drive it as a person would: through its GraphQL API
(tests/dagster/test_ui_backfill.py) or a browser (tests/ui/test_dagster_ui.py).

The lake is the demo capture (Binance spot BTCUSDT and ETHUSDT, 2024-08-08 23:54 .. 2024-08-09 00:05, real
frames), imported with `mdp import-capture`; the settings are the defaults users get (books and pictures on,
MDP_START unset: partitions start at the lake's first hour)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CAPTURES = sorted(str(p) for p in (REPO / "demo/data/binance-spot").glob("*.gz"))
#: the two hours of the recording
HOURS = ["2024-08-08-23:00", "2024-08-09-00:00"]

LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message }
    ... on RepositoryLocation { name repositories { name sensors { name sensorState { id status } } } } } } } } }"""
STOP_SENSOR = "mutation($id: String!) { stopSensor(id: $id) { __typename } }"
ASSET_NODES = """{ assetNodes { assetKey { path } isPartitioned isMaterializable isObservable description
  dependencyKeys { path }
  metadataEntries { label __typename ... on TableSchemaMetadataEntry { schema { columns { name type description } } } }
  partitionKeysByDimension { partitionKeys } } }"""
LAUNCH = """mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
    ... on PartitionKeysNotFoundError { message } } }"""
BACKFILLS = """{ partitionBackfillsOrError { ... on PartitionBackfills { results { id status
  assetSelection { path } partitionNames } } } }"""
BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status error { message } } } }"""
RUNS = """query($backfill: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $backfill}]}) {
  ... on Runs { results { runId status jobName startTime endTime assetSelection { path } tags { key value } } } } }"""
MATERIALIZED = """query($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { ... on AssetNode {
  assetMaterializations(limit: 50) { partition runId } } } }"""
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED", "FAILING"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_env(tmp: Path) -> dict[str, str]:
    """A Dagster instance (the repo's dagster.yaml: telemetry off, the pool) and the settings users get."""
    home = tmp / "dagster"
    home.mkdir(exist_ok=True)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "MDP_LAKE": str(tmp / "lake"),
        "MDP_WAREHOUSE": str(tmp / "ui.duckdb"),
        # nothing here may reach an exchange: a REST host on a closed loopback port
        "MDP_REST_URL": f"http://127.0.0.1:{free_port()}",
    }
    # the defaults, whatever the suite's conftest turned off for other tests
    for name in ("MDP_START", "MDP_BOOKS", "MDP_PICTURES"):
        env.pop(name, None)
    return env


def import_demo(env: dict[str, str]) -> None:
    mdp = [sys.executable, "-m", "mdplatform", "import-capture", *CAPTURES, "--exchange", "binance"]
    subprocess.run(mdp, env=env, check=True, cwd=REPO, capture_output=True)


@dataclass
class Dagster:
    url: str
    logs: list[Path]

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                out = json.load(response)
        except urllib.error.HTTPError as exc:  # the server's own words, not only its status
            raise AssertionError(f"{exc}: {exc.read()[:2000]!r}\n{self.tail()}") from None
        assert "errors" not in out, out["errors"]
        return out["data"]  # type: ignore[no-any-return]

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.logs)

    def warnings(self) -> list[str]:
        """The start-up warnings of the webserver and the daemon (and their code servers)."""
        return [
            line
            for p in self.logs
            for line in p.read_text(errors="replace").splitlines()
            if "WARNING" in line or "Warning:" in line
        ]

    def wait_loaded(self, timeout: float) -> list[dict[str, Any]]:
        """The code locations once loaded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                entries = self.gql(LOCATIONS)["workspaceOrError"]["locationEntries"]
            except OSError:
                entries = []
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                locations = [e["locationOrLoadError"] for e in entries]
                assert all(loc["__typename"] == "RepositoryLocation" for loc in locations), locations
                return locations
            time.sleep(0.5)
        raise AssertionError(f"the webserver did not load the workspace in {timeout} s:\n{self.tail()}")

    def stop_sensors(self, locations: list[dict[str, Any]]) -> None:
        """The sensors would run the lake's hours too: the tests are about what the UI launches."""
        for loc in locations:
            for repo in loc["repositories"]:
                for sensor in repo["sensors"]:
                    self.gql(STOP_SENSOR, {"id": sensor["sensorState"]["id"]})

    def partitioned_assets(self) -> list[list[str]]:
        """Every partitioned asset, as the UI's "Materialize all" selects them."""
        nodes = self.gql(ASSET_NODES)["assetNodes"]
        return sorted(n["assetKey"]["path"] for n in nodes if n["isPartitioned"] and n["isMaterializable"])

    def wait_backfill(self, backfill_id: str, assets: list[list[str]], timeout: float) -> list[dict[str, Any]]:
        """The backfill's runs once they are all done and together materialized every asset (the daemon marks the
        backfill completed at its next iteration, up to 30 s later), or once one failed."""
        deadline = time.monotonic() + timeout
        while True:
            backfill = self.gql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
            runs = self.gql(RUNS, {"backfill": backfill_id})["runsOrError"]["results"]
            failed = [r for r in runs if r["status"] in {"FAILURE", "CANCELED"}]
            assert not failed and backfill["status"] not in TERMINAL - {"COMPLETED", "COMPLETED_SUCCESS"}, (
                backfill,
                [(r["runId"], r["status"]) for r in runs],
                self.tail(),
            )
            done = {tuple(k["path"]) for r in runs if r["status"] == "SUCCESS" for k in r["assetSelection"]}
            if runs and all(r["status"] == "SUCCESS" for r in runs) and done >= {tuple(a) for a in assets}:
                return runs  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, f"backfill still {backfill['status']}:\n{self.tail()}"
            time.sleep(1)

    def materialized(self, path: list[str]) -> set[str]:
        node = self.gql(MATERIALIZED, {"path": path})["assetNodeOrError"]
        return {m["partition"] for m in node["assetMaterializations"]}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    with suppress(ProcessLookupError):  # whatever the group left behind (code servers, run workers)
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextmanager
def dagster_ui(env: dict[str, str], logs: Path) -> Iterator[Dagster]:
    """`dagster-daemon run` and `dagster-webserver` on workspace.yaml from the repository's root, as `make dagster`
    starts them, each in its own process group."""
    port = free_port()
    commands = {
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        "webserver": [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
    }
    paths = []
    # the instance's SQLite storages first, as `make dagster` does: two processes creating them at once race
    # (the webserver died on a CREATE TABLE the daemon had just run)
    init = [sys.executable, "-c", "from dagster import DagsterInstance; DagsterInstance.get()"]
    subprocess.run(init, cwd=REPO, env=env, check=True, capture_output=True)
    with ExitStack() as stack:
        for name, command in commands.items():
            path = logs / f"{name}.log"
            paths.append(path)
            with path.open("wb") as out:
                proc = subprocess.Popen(
                    command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            stack.callback(_stop, proc)
        yield Dagster(f"http://127.0.0.1:{port}", paths)
