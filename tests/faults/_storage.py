"""Storage that fails for real: a tmpfs the test mounts for the lake, remounted read-only or filled up. Mounting
needs root with CAP_SYS_ADMIN, as on this project's machines and CI; elsewhere the tests skip, saying why (never
under ``CI=true``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mdplatform.collector import ExchangeCollectorConfig

__all__ = ["Tmpfs", "binance_trades", "tmpfs", "until"]


class Tmpfs:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _mount(self, *args: str) -> None:
        subprocess.run(["mount", *args], check=True, capture_output=True)

    def read_only(self) -> None:
        self._mount("-o", "remount,ro", str(self.path))

    def writable(self) -> None:
        self._mount("-o", "remount,rw", str(self.path))

    def fill(self) -> None:
        """Take every free byte (a file grown until the filesystem refuses)."""
        with open(self.path / "ballast", "wb") as fh:
            chunk = b"\0" * (1 << 20)
            try:
                while True:
                    fh.write(chunk)
                    fh.flush()
            except OSError:
                pass

    def free(self) -> None:
        os.unlink(self.path / "ballast")


@contextmanager
def tmpfs(path: Path, size_mb: int) -> Iterator[Tmpfs]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        message = f"cannot mount a tmpfs for the lake ({done.stderr.strip()}): storage faults need root"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield Tmpfs(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def binance_trades(port: int) -> ExchangeCollectorConfig:
    return ExchangeCollectorConfig(
        exchange="binance",
        symbols=("BTCUSDT",),
        channels=("trade",),
        ws_url=f"ws://127.0.0.1:{port}",
        rest_url=f"http://127.0.0.1:{port}/api/v3/depth",
        reconnect_initial_s=0.1,
        reconnect_max_s=1.0,
    )


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait for ``predicate``; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout}s"
        await asyncio.sleep(0.1)
    return time.monotonic() - start
