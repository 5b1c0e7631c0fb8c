"""The ingestor: collectors in, raw lake out, until stopped."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from .collector import CollectorManager, IngestConfig
from .lake import RawWriter

__all__ = ["IngestResult", "ingest"]

log = logging.getLogger("mdplatform.ingest")


@dataclass(frozen=True)
class IngestResult:
    status: dict[str, Any]
    rows_written: int
    files_written: int


async def ingest(
    config: IngestConfig,
    *,
    lake: str | None = None,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    status_every_s: float = 10.0,
) -> IngestResult:
    """Run every configured collector into the raw lake until ``stop`` is set, SIGINT/SIGTERM, or ``duration_s``.

    Closed minutes are written about once a second; on the way out every buffered row is written.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    writer = RawWriter(lake or config.lake)
    manager = CollectorManager(config.collectors, writer)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    last_status = 0.0
    await manager.start()
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            writer.flush_closed()
            if deadline is not None and time.monotonic() >= deadline:
                break
            if time.monotonic() - last_status >= status_every_s:
                last_status = time.monotonic()
                _report(manager, config.status_file)
    finally:
        await manager.stop()
        await asyncio.to_thread(writer.close)
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
    status = manager.get_status()
    _report(manager, config.status_file)
    return IngestResult(status, writer.stats.rows_written, writer.stats.files_written)


def _report(manager: CollectorManager, status_file: str | None) -> None:
    status = manager.get_status()
    log.info(
        "received=%d processed=%d errors=%d reconnects=%d",
        status["messages_received"],
        status["messages_processed"],
        status["errors"],
        status["reconnects"],
    )
    if status_file:
        tmp = f"{status_file}.tmp"
        with open(tmp, "w") as fh:
            json.dump({"status": status, "health": manager.get_health_status()}, fh, indent=2)
        os.replace(tmp, status_file)
