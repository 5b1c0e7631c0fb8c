"""Stopping long commands cleanly: SIGINT and SIGTERM end the work between two units, never inside one."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["stop_signals"]


@contextmanager
def stop_signals(stop: threading.Event, received: list[str]) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` (and name themselves in ``received``) instead of ending the process: the
    work checks ``stop`` between units, each of which is written whole. Outside the main thread (a test driving a
    command from a worker thread), nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
