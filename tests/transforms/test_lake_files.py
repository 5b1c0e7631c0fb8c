"""The files a run leaves in the lake: private to the user by default, and no temp file of a killed writer stays.

`mdp` runs as its own process here (the umask is the process's): the OKX cryptofeed sample, imported and
materialized."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from assets.cli import materialize
from mdplatform.capture import import_capture

REPO = Path(__file__).resolve().parents[2]
MDP = [sys.executable, "-m", "mdplatform"]


def mdp(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MDP, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def modes(root: Path) -> dict[str, int]:
    """Path (relative) -> permission bits of every file and folder under ``root``."""
    out = {}
    for here, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(here) / name
            out[path.relative_to(root).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return out


@pytest.mark.parametrize(("umask", "private"), [(None, True), ("022", False)], ids=["default", "MDP_UMASK=022"])
def test_lake_files_are_private_by_default(
    umask: str | None, private: bool, tmp_path: Path, shared_data: Path, dagster_home: str
) -> None:
    lake = tmp_path / "lake"
    env = {**os.environ, "MDP_LAKE": str(lake), "DAGSTER_HOME": dagster_home}
    env.pop("MDP_UMASK", None)
    if umask is not None:
        env["MDP_UMASK"] = umask
    capture = shared_data / "cryptofeed-samples" / "OKX.ws.1.0.gz"
    done = mdp("import-capture", str(capture), "--exchange", "okx", env=env)
    assert done.returncode == 0, done.stderr
    done = mdp("materialize", "--no-progress", env=env)
    assert done.returncode == 0, done.stderr
    found = {p: m for p, m in modes(lake).items() if not Path(lake, p).is_symlink()}
    tables = {p.split("/", 1)[0] for p in found}
    assert {"raw", "events", "trades", "candles", "coverage", ".warehouse.duckdb"} <= tables
    shared = {p: oct(m) for p, m in found.items() if m & 0o077}
    if private:
        assert shared == {}
    else:
        assert all(m & 0o044 == 0o044 for m in found.values())


def test_an_invalid_umask_is_one_line(tmp_path: Path) -> None:
    done = mdp("materialize", env={**os.environ, "MDP_UMASK": "rw-r--r--", "MDP_LAKE": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr == "Error: MDP_UMASK must be an octal mask such as 077 or 022, got 'rw-r--r--'\n"


def test_killed_writers_temp_files_are_removed(tmp_path: Path, shared_data: Path, dagster_home: str) -> None:
    lake = tmp_path / "lake"
    import_capture([shared_data / "cryptofeed-samples" / "OKX.ws.1.0.gz"], "okx", str(lake))
    (hour,) = {p.parent for p in (lake / "raw").rglob("*.parquet")}
    old, fresh = hour / ".minute-00.parquet.0123abcd.tmp", hour / ".minute-01.parquet.4567ef01.tmp"
    state = lake / ".warehouse.duckdb"
    state.mkdir()
    snapshot, wal = state / ".snapshot-000001.duckdb.89abcdef.tmp", state / ".snapshot-000001.duckdb.89abcdef.tmp.wal"
    for path in (old, fresh, snapshot, wal):
        path.write_bytes(b"torn")
    two_hours_ago = time.time() - 7200
    for path in (old, snapshot, wal):
        os.utime(path, (two_hours_ago, two_hours_ago))
    result = CliRunner().invoke(materialize, ["--lake", str(lake), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert not old.exists() and not snapshot.exists() and not wal.exists()
    assert fresh.exists()  # a writer may still be at work on it
    removed = [ln for ln in result.output.splitlines() if ln.startswith("removed a temp file a killed writer left")]
    assert sorted(ln.rsplit("/", 1)[1] for ln in removed) == sorted(p.name for p in (old, snapshot, wal))
