"""One WebSocket connection kept alive: connect, subscribe, receive, land, reconnect.

A single task owns the connection and is the only place that reconnects, so there is never more than one
reconnect under way per connection: the watchdog and keep-alive only close the socket and let that task notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from ..exchanges import Exchange, SessionAction, StreamSession, Subscription
from ._config import ExchangeCollectorConfig
from ._status import ConnectionCounters

__all__ = ["Connection", "RawSink"]

log = logging.getLogger("mdplatform.collector")

SNAPSHOT_CHANNEL = "depthSnapshot"


class RawSink(Protocol):
    def append(
        self, recv_ts: int, exchange: str, channel: str, symbol: str, conn_id: str, seq: int, payload: str
    ) -> None: ...


class Connection:
    def __init__(
        self,
        exchange: Exchange,
        config: ExchangeCollectorConfig,
        subs: Sequence[Subscription],
        sink: RawSink,
        http: httpx.AsyncClient,
    ) -> None:
        self.exchange = exchange
        self.config = config
        self.subs = tuple(subs)
        self.sink = sink
        self.http = http
        self.counters = ConnectionCounters()
        self.session: StreamSession | None = None
        self._ws: ClientConnection | None = None
        self._stopping = asyncio.Event()
        self._session_channels = exchange.capabilities.book_channels
        self._keepalive = exchange.keepalive
        self._idle_timeout = config.idle_timeout_s or exchange.keepalive.idle_timeout_s
        self._rest_seq = 0
        self._closed_idle = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Connect and reconnect (exponential backoff with jitter) until ``stop``."""
        attempt = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                await self._connect_once()
            except (TimeoutError, OSError, WebSocketException, httpx.HTTPError) as exc:
                if not self._stopping.is_set():  # a close we asked for is not an error
                    self._error(f"connection failed: {type(exc).__name__}: {exc}")
            finally:
                await self._cancel_tasks()
                self._ws = None
            if self._stopping.is_set():
                break
            if time.monotonic() - started >= self.config.reconnect_reset_after_s:
                attempt = 0
            delay = min(self.config.reconnect_max_s, self.config.reconnect_initial_s * 2**attempt)
            delay *= random.uniform(0.5, 1.0)
            attempt += 1
            self.counters.state = "backoff"
            log.info("%s: reconnecting in %.2fs", self.exchange.id, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            if not self._stopping.is_set():
                self.counters.reconnects += 1
        self.counters.state = "stopped"

    async def stop(self) -> None:
        self._stopping.set()
        ws = self._ws
        if ws is not None:
            await ws.close()

    async def _connect_once(self) -> None:
        c = self.counters
        ws_url = self.config.ws_url or self.exchange.ws_url
        url = self.exchange.connect_url(self.subs, ws_url)
        c.state, c.url = "connecting", url
        conn_id = f"{self.exchange.id}-{uuid.uuid4().hex[:12]}"
        client_ping = self._keepalive.client_ping
        async with connect(
            url,
            compression=None,  # permessage-deflate halves receive throughput
            max_size=2**24,
            max_queue=4096,
            open_timeout=10,
            close_timeout=2,
            ping_interval=None if client_ping else 20,
            ping_timeout=None if client_ping else 20,
        ) as ws:
            self._ws = ws
            self.session = self.exchange.new_session(self.subs, self.config.rest_url or self.exchange.rest_url)
            for message in self.exchange.subscribe_messages(self.subs):
                await ws.send(message)
            now = time.time_ns()
            c.conn_id, c.state, c.connected_since_ns, c.last_message_ns = conn_id, "connected", now, now
            self._rest_seq = 0
            self._closed_idle = False
            self._spawn(self._watchdog(ws))
            log.info("%s: connected %s (%s)", self.exchange.id, conn_id, url)
            await self._receive(ws, conn_id)
        if not self._stopping.is_set() and not self._closed_idle:
            self._error(f"connection {conn_id} closed: {ws.close_code} {ws.close_reason or ''}".rstrip())

    async def _receive(self, ws: ClientConnection, conn_id: str) -> None:
        # the hot path: keep per-frame work to routing, one append and two counters
        c = self.counters
        exchange_id = self.exchange.id
        route = self.exchange.route
        append = self.sink.append
        session_channels = self._session_channels
        session = self.session
        assert session is not None
        now = time.time_ns
        seq = 0
        async for frame in ws:
            recv = now()
            if not isinstance(frame, str):
                frame = frame.decode()
            seq += 1
            c.messages_received += 1
            c.last_message_ns = recv
            channel, symbol = route(frame)
            append(recv, exchange_id, channel, symbol, conn_id, seq, frame)
            if channel in session_channels:
                action = session.on_frame(channel, symbol, frame)
                if action is not None:
                    await self._act(ws, conn_id, action)
            c.messages_processed += 1

    async def _act(self, ws: ClientConnection, conn_id: str, action: SessionAction) -> None:
        if action.error:
            self.counters.sync_errors += 1
            self._error(action.error)
        for message in action.send:
            await ws.send(message)
        if action.fetch_snapshot is not None:
            self._spawn(self._fetch_snapshot(ws, conn_id, *action.fetch_snapshot))

    async def _fetch_snapshot(self, ws: ClientConnection, conn_id: str, symbol: str, url: str) -> None:
        """GET a REST snapshot, land it in the raw layer, hand it to the session; retry with backoff."""
        for attempt in range(6):
            try:
                response = await self.http.get(url)
                response.raise_for_status()
                break
            except httpx.HTTPError as exc:
                self._error(f"snapshot {symbol}: {type(exc).__name__}: {exc}")
                await asyncio.sleep(min(10.0, 0.5 * 2**attempt))
        else:
            await ws.close(code=1011, reason="snapshot unavailable")
            return
        body = response.text
        self._rest_seq += 1
        self.counters.snapshots += 1
        self.sink.append(
            time.time_ns(),
            self.exchange.id,
            SNAPSHOT_CHANNEL,
            symbol,
            f"{conn_id}/rest",
            self._rest_seq,
            body,
        )
        session = self.session
        if session is not None:
            action = session.on_snapshot(symbol, body)
            if action is not None:
                await self._act(ws, conn_id, action)

    async def _watchdog(self, ws: ClientConnection) -> None:
        """Close a silent connection (no data for ``idle_timeout``); send text pings where the exchange wants them."""
        ping = self._keepalive.client_ping
        interval = self.config.ping_interval_s or self._keepalive.interval_s
        last_ping = time.monotonic()
        while True:
            await asyncio.sleep(min(1.0, interval / 2))
            silent_s = (time.time_ns() - self.counters.last_message_ns) / 1e9
            if silent_s > self._idle_timeout:
                self._error(f"no data for {silent_s:.1f}s: closing {self.counters.conn_id}")
                self._closed_idle = True
                await ws.close(code=1001, reason="idle")
                return
            if ping and silent_s >= interval and time.monotonic() - last_ping >= interval:
                last_ping = time.monotonic()
                await ws.send(ping)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._error(f"task failed: {task.exception()!r}")

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _error(self, message: str) -> None:
        self.counters.errors += 1
        self.counters.last_error = message
        log.warning("%s: %s", self.exchange.id, message)
