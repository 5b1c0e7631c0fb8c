"""A PostgreSQL server for the sink's tests and a fresh database per test module, dropped after.

The server: ``$MDP_PG_TEST_DSN`` or the machine's PostgreSQL on 127.0.0.1:5432 (user postgres); failing that, a
throwaway cluster started from the local binaries (initdb refuses root, so it runs as the postgres user); failing
that the tests skip, except under CI=true where skipping would pass without testing anything.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from mdplatform.pg import close_pools

DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(dsn: str) -> bool:
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _throwaway_cluster() -> tuple[str, Callable[[], None]] | None:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        return None
    root = Path(tempfile.mkdtemp(prefix="mdp-pg-"))
    os.chmod(root, 0o777)  # the postgres user writes its data directory and socket here
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-U", "postgres", "-A", "trust"]), check=True, capture_output=True
    )
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                      f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"]),
        check=True, capture_output=True,
    )  # fmt: skip

    def stop() -> None:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[str]:
    """A DSN of the server's ``postgres`` database, as a superuser."""
    dsn = os.environ.get("MDP_PG_TEST_DSN", DEFAULT_ADMIN)
    if _reachable(dsn):
        yield dsn
        return
    started = _throwaway_cluster()
    if started is None:
        message = f"no PostgreSQL at {dsn} and no initdb/pg_ctl to start one (set MDP_PG_TEST_DSN)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    admin, stop = started
    try:
        yield admin
    finally:
        stop()


def _with_db(admin: str, name: str) -> str:
    return str(psycopg.conninfo.make_conninfo(admin, dbname=name))


@contextmanager
def _database(admin: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new empty database (unique name after the test module), dropped after."""
    name = f"mdp_test_{request.module.__name__.rsplit('.', 1)[-1].removeprefix('test_')}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = _with_db(admin, name)
    try:
        yield dsn
    finally:
        close_pools(dsn)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def pg_dsn(pg_admin: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of its own for the test module, dropped after it."""
    with _database(pg_admin, request) as dsn:
        yield dsn


@pytest.fixture
def fresh_dsn(pg_admin: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of its own for the test (a migration path from an older state), dropped after it."""
    with _database(pg_admin, request) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def migrated(pg_dsn: str) -> str:
    from mdplatform.pg import migrate

    migrate(pg_dsn)
    return pg_dsn
