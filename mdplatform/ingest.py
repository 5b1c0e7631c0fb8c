"""The ingestor: collectors in, raw lake out, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from .collector import CollectorManager, IngestConfig
from .lake import RawWriter

__all__ = ["IngestResult", "Ingestor", "ingest"]

log = logging.getLogger("mdplatform.ingest")


@dataclass(frozen=True)
class IngestResult:
    status: dict[str, Any]
    rows_written: int
    files_written: int
    #: rows of the lake's ``events/`` table (the collectors' open/subscribed/alive/close... bookkeeping)
    events_written: int = 0


class Ingestor:
    """Every configured collector writing into one raw-lake writer (frames to ``raw/``, the collectors' events to
    ``events/``).

    Closed minutes are written about once a second; on the way out every buffered row is written.
    """

    def __init__(self, config: IngestConfig, *, lake: str | None = None, status_every_s: float = 10.0) -> None:
        self.config = config
        self.writer = RawWriter(lake or config.lake)
        self.manager = CollectorManager(config.collectors, self.writer)
        self.status_every_s = status_every_s

    async def run(self, *, stop: asyncio.Event | None = None, duration_s: float | None = None) -> IngestResult:
        """Until ``stop`` is set, SIGINT/SIGTERM (in the main thread), or ``duration_s`` has passed."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                pass
        deadline = None if duration_s is None else time.monotonic() + duration_s
        last_status = time.monotonic()
        await self.manager.start()
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                self.writer.flush_closed()
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if time.monotonic() - last_status >= self.status_every_s:
                    last_status = time.monotonic()
                    self.report()
        finally:
            await self.manager.stop()
            await asyncio.to_thread(self.writer.close)
            for sig in handled:
                loop.remove_signal_handler(sig)
        self.report()
        stats = self.writer.stats
        return IngestResult(self.manager.get_status(), stats.rows_written, stats.files_written, stats.events_written)

    def report(self) -> None:
        status = self.manager.get_status()
        log.info(
            "received=%d processed=%d errors=%d reconnects=%d written=%d",
            status["messages_received"],
            status["messages_processed"],
            status["errors"],
            status["reconnects"],
            self.writer.stats.rows_written,
        )
        path = self.config.status_file
        if path:
            tmp = f"{path}.tmp"
            with open(tmp, "w") as fh:
                json.dump({"status": status, "health": self.manager.get_health_status()}, fh, indent=2)
            os.replace(tmp, path)


async def ingest(
    config: IngestConfig,
    *,
    lake: str | None = None,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    status_every_s: float = 10.0,
) -> IngestResult:
    return await Ingestor(config, lake=lake, status_every_s=status_every_s).run(stop=stop, duration_s=duration_s)
