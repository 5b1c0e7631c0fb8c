"""One WebSocket connection kept alive: connect, subscribe, receive, land, reconnect.

A single task owns the connection and is the only place that reconnects, so there is never more than one
reconnect under way per connection: the watchdog and keep-alive only close the socket and let that task notice.

Beside the frames, the connection records its own bookkeeping in the lake's ``events/`` table (``RawSink.event``):
``open`` (detail: URL); ``subscribed`` per stream (at open when the URL carries the streams, else from the
exchange's acks), restated with the first ``alive`` of every receive minute; ``start`` at the first frame carrying
an exchange time; ``alive`` every ``liveness_interval_s`` when the pong of a WebSocket ping comes back (recv_ts:
when the ping was sent, so every frame the server sent before it has arrived); ``sub_error``/``unsubscribed``
from acks; what the book session reports (``gap``, ``checksum``, ``synced``); ``frame_error`` for a landed frame
that cannot be read or interpreted (its own ``seq``, the reason: it is quarantined); ``close`` (detail: why). Every
event carries ``seq`` (frames landed on the connection so far) and the newest exchange time known with the
receive time of the frame that carried it: the largest seen, looked up in the last frame landed whenever an event
is recorded (a frame without a time, e.g. a spot bookTicker, keeps what was known), so the receive loop only
keeps a reference to its last frame.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.frames import CloseCode

from .._time import MINUTE_NS
from ..exchanges import (
    ALIVE,
    CLOSE,
    FRAME_ERROR,
    GAP,
    OPEN,
    START,
    SUB_ERROR,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Exchange,
    SessionAction,
    StreamSession,
    Subscription,
)
from ..history import RestClient, RestError
from ._config import ExchangeCollectorConfig
from ._gate import ConnectGate
from ._status import ConnectionCounters

__all__ = ["Connection", "RawSink"]

log = logging.getLogger("mdplatform.collector")
#: the WebSocket library's own log: at DEBUG it writes the handshake's headers, an Authorization header made of the
#: URL's credentials included, so it is kept at INFO whatever the root level
_WS_LOG = logging.getLogger("mdplatform.collector.websockets")
_WS_LOG.setLevel(logging.INFO)

SNAPSHOT_CHANNEL = "depthSnapshot"
#: the exchange modules' channel for acks, errors and pongs
CONTROL_CHANNEL = "control"
#: where a binary frame that is not UTF-8 is landed, base64-encoded (the raw payload column is text)
BINARY_CHANNEL = "binary"
#: the largest frame accepted; a larger one makes the library close the connection with 1009 (a runaway or hostile
#: server must not exhaust memory), and the frame is lost
MAX_FRAME_BYTES = 2**24

#: (channel, symbol) of a subscribed stream
_Stream = tuple[str, str]
#: (exchange_ts, frame_recv_ts) of the newest frame carrying an exchange time
_Newest = tuple[int | None, int | None]


class RawSink(Protocol):
    def append(
        self, recv_ts: int, exchange: str, channel: str, symbol: str, conn_id: str, seq: int, payload: str
    ) -> None: ...

    def event(
        self,
        recv_ts: int,
        exchange: str,
        conn_id: str,
        kind: str,
        channel: str,
        symbol: str,
        seq: int,
        exchange_ts: int | None,
        frame_recv_ts: int | None,
        detail: str,
    ) -> None: ...


def _failure(exc: BaseException) -> str:
    """Why a connection failed, in words: a frame over the size limit is named as such (the library's close
    reason alone reads like a protocol error)."""
    sent = exc.sent if isinstance(exc, ConnectionClosed) else None
    if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG:
        limit = f"{MAX_FRAME_BYTES / 2**20:g} MiB"
        return f"a frame over the {limit} size limit was refused ({sent.reason}): closed with {int(sent.code)}"
    return f"{type(exc).__name__}: {exc}"


class _Last:
    """The last frame landed (its receive time is ``ConnectionCounters.last_message_ns``) and the newest exchange
    time known: the receive loop only stores the frame; the time is looked up when an event needs it."""

    __slots__ = ("exchange_ts", "frame", "frame_recv_ts")

    def __init__(self) -> None:
        self.frame: str | None = None
        self.exchange_ts: int | None = None
        self.frame_recv_ts: int | None = None


class Connection:
    def __init__(
        self,
        exchange: Exchange,
        config: ExchangeCollectorConfig,
        subs: Sequence[Subscription],
        sink: RawSink,
        rest: RestClient,
        gate: ConnectGate,
    ) -> None:
        self.exchange = exchange
        #: connection attempts of the exchange, spread to the rate it accepts (shared by its connections)
        self.gate = gate
        self.config = config
        self.subs = tuple(subs)
        self.sink = sink
        #: REST calls (book snapshots) go through one limiter per host, shared by the collector's connections
        self.rest = rest
        self.counters = ConnectionCounters()
        self.session: StreamSession | None = None
        self._ws: ClientConnection | None = None
        self._stopping = asyncio.Event()
        caps = exchange.capabilities
        self._subscribe_ack = caps.subscribe_ack
        #: channels the receive loop looks at beyond landing: book channels (the session) and control frames (acks,
        #: and refusals: an exchange that takes its streams from the URL still answers a bad request with an error)
        self._watch = caps.book_channels | {CONTROL_CHANNEL}
        self._keepalive = exchange.keepalive
        self._idle_timeout = config.idle_timeout_s or exchange.keepalive.idle_timeout_s
        self._rest_seq = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # per connection (reset on every connect)
        self._conn_id = ""
        self._seq_base = 0
        self._last = _Last()
        self._subscribed: dict[_Stream, None] = {}
        self._stated: dict[_Stream, int] = {}  # stream -> receive minute it was last recorded as subscribed
        self._alive_minute = -1
        #: why the connection is being closed from our side (idle watchdog, missing pong)
        self._close_reason: str | None = None

    async def run(self) -> None:
        """Connect and reconnect (exponential backoff with jitter) until ``stop``."""
        attempt = 0
        while not self._stopping.is_set():
            received = self.counters.messages_received
            if not await self._slot():
                break
            try:
                await self._connect_once()
            except (TimeoutError, OSError, WebSocketException, httpx.HTTPError) as exc:
                if not self._stopping.is_set():  # a close we asked for is not an error
                    self._error(f"connection failed: {_failure(exc)}")
            except Exception as exc:
                # whatever escaped (a bug, something nobody expected): this connection reconnects, collection goes on
                log.exception("%s: connection loop failed", self.exchange.id)
                self._error(f"connection loop failed: {type(exc).__name__}: {exc}")
            finally:
                await self._cancel_tasks()
                self._ws = None
            if self._stopping.is_set():
                break
            # a connection that delivered data was a working one: the next failure starts the backoff over (a
            # flapping link must not stretch the outages beyond the network's own)
            if self.counters.messages_received > received:
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

    async def _slot(self) -> bool:
        """Wait for the exchange's connection gate; False when stopped meanwhile."""
        slot = asyncio.ensure_future(self.gate.acquire())
        stopping = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait({slot, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (slot, stopping):
            if task not in done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return slot in done and not self._stopping.is_set()

    async def stop(self) -> None:
        self._stopping.set()
        ws = self._ws
        if ws is not None:
            await ws.close()

    async def _connect_once(self) -> None:
        c = self.counters
        ws_url = self.config.ws_url or self.exchange.ws_url
        url = self.exchange.connect_url(self.subs, ws_url)
        shown = _shown(url)  # what status, logs and the lake may hold: no credentials
        c.state, c.url = "connecting", shown
        conn_id = f"{self.exchange.id}-{uuid.uuid4().hex[:12]}"
        async with connect(
            url,
            compression=None,  # permessage-deflate halves receive throughput
            max_size=MAX_FRAME_BYTES,
            max_queue=4096,
            open_timeout=10,
            close_timeout=2,
            # the liveness loop pings (and records each pong as an ``alive`` event) instead of the library
            ping_interval=None,
            ping_timeout=None,
            logger=_WS_LOG,
        ) as ws:
            self._ws = ws
            now = time.time_ns()
            self._begin(conn_id, now)
            c.conn_id, c.connected_since_ns, c.last_message_ns = conn_id, now, now
            self._event(OPEN, detail=shown, recv_ts=now)
            failure: str | None = None
            try:
                self.session = self.exchange.new_session(self.subs, self.config.rest_url or self.exchange.rest_url)
                if not self._subscribe_ack:  # the streams named in the URL are live with the connection
                    for sub in dict.fromkeys(self.subs):
                        self._subscribe((sub.channel, sub.symbol), now)
                for message in self.exchange.subscribe_messages(self.subs):
                    await ws.send(message)
                c.state = "connected"
                self._spawn(self._watchdog(ws))
                self._spawn(self._liveness(ws))
                log.info("%s: connected %s (%s)", self.exchange.id, conn_id, shown)
                await self._receive(ws, conn_id)
            except asyncio.CancelledError:
                failure = "cancelled"
                raise
            except BaseException as exc:
                failure = _failure(exc)
                raise
            finally:
                self._end(ws, failure)
        if not self._stopping.is_set() and self._close_reason is None:
            self._error(f"connection {conn_id} closed: {ws.close_code} {ws.close_reason or ''}".rstrip())

    def _begin(self, conn_id: str, now: int) -> None:
        """Fresh per-connection state."""
        self._conn_id = conn_id
        self._seq_base = self.counters.messages_received
        self._rest_seq = 0
        self._last = _Last()
        self._subscribed = {}
        self._stated = {}
        self._alive_minute = now - now % MINUTE_NS
        self._close_reason = None
        self.counters.refused = []
        self.counters.subscribed = 0

    def _end(self, ws: ClientConnection, failure: str | None) -> None:
        """Record why the connection ended."""
        if self._stopping.is_set():
            reason = "stopped"
        elif self._close_reason is not None:
            reason = self._close_reason
        elif failure is not None:
            reason = failure
        else:
            reason = f"closed by the server: {ws.close_code} {ws.close_reason or ''}".rstrip()
        self._event(CLOSE, detail=reason)
        self._subscribed = {}
        self.counters.subscribed = 0

    async def _receive(self, ws: ClientConnection, conn_id: str) -> None:
        # the hot path: keep per-frame work to routing, one append, two counters, one reference to the frame
        # (for the liveness check) and, once the first exchange time was seen, one boolean test
        c = self.counters
        exchange_id = self.exchange.id
        route = self.exchange.route
        append = self.sink.append
        watch = self._watch
        session = self.session
        assert session is not None
        last = self._last
        now = time.time_ns
        started = False
        seq = 0
        async for message in ws:
            recv = now()
            seq += 1
            c.messages_received += 1
            c.last_message_ns = recv
            if isinstance(message, str):
                frame = message
            else:
                try:
                    frame = message.decode()
                except UnicodeDecodeError as exc:
                    # landed exactly (base64) and quarantined; nothing can be read from it
                    append(recv, exchange_id, BINARY_CHANNEL, "", conn_id, seq, base64.b64encode(message).decode())
                    self._quarantine(BINARY_CHANNEL, "", seq, recv, f"is not UTF-8 ({exc.reason} at byte {exc.start}): "
                                     f"landed base64-encoded in channel {BINARY_CHANNEL!r}")  # fmt: skip
                    continue
            last.frame = frame
            channel, symbol = route(frame)
            # landed before it is interpreted: whatever happens next, the frame is in the lake
            append(recv, exchange_id, channel, symbol, conn_id, seq, frame)
            try:
                if not started:
                    started = self._start(frame, recv)
                if channel in watch:
                    if channel == CONTROL_CHANNEL:
                        self._control(frame, recv)
                    else:
                        action = session.on_frame(channel, symbol, frame)
                        if action is not None:
                            await self._act(ws, conn_id, action, recv)
            except (ConnectionClosed, asyncio.CancelledError):
                raise
            except Exception as exc:
                if await self._uninterpretable(ws, channel, symbol, seq, recv, exc):
                    return
                continue
            c.messages_processed += 1

    async def _uninterpretable(
        self, ws: ClientConnection, channel: str, symbol: str, seq: int, recv: int, exc: Exception
    ) -> bool:
        """A landed frame that could not be interpreted: quarantined, logged with the exchange and stream. A book
        frame leaves its book in an unknown state: its stream is marked out of sync (``gap``, which coverage
        honours) and the connection closes to start over with a fresh book; True then."""
        reason = f"could not be interpreted: {type(exc).__name__}: {exc}"
        self._quarantine(channel, symbol, seq, recv, reason)
        problem = f"frame {seq} ({channel} {symbol}) {reason}"
        if channel not in self.exchange.capabilities.book_channels:
            return False
        self.counters.sync_errors += 1
        self._event(GAP, channel, symbol, problem, recv_ts=recv)
        self._close_reason = f"resync after an uninterpretable book frame: {problem}"
        await ws.close()
        return True

    def _quarantine(self, channel: str, symbol: str, seq: int, recv: int, reason: str) -> None:
        """A landed frame nothing can be made of: counted, logged, and flagged in ``events/`` (``frame_error`` with
        its ``seq``), so readers of ``raw/`` know to set it aside and why."""
        self.counters.frame_errors += 1
        self._error(f"frame {seq} of {self._conn_id} ({f'{channel} {symbol}'.strip()}) {reason}")
        self._event(FRAME_ERROR, channel, symbol, reason, recv_ts=recv, seq=seq)

    # --- events ------------------------------------------------------------------------------------

    def _seq(self) -> int:
        """Frames landed on the current connection so far."""
        return self.counters.messages_received - self._seq_base

    def _newest(self) -> _Newest:
        """The newest exchange time known and when the frame carrying it arrived: looked up in the last frame
        landed; a frame without one (an ack, a spot bookTicker) or with an older or equal one keeps what was known
        (the earliest arrival of a time bounds the exchange clock tightest)."""
        last = self._last
        frame = last.frame
        if frame is not None:
            t = self.exchange.exchange_time(frame)
            if t is not None and (last.exchange_ts is None or t > last.exchange_ts):
                last.exchange_ts, last.frame_recv_ts = t, self.counters.last_message_ns
        return last.exchange_ts, last.frame_recv_ts

    def _event(
        self,
        kind: str,
        channel: str = "",
        symbol: str = "",
        detail: str = "",
        *,
        recv_ts: int | None = None,
        newest: _Newest | None = None,
        seq: int | None = None,
    ) -> None:
        exchange_ts, frame_recv_ts = self._newest() if newest is None else newest
        self.sink.event(
            time.time_ns() if recv_ts is None else recv_ts,
            self.exchange.id,
            self._conn_id,
            kind,
            channel,
            symbol,
            self._seq() if seq is None else seq,
            exchange_ts,
            frame_recv_ts,
            detail,
        )

    def _start(self, frame: str, recv: int) -> bool:
        """``start`` at the first frame carrying an exchange time; True once it is recorded."""
        t = self.exchange.exchange_time(frame)
        if t is None:
            return False
        last = self._last
        if last.exchange_ts is None or t > last.exchange_ts:
            last.exchange_ts, last.frame_recv_ts = t, recv
        self._event(START, recv_ts=recv, newest=(t, recv))
        return True

    def _subscribe(self, stream: _Stream, recv: int, newest: _Newest | None = None) -> None:
        self._subscribed[stream] = None
        self._stated[stream] = recv - recv % MINUTE_NS
        self.counters.subscribed = len(self._subscribed)
        self._event(SUBSCRIBED, *stream, recv_ts=recv, newest=newest)

    def _control(self, frame: str, recv: int) -> None:
        """Acks and refusals of subscriptions (exchanges that acknowledge them)."""
        for ev in self.exchange.control_events(frame):
            stream = (ev.channel, ev.symbol)
            if ev.kind == SUBSCRIBED:
                self._subscribe(stream, recv)
                continue
            if ev.kind == UNSUBSCRIBED:
                self._subscribed.pop(stream, None)
                self._stated.pop(stream, None)
                self.counters.subscribed = len(self._subscribed)
            elif ev.kind == SUB_ERROR:
                c = self.counters
                c.sub_errors += 1
                c.refused.append(ev.detail or f"{ev.channel} {ev.symbol}".strip())
                self._error(f"subscription refused on {self._conn_id}: {ev.detail}")
            self._event(ev.kind, ev.channel, ev.symbol, ev.detail, recv_ts=recv)

    def _alive(self, sent: int, newest: _Newest, seq: int) -> None:
        """A pong came back for the ping sent at ``sent``; the first of a receive minute restates every stream
        still subscribed, so each minute of the events table says what was being received."""
        minute = sent - sent % MINUTE_NS
        if minute != self._alive_minute:
            self._alive_minute = minute
            for stream in self._subscribed:
                if self._stated.get(stream) != minute:
                    self._stated[stream] = minute
                    self._event(SUBSCRIBED, *stream, recv_ts=sent, newest=newest, seq=seq)
        self._event(ALIVE, recv_ts=sent, newest=newest, seq=seq)
        self.counters.last_alive_ns = sent

    async def _liveness(self, ws: ClientConnection) -> None:
        """Every ``liveness_interval_s``: a WebSocket ping; its pong proves that every frame the server sent
        before answering has arrived (TCP keeps order), recorded as ``alive`` at the time the ping was sent. No
        pong within the idle limit closes the connection (the keep-alive the library would otherwise do)."""
        interval = self.config.liveness_interval_s
        timeout = self._idle_timeout
        due = time.monotonic() + interval
        while True:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due + interval, time.monotonic())
            sent = time.time_ns()
            newest, seq = self._newest(), self._seq()
            try:
                pong = await ws.ping()
            except ConnectionClosed:
                return
            try:
                await asyncio.wait_for(pong, timeout)
            except TimeoutError:
                self._close_reason = f"no pong within {timeout:g}s"
                self._error(f"{self._close_reason}: closing {self._conn_id}")
                await ws.close(code=1011, reason="no pong")
                return
            except ConnectionClosed:
                return
            self._alive(sent, newest, seq)

    async def _act(self, ws: ClientConnection, conn_id: str, action: SessionAction, recv: int) -> None:
        for ev in action.events:
            self._event(ev.kind, ev.channel, ev.symbol, ev.detail, recv_ts=recv)
        if action.error:
            self.counters.sync_errors += 1
            self._error(action.error)
        for message in action.send:
            await ws.send(message)
        if action.fetch_snapshot is not None:
            self._spawn(self._fetch_snapshot(ws, conn_id, *action.fetch_snapshot))

    async def _fetch_snapshot(self, ws: ClientConnection, conn_id: str, symbol: str, url: str) -> None:
        """GET a REST snapshot within the exchange's limits (weights, 429/418 and Retry-After, transport errors and
        5xx retried by the client), land it in the raw layer, hand it to the session."""
        weight, limit = self.exchange.rest_cost(url)
        try:
            reply = await self.rest.get(url, {}, weight=weight, limit=limit)
        except (RestError, ValueError) as exc:
            self._error(f"snapshot {symbol}: {exc}")
            # the book cannot sync on this connection: start over (the backoff spaces the attempts)
            self._close_reason = f"snapshot of {symbol} unavailable: {exc}"
            await ws.close(code=1011, reason="snapshot unavailable")
            return
        body = reply.body.decode()
        self._rest_seq += 1
        self.counters.snapshots += 1
        recv = time.time_ns()
        self.sink.append(recv, self.exchange.id, SNAPSHOT_CHANNEL, symbol, f"{conn_id}/rest", self._rest_seq, body)
        session = self.session
        if session is not None:
            action = session.on_snapshot(symbol, body)
            if action is not None:
                await self._act(ws, conn_id, action, recv)

    async def _watchdog(self, ws: ClientConnection) -> None:
        """Close a silent connection (no data for ``idle_timeout``); send text pings where the exchange wants them."""
        ping = self._keepalive.client_ping
        interval = self.config.ping_interval_s or self._keepalive.interval_s
        c = self.counters
        # silence is measured on the monotonic clock (a wall-clock step must neither close a live connection nor
        # keep a dead one): activity is a change of the frame count between two looks, so the hot path pays nothing
        last_ping = last_activity = time.monotonic()
        seen = c.messages_received
        while True:
            await asyncio.sleep(min(1.0, interval / 2))
            now = time.monotonic()
            if c.messages_received != seen:
                seen, last_activity = c.messages_received, now
            silent_s = now - last_activity
            if silent_s > self._idle_timeout:
                self._error(f"no data for {silent_s:.1f}s: closing {self.counters.conn_id}")
                self._close_reason = f"idle: no data for {silent_s:.1f}s"
                await ws.close(code=1001, reason="idle")
                return
            if ping and silent_s >= interval and now - last_ping >= interval:
                last_ping = now
                await ws.send(ping)

    def _spawn_close(self, ws: ClientConnection) -> None:
        close = asyncio.ensure_future(ws.close(code=1011, reason="helper task failed"))
        close.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: never "never retrieved"

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._error(f"task failed: {task.exception()!r}")
            # the watchdog, the liveness pings or a snapshot fetch died: the connection is no longer supervised
            # (or its book no longer syncs), so it starts over with fresh tasks
            ws = self._ws
            if ws is not None and not self._stopping.is_set():
                self._close_reason = f"helper task failed: {task.exception()!r}"
                self._spawn_close(ws)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _error(self, message: str) -> None:
        self.counters.errors += 1
        self.counters.last_error = message
        log.warning("%s: %s", self.exchange.id, message)


def _shown(url: str) -> str:
    """``url`` as status, logs and the lake may show it: credentials (``user:password@``) replaced by ``***@``."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
