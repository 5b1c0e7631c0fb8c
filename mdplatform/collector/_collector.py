"""A collector: one exchange, its subscriptions spread over connections, and their status."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import anyio

from .._time import iso_ns
from ..exchanges import Subscription, get_exchange
from ..history import RestClient
from ._config import ExchangeCollectorConfig
from ._connection import Connection, RawSink
from ._gate import ConnectGate

__all__ = ["ExchangeCollector", "create_collector", "gate_for"]

log = logging.getLogger("mdplatform.collector")


class ExchangeCollector:
    def __init__(self, config: ExchangeCollectorConfig, sink: RawSink, gate: ConnectGate | None = None) -> None:
        """``gate``: the exchange's connection rate, shared with other collectors of the same exchange (default:
        one of its own, at ``connects_per_s`` or the exchange's documented rate)."""
        config.validate()
        self.config = config
        self.exchange = get_exchange(config.exchange)
        self.sink = sink
        self.gate = gate or gate_for(config)
        subs = [Subscription(ch, sym) for sym in config.symbols for ch in config.channels]
        # the config's share, within what the exchange serves on one connection
        limit = self.exchange.capabilities.streams_per_connection
        n = min(config.max_streams_per_connection, limit) if limit else config.max_streams_per_connection
        self._shards: list[Sequence[Subscription]] = [subs[i : i + n] for i in range(0, len(subs), n)]
        self.connections: list[Connection] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._rest: RestClient | None = None
        self._started_ns = 0
        self._stopping = False
        #: connection tasks the supervisor started again after they ended unasked
        self.restarts = 0

    async def start(self) -> None:
        self._rest = RestClient(timeout_s=10.0)  # owns its HTTP client
        # the HTTP client's async backend (anyio, under httpx) is imported at its first use: now, before any frame
        # arrives, rather than at the first book snapshot, which would stall every connection's receive loop for
        # tens to hundreds of milliseconds
        anyio.Event()
        self._started_ns = time.time_ns()
        for shard in self._shards:
            conn = Connection(self.exchange, self.config, shard, self.sink, self._rest, self.gate)
            self.connections.append(conn)
            self._tasks.append(self._supervise(conn))

    def _supervise(self, conn: Connection) -> asyncio.Task[None]:
        """Run ``conn``; should its task ever end unasked (its loop reconnects on every error, so only a bug gets
        here), log why and start it again: a connection never stops silently."""
        task = asyncio.create_task(conn.run(), name=f"{self.exchange.id}-conn")

        def ended(done: asyncio.Task[None]) -> None:
            if self._stopping or done.cancelled():
                return
            exc = done.exception()
            reason = f"{type(exc).__name__}: {exc}" if exc else "returned"
            log.error("%s: connection task ended (%s): started again", self.exchange.id, reason)
            conn.counters.errors += 1
            conn.counters.last_error = f"connection task ended ({reason}); started again"
            self.restarts += 1
            self._tasks[self._tasks.index(done)] = self._supervise(conn)

        task.add_done_callback(ended)
        return task

    async def stop(self) -> None:
        self._stopping = True
        await asyncio.gather(*(c.stop() for c in self.connections), return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._rest is not None:
            await self._rest.aclose()

    def _total(self, name: str) -> int:
        return sum(int(getattr(c.counters, name)) for c in self.connections)

    def get_status(self) -> dict[str, Any]:
        last = max((c.counters.last_message_ns for c in self.connections), default=0)
        sync: dict[str, str] = {}
        for conn in self.connections:
            if conn.session is not None:
                sync.update(conn.session.sync_state())
        return {
            "exchange": self.exchange.id,
            "symbols": list(self.config.symbols),
            "channels": list(self.config.channels),
            "messages_received": self._total("messages_received"),
            "messages_processed": self._total("messages_processed"),
            "errors": self._total("errors"),
            "frame_errors": self._total("frame_errors"),
            "reconnects": self._total("reconnects"),
            "sync_errors": self._total("sync_errors"),
            "sub_errors": self._total("sub_errors"),
            "snapshots": self._total("snapshots"),
            "restarts": self.restarts,
            "connect_waits": self.gate.waits,
            "last_message_time": iso_ns(last),
            "uptime_s": round((time.time_ns() - self._started_ns) / 1e9, 3) if self._started_ns else 0.0,
            "book_sync": sync,
            "connections": [c.counters.as_dict() for c in self.connections],
        }

    def get_health_status(self) -> dict[str, Any]:
        """healthy: every connection up, data within the watchdog window, no subscription refused on it, every
        book in sync."""
        status = self.get_status()
        now = time.time_ns()
        idle = self.config.idle_timeout_s or self.exchange.keepalive.idle_timeout_s
        problems: list[str] = []
        for conn in self.connections:
            c = conn.counters
            if c.state != "connected":
                problems.append(f"{c.conn_id or 'connection'} is {c.state}")
            elif (now - c.last_message_ns) / 1e9 > idle:
                problems.append(f"{c.conn_id} silent for {(now - c.last_message_ns) / 1e9:.0f}s")
            problems += [f"{c.conn_id}: subscription refused: {detail}" for detail in c.refused]
        problems += [f"{sym} book {state}" for sym, state in status["book_sync"].items() if state != "synced"]
        health = {
            k: status[k]
            for k in (
                "exchange",
                "messages_received",
                "messages_processed",
                "errors",
                "frame_errors",
                "reconnects",
                "sub_errors",
                "last_message_time",
                "uptime_s",
            )
        }
        health["status"] = "healthy" if not problems else "degraded"
        health["problems"] = problems
        return health


def gate_for(config: ExchangeCollectorConfig) -> ConnectGate:
    """The connection rate of ``config``'s exchange: its documented one, or ``connects_per_s``."""
    keepalive = get_exchange(config.exchange).keepalive
    return ConnectGate(config.connects_per_s or keepalive.connects_per_s, keepalive.connect_burst)


def create_collector(
    config: ExchangeCollectorConfig, sink: RawSink, gate: ConnectGate | None = None
) -> ExchangeCollector:
    """The factory: every registered exchange is collected by the same machinery."""
    return ExchangeCollector(config, sink, gate)
