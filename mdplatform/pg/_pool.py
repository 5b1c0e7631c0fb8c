"""One connection pool per DSN for the loads (hourly assets reuse connections across runs in a process)."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from ._dsn import database_error, redact_dsn

__all__ = ["close_pools", "connect", "pool", "pooled"]

#: seconds to wait for a connection (a dead server must fail the hour, not hang it)
CONNECT_TIMEOUT = 10
_POOLS: dict[str, ConnectionPool] = {}
_LOCK = threading.Lock()


def connect(dsn: str) -> psycopg.Connection:
    """A fresh connection (migrations and ``info``: one-shot commands that must report why a connection fails,
    which a pool's timeout would hide)."""
    try:
        return psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT, application_name="mdplatform")
    except psycopg.Error as exc:
        raise database_error(dsn, "connecting", exc) from None


def pool(dsn: str, max_size: int = 4) -> ConnectionPool:
    """The process's pool for ``dsn``, opened on first use after one direct connection proves the DSN works (so a
    wrong password or host is reported as such, not as a pool timeout)."""
    with _LOCK:
        found = _POOLS.get(dsn)
        if found is not None:
            return found
        connect(dsn).close()
        created = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT,
            name=redact_dsn(dsn),  # the pool logs its name: never the DSN itself
            kwargs={"application_name": "mdplatform", "connect_timeout": CONNECT_TIMEOUT},
            open=True,
        )
        _POOLS[dsn] = created
        return created


@contextmanager
def pooled(dsn: str) -> Iterator[psycopg.Connection]:
    with pool(dsn).connection() as conn:
        yield conn


def close_pools(dsn: str | None = None) -> None:
    """Close the pool of ``dsn``, or every pool of this process (before dropping a database; at exit)."""
    with _LOCK:
        keys = [dsn] if dsn is not None else list(_POOLS)
        pools = [p for p in (_POOLS.pop(k, None) for k in keys) if p is not None]
    for p in pools:
        p.close()


atexit.register(close_pools)
