"""Shared fixtures: the real recordings in ../shared/data and throwaway lakes."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
#: features on by default that cost seconds per hour run: the book step and the heatmap pictures. The tests of one
#: part (transforms, assets, sinks, faults) leave them off unless they are about them (those turn them on); the
#: tests of what users run (``AS_USERS_GET``: end to end, the UI, the CLI, the notebook) get the defaults
COSTLY_FEATURES = ("MDP_BOOKS", "MDP_PICTURES")
AS_USERS_GET = ("e2e", "ui", "cli", "notebooks")
#: what the environment of `make test` itself said (kept for every test). Read once, by the first process: pytest-xdist
#: workers inherit the controller's environment after this module changed it, so they take the original from here
_ORIGINAL = "MDP_TESTS_GIVEN_ENV"
if _ORIGINAL not in os.environ:
    os.environ[_ORIGINAL] = json.dumps({name: os.environ.get(name) for name in COSTLY_FEATURES})
_GIVEN: dict[str, str | None] = json.loads(os.environ[_ORIGINAL])
for _name in COSTLY_FEATURES:  # while modules are collected; each test then gets its own (pytest_runtest_setup)
    os.environ.setdefault(_name, "0")

REPO = Path(__file__).resolve().parents[1]
# the independent candle computation lives with the transform tests; the repo root makes `assets`/`sensors`
# the packages they are even where an editable install predates their __init__.py
sys.path[:0] = [str(REPO / "tests" / "transforms"), str(REPO)]


def _shared_data() -> Path:
    for candidate in (os.environ.get("MDP_SHARED_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return REPO / "tests" / "data"


SHARED_DATA = _shared_data()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "binance-hftbacktest").is_dir():
        message = f"real recordings not found under {SHARED_DATA} (set MDP_SHARED_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)  # CI must never pass by skipping the tests on real data
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    root = tmp_path / "lake"
    monkeypatch.setenv("MDP_LAKE", str(root))
    return str(root)


@pytest.fixture
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A local moto S3 server; yields the environment (also set here) that points boto3/s3fs at it."""
    from moto.server import ThreadedMotoServer
    from s3fs import S3FileSystem

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto keeps its buckets in process-wide state, whatever server serves them: a test of the same worker that ran
    # before would leave its objects in a bucket of the same name
    httpx.post(f"http://{host}:{port}/moto-api/reset").raise_for_status()
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MDP_S3_ENDPOINT": f"http://{host}:{port}",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    S3FileSystem.clear_instance_cache()
    try:
        yield env
    finally:
        server.stop()


@pytest.fixture(scope="module")
def dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway Dagster instance (telemetry off) for the module's runs."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        mp.setenv("DAGSTER_DISABLE_TELEMETRY", "1")
        yield str(home)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make demo`'s directory (`lake/`, `env.sh`), built once per test run and shared by its xdist workers (a file
    lock): the README's commands and the notebook run against it. It sits at `<run>/repo/.demo`, so `<run>/repo` is
    where the README's commands are typed. Tests may only rewrite it with what it already holds (materialize,
    publish): the others read it meanwhile."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's directory, common to its workers
    work, log = root / "repo" / ".demo", root / "demo.log"
    with open(root / "demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not log.exists():
            env = {**os.environ, "MDP_DEMO_DIR": str(work), "DAGSTER_HOME": str(root / "demo-dagster")}
            run = subprocess.run(
                [sys.executable, str(REPO / "demo/run.py")], env=env, cwd=REPO, capture_output=True, text=True
            )
            log.write_text(f"exit {run.returncode}\n{run.stdout}{run.stderr}")
    output = log.read_text()
    if not output.startswith("exit 0\n"):
        pytest.fail(f"the demo failed:\n{output[-4000:]}")
    return work


#: the slowest test files (measured with ``--durations``), longest first: ``make test`` hands them to its workers
#: first (``--no-loadscope-reorder``) so the short ones fill in at the end and both workers finish together
SLOWEST_FIRST = (
    "tests/e2e/test_readme_commands.py",  # builds the shared demo lake (demo_dir) first
    "tests/dagster/test_reaggregation.py",
    "tests/e2e/test_complete_candles.py",
    "tests/e2e/test_backfill_heals.py",
    "tests/dagster/test_materialize.py",
    "tests/dagster/test_stop_signals.py",
    "tests/e2e/test_demo_pipeline.py",
    "tests/capture/test_import_stops.py",
    "tests/e2e/test_futures_import.py",
    "tests/e2e/test_live_outage.py",
    "tests/e2e/test_s3_lake.py",
    "tests/book/test_checkpoint.py",
    "tests/notebooks/test_quickstart.py",  # on the demo lake built by then
    "tests/dagster/test_book_assets.py",
    "tests/plots/test_book_heatmap.py",
    "tests/dagster/test_ui_backfill.py",
    "tests/postgres/test_pg_sink.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the test's fixtures (module and session ones included) are set up: the defaults users get for the
    tests of what they run, the costly features off for the others (unless the environment of the run set them)."""
    parts = Path(str(item.path)).relative_to(REPO / "tests").parts
    as_users_get = bool(parts) and parts[0] in AS_USERS_GET
    for name, given in _GIVEN.items():
        if given is not None:
            os.environ[name] = given
        elif as_users_get:
            os.environ.pop(name, None)
        else:
            os.environ[name] = "0"
