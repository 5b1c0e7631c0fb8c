"""The ingestor: collectors in, raw lake out, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .collector import CollectorManager, IngestConfig
from .lake import JournalError, RawWriter, filesystem, is_local, lake_root

__all__ = ["IngestResult", "Ingestor", "ingest", "journal_dir", "writer_id"]

log = logging.getLogger("mdplatform.ingest")

#: how often appended frames are handed to the journal (the most a crash can lose) and closed minutes written
TICK_S = 0.2


def journal_dir(configured: str | None, lake: str | None) -> str:
    """The journal's directory: configured, else ``$MDP_JOURNAL``, else beside a local lake (``<lake>-journal``),
    else ``.mdp-journal/<bucket and prefix>`` in the working directory (an object store cannot hold it). It does
    not depend on the shard: what a crashed ingestor left is replayed by the next one on the host whatever shard
    it runs (the journal holds frames, not subscriptions). Shards on one host each need their own (``--journal``):
    the journal is locked by its ingestor."""
    if configured or os.environ.get("MDP_JOURNAL"):
        return os.path.abspath(configured or os.environ["MDP_JOURNAL"])
    root = lake_root(lake)
    fs, path = filesystem(root)
    if is_local(fs):
        return f"{path}-journal"
    return os.path.abspath(os.path.join(".mdp-journal", path.strip("/").replace("/", "_")))


def writer_id(config: IngestConfig) -> str:
    """``<UTC start>-<name>[-s<index>of<count>]-<random>``: the name (config ``writer``, else the host name) and the
    shard say which ingestor wrote a lake file or a landing manifest; the start time orders a journal's leftover
    writers (``Journal.leftovers``) and the random part keeps two runs of one host apart (a restarted ingestor must
    not take its predecessor's journal folder for its own)."""
    name = config.writer or re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())[:63] or "host"
    if config.shard is not None:
        name += f"-s{config.shard.index}of{config.shard.count}"
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{name}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class IngestResult:
    status: dict[str, Any]
    rows_written: int
    files_written: int
    #: rows of the lake's ``events/`` table (the collectors' open/subscribed/alive/close... bookkeeping)
    events_written: int = 0
    #: why collection stopped on its own (the journal's disk budget exhausted); None when asked to stop
    failure: str | None = None


class Ingestor:
    """Every configured collector writing into one raw-lake writer (frames to ``raw/``, the collectors' events to
    ``events/``) through a write-ahead journal on local disk.

    Every ``TICK_S`` the frames received since the last tick go to the journal and closed minutes to the lake; on
    start, what an earlier run left in the journal (a crash, a lake that was failing) is written first; on the way
    out every buffered row is written. Collection stops on its own only when the journal's disk budget is
    exhausted (``IngestResult.failure`` says so).
    """

    def __init__(
        self, config: IngestConfig, *, lake: str | None = None, status_every_s: float = 10.0, max_rows: int = 50_000
    ) -> None:
        """``max_rows``: rows per lake file at most (a minute with more is written in several, as it fills)."""
        self.config = config
        root = lake or config.lake
        collectors = config.assigned()  # before anything opens: a shard with nothing to collect is a config error
        self.writer = RawWriter(
            root,
            writer_id=writer_id(config),
            max_rows=max_rows,
            journal=journal_dir(config.journal, root),
            journal_budget_bytes=int(config.journal_budget_mb * 2**20),
        )
        self.manager = CollectorManager(collectors, self.writer)
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
        failure: str | None = None
        await self.manager.start()
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=TICK_S)
                try:
                    self.writer.tick()
                except JournalError as exc:
                    failure = str(exc)
                    log.critical("%s", failure)
                    break
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
        self.report(failure)
        stats = self.writer.stats
        return IngestResult(
            self.status(), stats.rows_written, stats.files_written, stats.events_written, failure=failure
        )

    def status(self) -> dict[str, Any]:
        shard = self.config.shard
        return self.manager.get_status() | {
            "writer": self.writer.writer_id,
            "shard": None
            if shard is None
            else {"index": shard.index, "count": shard.count, "replicas": shard.replicas},
            "lake": self.writer.health(),
        }

    def health(self, failure: str | None = None) -> dict[str, Any]:
        """The collectors' health and the lake's: degraded while the lake is failing or catching up (reason in
        ``problems``), stopped once collection stopped on its own."""
        health = self.manager.get_health_status()
        lake = self.writer.health()
        health["lake"] = lake
        problems = list(health.get("problems", []))
        if lake["state"] == "failing":
            problems.append(
                f"lake not writable since {lake['failing_since']}: {lake['last_error']}; "
                f"{lake.get('journal_mb', 0)} of {lake.get('journal_budget_mb', 0)} MiB journal budget used"
            )
        elif lake["state"] == "catching up":
            problems.append(f"writing {lake.get('backlog_segments', 0)} journal segment(s) to the lake")
        if failure:
            problems.append(failure)
            health["status"] = "stopped"
        elif problems:
            health["status"] = "degraded"
        health["problems"] = problems
        return health

    def report(self, failure: str | None = None) -> None:
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
                json.dump({"status": self.status(), "health": self.health(failure)}, fh, indent=2)
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
