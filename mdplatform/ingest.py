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
from typing import TYPE_CHECKING, Any

from ._time import iso_ns
from .collector import (
    CollectorManager,
    ConfigError,
    IngestConfig,
    Rates,
    StatusServer,
    connection_rows,
    never_connected,
    status_http,
)
from .lake import JournalError, RawWriter, filesystem, is_local, lake_root

if TYPE_CHECKING:
    from .pg import StatusWriter

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

    While it runs it serves ``/health`` and ``/metrics`` (``status_http``, on by default on 127.0.0.1:9180; when
    the address is taken it says so and collects without them), and every ``status_every_s`` writes
    ``status_file`` and, with a PostgreSQL DSN (``pg_dsn``, ``$MDP_PG_DSN``), ``collector_status`` rows.

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
        self.http_address = status_http(config)
        #: the running /health and /metrics server (None: off, or its address was taken)
        self.http: StatusServer | None = None
        self.pg: StatusWriter | None = None
        dsn = config.pg_dsn or os.environ.get("MDP_PG_DSN")
        if dsn:
            from .pg import PgConfigError, StatusWriter

            try:
                self.pg = StatusWriter(dsn)
            except PgConfigError as exc:
                if config.pg_dsn:
                    raise ConfigError(f"pg_dsn: {exc}") from None
                # the environment's DSN may be meant for another client (a SQLAlchemy URL): collect without it
                log.error("$MDP_PG_DSN: %s: collector_status is not written", exc)
        self.writer = RawWriter(
            root,
            writer_id=writer_id(config),
            max_rows=max_rows,
            journal=journal_dir(config.journal, root),
            journal_budget_bytes=int(config.journal_budget_mb * 2**20),
        )
        self.manager = CollectorManager(collectors, self.writer)
        self.status_every_s = status_every_s
        self.rates = Rates()

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
            self._serve(loop)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=TICK_S)
                self.rates.sample(time.monotonic(), self._counts)
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
            if self.http is not None:
                await asyncio.to_thread(self.http.close)
        self.report(failure)
        if self.pg is not None:
            await asyncio.to_thread(self.pg.close)  # the last rows (state "stopped") are written
        stats = self.writer.stats
        return IngestResult(
            self.status(), stats.rows_written, stats.files_written, stats.events_written, failure=failure
        )

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.http_address is None:
            return
        server = StatusServer(self.health, loop, *self.http_address)
        try:
            server.start()
        except OSError as exc:
            # collecting matters more than watching it: a second ingestor on the host, a port in use
            log.error("cannot serve /health and /metrics on %s:%s (%s): set status_http", *self.http_address, exc)
            return
        self.http = server
        log.info("health on %s/health, metrics on %s/metrics", server.url, server.url)

    def _counts(self) -> list[tuple[object, int]]:
        return [(c, c.counters.messages_received) for col in self.manager.collectors for c in col.connections]

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
        """The collectors' health and the lake's, with a row per connection (``connections``): down while a
        collector has never connected, degraded while a connection is not up or silent, a book is out of sync or
        the lake is failing or catching up (the reasons in ``problems``), stopped once collection stopped on its
        own. What ``/health``, ``/metrics``, the status file, ``collector_status`` and ``mdp status`` show."""
        now_ns, now_s = time.time_ns(), time.monotonic()
        health = self.manager.get_health_status()
        collectors = self.manager.collectors
        lake = self.writer.health()
        stats = self.writer.stats
        lake |= {"frames_appended": stats.rows_appended, "frames_written": stats.rows_written}
        journal = self.writer.journal
        if journal is not None:
            lake |= {"journal_bytes": journal.bytes_on_disk, "journal_budget_bytes": journal.budget_bytes}
        health |= {
            "time": iso_ns(now_ns),
            "writer": self.writer.writer_id,
            "every_s": self.status_every_s,
            "connections": connection_rows(collectors, self.rates, now_ns, now_s),
            "lake": lake,
        }
        if self.pg is not None:
            health["pg"] = self.pg.health()
        down = never_connected(collectors)
        problems = down + [f"{c['exchange']}: {p}" for c in health["collectors"] for p in c["problems"]]
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
        elif down:
            health["status"] = "down"
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
        if not path and self.pg is None:
            return
        health = self.health(failure)
        if path:
            tmp = f"{path}.tmp"
            with open(tmp, "w") as fh:
                json.dump({"status": self.status(), "health": health}, fh, indent=2)
            os.replace(tmp, path)
        if self.pg is not None:
            self.pg.submit(health)


async def ingest(
    config: IngestConfig,
    *,
    lake: str | None = None,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    status_every_s: float = 10.0,
) -> IngestResult:
    return await Ingestor(config, lake=lake, status_every_s=status_every_s).run(stop=stop, duration_s=duration_s)
