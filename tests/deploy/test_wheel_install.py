"""A non-editable install (what the Dockerfile does) ships its DDL: a wheel built from this tree, installed into a
fresh venv, finds sql/duckdb and sql/postgres inside the package, `mdp db migrate` works against a test database
and a DuckDB warehouse schema is created.

No network: the wheel is built with this venv's setuptools (no isolated build env), installed with uv --offline and
--no-deps, and the new venv borrows this venv's dependencies through a .pth line naming its site-packages (a path
line only: the .pth files there, such as the editable install of this checkout, are not run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

#: a build, a venv and three fresh interpreters importing polars/DuckDB/Dagster-free mdplatform: ~40 s
pytestmark = pytest.mark.waits

REPO = Path(__file__).resolve().parents[2]
ADMIN = os.environ.get("MDP_PG_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
#: what a build never needs, and what may be large or belong to running work: at the top, and anywhere
TOP_SKIP = {".git", ".venv", "lake", ".demo", ".dagster", "build", "dist"}
ANY_SKIP = shutil.ignore_patterns("*.egg-info", "__pycache__", ".*_cache")


def _ignore(directory: str, names: list[str]) -> set[str]:
    top = TOP_SKIP.intersection(names) if Path(directory) == REPO else set()
    return top | ANY_SKIP(directory, names)


def _uv() -> list[str]:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if found:
        return [found]
    probe = subprocess.run(["python3", "-m", "uv", "--version"], capture_output=True)
    if probe.returncode == 0:
        return ["python3", "-m", "uv"]  # how the Makefile installs it
    pytest.fail("uv not found (the Makefile installs it: python3 -m pip install uv)")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{cmd}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's bin directory, with mdplatform installed from a wheel of this tree."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=_ignore)
    build = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    wheel = root / "dist" / _run([sys.executable, "-c", build, str(root / "dist")], src).strip().splitlines()[-1]
    venv = root / "venv"
    _run([*_uv(), "venv", "--quiet", "--offline", "--python", sys.executable, str(venv)], root)
    _run([*_uv(), "pip", "install", "--quiet", "--offline", "--no-deps", "--python", str(venv / "bin" / "python"),
          str(wheel)], root)  # fmt: skip
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "_mdp_project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MDP_SQL_DIR", "MDP_PG_DSN")}
    env["DAGSTER_DISABLE_TELEMETRY"] = "1"
    return env


def test_the_installed_package_holds_its_ddl(installed: Path, tmp_path: Path) -> None:
    probe = (
        "import mdplatform, mdplatform.pg as pg, mdplatform.warehouse as w; "
        "print(mdplatform.__file__); print(w.default_sql_dir()); print(pg.default_migrations_dir())"
    )
    package, duck, postgres = _run([str(installed / "python"), "-c", probe], tmp_path, _env()).split()
    site = Path(package).parents[1]
    assert site.name == "site-packages" and str(installed.parent) in package, "imported the checkout, not the wheel"
    for ddl, source in ((Path(duck), REPO / "sql" / "duckdb"), (Path(postgres), REPO / "sql" / "postgres")):
        assert ddl.is_relative_to(site) and not ddl.is_symlink()
        assert sorted(p.name for p in ddl.glob("*.sql")) == sorted(p.name for p in source.glob("*.sql"))
        assert all((ddl / p.name).read_text() == p.read_text() for p in source.glob("*.sql"))


def test_the_installed_package_creates_a_duckdb_warehouse(installed: Path, tmp_path: Path) -> None:
    create = (
        "import sys, duckdb; from mdplatform.warehouse import Warehouse; Warehouse(sys.argv[1]).refresh(); "
        "print(' '.join(sorted(r[0] for r in duckdb.connect(sys.argv[1], read_only=True).execute('SHOW TABLES')"
        ".fetchall())))"
    )
    tables = _run([str(installed / "python"), "-c", create, str(tmp_path / "w.duckdb")], tmp_path, _env()).split()
    assert {"trades", "candles", "coverage"} <= set(tables)


@pytest.fixture
def database() -> Iterator[str]:
    try:
        psycopg.connect(ADMIN, connect_timeout=3).close()
    except psycopg.Error:
        message = f"no PostgreSQL at {ADMIN} (set MDP_PG_TEST_DSN)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    name = f"mdp_test_wheel_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield str(psycopg.conninfo.make_conninfo(ADMIN, dbname=name))
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_installed_mdp_migrates(installed: Path, tmp_path: Path, database: str) -> None:
    env = {**_env(), "MDP_PG_DSN": database}
    out = _run([str(installed / "mdp"), "db", "migrate"], tmp_path, env)
    applied = [line.rsplit(" applied ", 1)[1].split()[0] for line in out.splitlines()]
    assert applied == sorted(p.name for p in (REPO / "sql" / "postgres").glob("*.sql"))
    assert _run([str(installed / "mdp"), "db", "migrate"], tmp_path, env).strip().endswith("up to date")
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(applied),)


def test_the_installed_mdp_materializes_into_duckdb_and_postgres(
    installed: Path, tmp_path: Path, database: str
) -> None:
    """What the image runs: the installed `mdp` lands a real capture, migrates, materializes every asset, and the
    rows are in the published DuckDB snapshot and in PostgreSQL."""
    env = {**_env(), "MDP_PG_DSN": database, "DAGSTER_HOME": str(tmp_path / "dagster"), "MDP_BOOKS": "1"}
    (tmp_path / "dagster").mkdir()
    lake = tmp_path / "lake"
    capture = REPO / "demo" / "data" / "binance-spot" / "btcusdt_20240808.gz"
    mdp = str(installed / "mdp")
    _run([mdp, "import-capture", str(capture), "--exchange", "binance", "--lake", str(lake)], tmp_path, env)
    _run([mdp, "db", "migrate"], tmp_path, env)
    out = _run([mdp, "materialize", "--lake", str(lake), "--no-progress"], tmp_path, env)
    # the default range reaches the hour an exchange time up to the skew past the last frame would fall in
    assert "materialized 2 hour(s) 2024-08-08 23:00 .. 2024-08-09 01:00" in out
    count = "import sys, duckdb; print(duckdb.connect(sys.argv[1], read_only=True).execute(sys.argv[2]).fetchone()[0])"
    warehouse = str(lake / "warehouse.duckdb")
    for table in ("trades", "candles", "book_snapshots", "book_heatmap"):
        query = f"SELECT count(*) FROM {table}"
        in_duckdb = int(_run([str(installed / "python"), "-c", count, warehouse, query], tmp_path, env).strip())
        with psycopg.connect(database) as conn:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None and in_duckdb == row[0] > 0, table
