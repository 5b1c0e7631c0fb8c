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

Frames arrive through picows (``_websocket.py``) in reads: every frame of one read of the socket has the receive
time of that read (when its bytes left the kernel). Two receive paths land the same rows:

- compiled (``_batcher.pyx``, built with the package when Cython is there): picows calls the ``Batcher`` in C,
  which copies each complete UTF-8 data frame into a batch with its receive time and route (looked up by the
  exchange's stream key: ``route_prefix``/``route_key``) and hands batches of frames to the sink
  (``RawSink.append_batch``) every few milliseconds; only the frames the connection must look at (book and
  control channels, the first frames until an exchange time) become text for Python, and everything else
  (control frames, fragments, non-UTF-8 data, frames during a close) goes to the Python receiver below;
- pure Python (``_Receiver`` alone: no compiled module, one built for another picows, or ``MDP_RECEIVE=python``):
  one callback per frame (the payload as text, ``route()``, two list appends), a read's frames to the sink in one
  call (``RawSink.append_frames``).

Either way, book and control frames get the session's or the ack check as they arrive, after they are landed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import random
import time
import uuid
from collections.abc import Coroutine, Sequence
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import httpx

from .._time import MINUTE_NS
from ..contract import Answering, BinaryFrames, ChainedSession, ConnectionRouting, Negotiating
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
    Route,
    SessionAction,
    StreamSession,
    Subscription,
)
from ..history import RestClient, RestError
from ._config import ExchangeCollectorConfig
from ._gate import ConnectGate
from ._status import ConnectionCounters
from ._websocket import _BINARY as _BINARY_FRAME
from ._websocket import CLOSE_TIMEOUT_S, CONTROL_MAX, MAX_FRAME_BYTES, WsClosed, WsError, WsLink, describe, open_link

if TYPE_CHECKING:
    from picows import WSFrame, WSListener, WSTransport

    from ..lake._frames import FrameBatch
    from ._batcher import Batch, Batcher

__all__ = ["MAX_FRAME_BYTES", "Connection", "RawSink", "compiled_receive"]

log = logging.getLogger("mdplatform.collector")


def _batcher_class() -> type[Batcher] | None:
    """The compiled receive path's listener class, or None: not built (no Cython when the package was installed),
    built against another picows than the one installed (its frame layout is compiled in), or turned off with
    ``MDP_RECEIVE=python``."""
    if os.environ.get("MDP_RECEIVE", "").lower() == "python":
        return None
    try:
        from . import _batcher
    except (ImportError, ValueError):  # ValueError: Cython's check of picows' type sizes
        return None
    installed = version("picows")
    if installed != _batcher.PICOWS_VERSION:
        log.warning(
            "the compiled receive path was built against picows %s, picows %s is installed: receiving in Python "
            "(reinstall mdplatform to rebuild it)",
            _batcher.PICOWS_VERSION,
            installed,
        )
        return None
    return _batcher.Batcher


_BATCHER = _batcher_class()


def compiled_receive() -> bool:
    """Whether connections receive on the compiled path (``_batcher.pyx``)."""
    return _BATCHER is not None


SNAPSHOT_CHANNEL = "depthSnapshot"
#: the exchange modules' channel for acks, errors and pongs
CONTROL_CHANNEL = "control"
#: where a binary frame that is not UTF-8 is landed, base64-encoded (the raw payload column is text)
BINARY_CHANNEL = "binary"
_BINARY_ROUTE: Route = (BINARY_CHANNEL, "")

#: (channel, symbol) of a subscribed stream
_Stream = tuple[str, str]
#: (exchange_ts, frame_recv_ts) of the newest frame carrying an exchange time
_Newest = tuple[int | None, int | None]


class RawSink(Protocol):
    def append_frames(
        self, recv_ts: int, exchange: str, conn_id: str, seq: int, routes: list[Route], payloads: list[str]
    ) -> None: ...

    def append_batch(
        self, exchange: str, conn_id: str, seq: int, batch: FrameBatch, routes: Sequence[Route]
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


@runtime_checkable
class _KeyRouted(Protocol):
    """An exchange whose frames starting with ``route_prefix[0]`` are routed by their stream key, the text up to the
    ``route_prefix[1]``-th quote after it: ``route_key(key)`` is what ``route()`` says of every such frame, or None
    when the key alone does not say (those frames are routed one by one)."""

    route_prefix: tuple[str, int]

    def route_key(self, key: str) -> Route | None: ...


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
        self._link: _Receiver | None = None
        self._stopping = asyncio.Event()
        caps = exchange.capabilities
        self._subscribe_ack = caps.subscribe_ack
        #: channels the receive loop looks at beyond landing: book channels (the session) and control frames (acks,
        #: and refusals: an exchange that takes its streams from the URL still answers a bad request with an error)
        self._watch = caps.book_channels | caps.session_channels | {CONTROL_CHANNEL}
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
            except (TimeoutError, OSError, WsError, WsClosed, httpx.HTTPError) as exc:
                if not self._stopping.is_set():  # a close we asked for is not an error
                    self._error(f"connection failed: {describe(exc)}")
            except Exception as exc:
                # whatever escaped (a bug, something nobody expected): this connection reconnects, collection goes on
                log.exception("%s: connection loop failed", self.exchange.id)
                self._error(f"connection loop failed: {type(exc).__name__}: {exc}")
            finally:
                await self._cancel_tasks()
                self._link = None
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
        link = self._link
        if link is not None:
            link.close()
            await link.closed(timeout=CLOSE_TIMEOUT_S + 1)

    async def _connect_once(self) -> None:
        c = self.counters
        ws_url = self.config.ws_url or self.exchange.ws_url
        url = self.exchange.connect_url(self.subs, ws_url)
        if isinstance(self.exchange, Negotiating):
            # the endpoint (a token in it) and the ping interval are the exchange's answer of the moment
            c.state = "negotiating"
            told = await self.exchange.negotiate(self.rest, url, self.config.rest_url or self.exchange.rest_url)
            url = told.url
            if told.keepalive is not None:
                self._keepalive = told.keepalive
                self._idle_timeout = self.config.idle_timeout_s or told.keepalive.idle_timeout_s
        shown = _shown(url)  # what status, logs and the lake may hold: no credentials
        c.state, c.url = "connecting", shown
        conn_id = f"{self.exchange.id}-{uuid.uuid4().hex[:12]}"
        link = await open_link(url, lambda: _Receiver(self, conn_id, shown))
        self._link = link
        failure: str | None = None
        try:
            if self._stopping.is_set():  # stopped while connecting
                link.close()
            self._spawn(self._watchdog(link))
            self._spawn(self._liveness(link))
            log.info("%s: connected %s (%s)", self.exchange.id, conn_id, shown)
            await link.wait_closed()
        except asyncio.CancelledError:
            failure = "cancelled"
            link.close()
            raise
        except BaseException as exc:
            failure = describe(exc)
            raise
        finally:
            self._end(link, failure)
        server = link.server_close()
        if not self._stopping.is_set() and self._close_reason is None and server is not None:
            self._error(f"connection {conn_id} closed: {server[0]} {server[1]}".rstrip())

    def _opened(self, link: _Receiver, conn_id: str, shown: str) -> None:
        """The handshake is complete (picows' callback, before any frame): fresh state, ``open``, subscriptions."""
        now = time.time_ns()
        c = self.counters
        self._link = link
        self._begin(conn_id, now)
        c.conn_id, c.connected_since_ns, c.last_message_ns = conn_id, now, now
        c.state = "connected"
        self._event(OPEN, detail=shown, recv_ts=now)
        self.session = self.exchange.new_session(self.subs, self.config.rest_url or self.exchange.rest_url)
        if not self._subscribe_ack:  # the streams named in the URL are live with the connection
            for sub in dict.fromkeys(self.subs):
                self._subscribe((sub.channel, sub.symbol), now)
        for message in self.exchange.subscribe_messages(self.subs):
            link.send_text(message)

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

    def _end(self, link: WsLink, failure: str | None) -> None:
        """Record why the connection ended."""
        server = link.server_close()
        if self._stopping.is_set():
            reason = "stopped"
        elif self._close_reason is not None:
            reason = self._close_reason
        elif failure is not None:
            reason = failure
        elif server is not None:
            reason = f"closed by the server: {server[0]} {server[1]}".rstrip()
        else:
            reason = "closed"
        self._event(CLOSE, detail=reason)
        self._subscribed = {}
        self.counters.subscribed = 0

    def _uninterpretable(self, channel: str, symbol: str, seq: int, recv: int, exc: Exception) -> None:
        """A landed frame that could not be interpreted: quarantined, logged with the exchange and stream. A book
        frame leaves its book in an unknown state: its stream is marked out of sync (``gap``, which coverage
        honours) and the connection closes to start over with a fresh book (nothing after it is landed)."""
        reason = f"could not be interpreted: {type(exc).__name__}: {exc}"
        self._quarantine(channel, symbol, seq, recv, reason)
        problem = f"frame {seq} ({channel} {symbol}) {reason}"
        if channel not in self.exchange.capabilities.book_channels:
            return
        self.counters.sync_errors += 1
        self._event(GAP, channel, symbol, problem, recv_ts=recv)
        # the frames after it would go to a book in an unknown state: not landed, as if the connection ended here
        self._close(f"resync after an uninterpretable book frame: {problem}", 1000, drop_rest=True)

    def _close(self, reason: str, code: int, why: str = "", *, drop_rest: bool = False) -> None:
        """Close the connection from our side, for ``reason`` (the close event's detail)."""
        self._close_reason = reason
        if self._link is not None:
            self._link.close(code, why, drop_rest=drop_rest)

    def _quarantine(self, channel: str, symbol: str, seq: int, recv: int, reason: str) -> None:
        """A landed frame nothing can be made of: counted, logged, and flagged in ``events/`` (``frame_error`` with
        its ``seq``), so readers of ``raw/`` know to set it aside and why."""
        self.counters.frame_errors += 1
        self._error(f"frame {seq} of {self._conn_id} ({f'{channel} {symbol}'.strip()}) {reason}")
        self._event(FRAME_ERROR, channel, symbol, reason, recv_ts=recv, seq=seq)

    # --- events ------------------------------------------------------------------------------------

    def _seq(self) -> int:
        """Frames landed on the current connection so far (those received and not yet handed over included)."""
        link = self._link
        return self.counters.messages_received - self._seq_base + (link.pending() if link is not None else 0)

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
        """Acks and refusals of subscriptions (exchanges that acknowledge them); the answer to an exchange's own
        ping (exchanges that close a connection that does not answer)."""
        if isinstance(self.exchange, Answering):
            reply = self.exchange.answer(frame)
            if reply is not None and self._link is not None:
                self._link.send_text(reply)
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

    async def _liveness(self, link: WsLink) -> None:
        """Every ``liveness_interval_s``: a WebSocket ping; its pong proves that every frame the server sent
        before answering has arrived (TCP keeps order), recorded as ``alive`` at the time the ping was sent. No
        pong within the idle limit closes the connection (the keep-alive the library would otherwise do)."""
        interval = self.config.liveness_interval_s
        timeout = self._idle_timeout
        due = time.monotonic() + interval
        while not link.closing:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due + interval, time.monotonic())
            if link.closing:
                return
            sent = time.time_ns()
            newest, seq = self._newest(), self._seq()
            try:
                await asyncio.wait_for(link.ping(), timeout)
            except TimeoutError:
                reason = f"no pong within {timeout:g}s"
                self._error(f"{reason}: closing {self._conn_id}")
                self._close(reason, 1011, "no pong")
                return
            except WsClosed:
                return
            self._alive(sent, newest, seq)

    def _act(self, action: SessionAction, recv: int) -> None:
        for ev in action.events:
            self._event(ev.kind, ev.channel, ev.symbol, ev.detail, recv_ts=recv)
        if action.error:
            self.counters.sync_errors += 1
            self._error(action.error)
        link = self._link
        assert link is not None
        for message in action.send:
            link.send_text(message)
        if action.fetch_snapshot is not None:
            self._spawn(self._fetch_snapshot(self._conn_id, *action.fetch_snapshot))

    async def _fetch_snapshot(self, conn_id: str, symbol: str, url: str) -> None:
        """GET a REST snapshot within the exchange's limits (weights, 429/418 and Retry-After, transport errors and
        5xx retried by the client), land it in the raw layer, hand it to the session."""
        weight, limit = self.exchange.rest_cost(url)
        try:
            reply = await self.rest.get(url, {}, weight=weight, limit=limit)
        except (RestError, ValueError) as exc:
            self._error(f"snapshot {symbol}: {exc}")
            # the book cannot sync on this connection: start over (the backoff spaces the attempts)
            self._close(f"snapshot of {symbol} unavailable: {exc}", 1011, "snapshot unavailable")
            return
        body = reply.body.decode()
        self._rest_seq += 1
        self.counters.snapshots += 1
        recv = time.time_ns()
        route = (SNAPSHOT_CHANNEL, symbol)
        self.sink.append_frames(recv, self.exchange.id, f"{conn_id}/rest", self._rest_seq, [route], [body])
        session = self.session
        if session is not None:
            action = session.on_snapshot(symbol, body)
            if action is not None:
                self._act(action, recv)

    async def _watchdog(self, link: WsLink) -> None:
        """Close a silent connection (no data for ``idle_timeout``); send text pings where the exchange wants them."""
        ping = self._keepalive.client_ping
        interval = self.config.ping_interval_s or self._keepalive.interval_s
        c = self.counters
        # silence is measured on the monotonic clock (a wall-clock step must neither close a live connection nor
        # keep a dead one): activity is a change of the frame count between two looks, so the hot path pays nothing
        last_ping = last_activity = time.monotonic()
        seen = c.messages_received
        while not link.closing:
            await asyncio.sleep(min(1.0, interval / 2))
            now = time.monotonic()
            if c.messages_received != seen:
                seen, last_activity = c.messages_received, now
            silent_s = now - last_activity
            if silent_s > self._idle_timeout:
                self._error(f"no data for {silent_s:.1f}s: closing {self.counters.conn_id}")
                self._close(f"idle: no data for {silent_s:.1f}s", 1001, "idle")
                return
            due = self._keepalive.ping_always or silent_s >= interval
            if ping and due and now - last_ping >= interval and not link.closing:
                last_ping = now
                link.send_text(ping)

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
            if not self._stopping.is_set():
                self._close(f"helper task failed: {task.exception()!r}", 1011, "helper task failed")

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _error(self, message: str) -> None:
        self.counters.errors += 1
        self.counters.last_error = message
        log.warning("%s: %s", self.exchange.id, message)


class _Receiver(WsLink):
    """One connection's frames as picows parses them: the receive hot path. A read's frames are collected here
    (``routes``, ``payloads``) and handed to the sink together when its last frame is parsed; the frames that need
    interpretation (book and control channels, and frames until the first exchange time) go to the connection.

    On the compiled path a ``Batcher`` stands in front of it (``listener``): it lands the plain frames itself and
    calls ``land``, ``learn``, ``classify`` and ``interpret`` here, and hands everything else to ``on_ws_frame``."""

    def __init__(self, conn: Connection, conn_id: str, shown: str) -> None:
        self.batcher: Batcher | None = None
        self._plain = True
        super().__init__()
        self.conn = conn
        self.conn_id = conn_id
        self.shown = shown
        self.exchange_id = conn.exchange.id
        exchange = conn.exchange
        # an exchange whose frames name their stream by a number this connection was given routes per connection
        self.route = exchange.connection_router() if isinstance(exchange, ConnectionRouting) else exchange.route
        self._decode = exchange.decode_binary if isinstance(exchange, BinaryFrames) else None
        self.watch = conn._watch
        #: an exchange time was seen (``start`` recorded)
        self.started = False
        #: the receive time of the read being parsed (0: the next frame begins a read)
        self.recv = 0
        self.routes: list[Route] = []
        self.payloads: list[str] = []
        #: frames of the read that could not be interpreted (not counted as processed)
        self.failed = 0
        #: frames of the connection handed to the sink
        self.landed = 0
        # the compiled path's routes: (channel, symbol) by index, and the code (index * 2 + watched) of each
        self.route_list: list[Route] = []
        self._codes: dict[Route, int] = {}
        self._route_key = exchange.route_key if isinstance(exchange, _KeyRouted) else None
        # the session ``_chained`` looked at last, and what it found
        self._session_seen: object = None
        self._session_chained: ChainedSession | None = None
        if _BATCHER is not None:
            prefix, quotes = exchange.route_prefix if isinstance(exchange, _KeyRouted) else (None, 0)
            self.batcher = _BATCHER(self, asyncio.get_running_loop(), prefix.encode() if prefix else None, quotes)
        # an exchange that decodes its binary frames gets them whole, even those whose bytes happen to be UTF-8 (a
        # protocol-buffers push of ASCII fields): the opcode says what they are
        self.binary_as_bytes = self._decode is not None
        if self.batcher is not None:
            self.batcher.binary_text = not self.binary_as_bytes

    def listener(self) -> WSListener:
        return self if self.batcher is None else self.batcher

    @property
    def plain(self) -> bool:
        return self._plain

    @plain.setter
    def plain(self, value: bool) -> None:
        # the compiled path lands plain frames itself only while the link would
        self._plain = value
        if self.batcher is not None:
            self.batcher.plain = value

    def pending(self) -> int:
        """Frames received and not yet handed to the sink."""
        return len(self.payloads) + (self.batcher.pending if self.batcher is not None else 0)

    def on_ws_connected(self, transport: WSTransport) -> None:
        super().on_ws_connected(transport)
        self.conn._opened(self, self.conn_id, self.shown)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.hand_over()
        super().on_ws_disconnected(transport)

    # --- the compiled path's calls ------------------------------------------------------------------------------

    def _code(self, route: Route) -> int:
        code = self._codes.get(route)
        if code is None:
            code = self._codes[route] = len(self.route_list) * 2 + (route[0] in self.watch)
            self.route_list.append(route)
        return code

    def learn(self, key: str) -> int:
        """The route code of every frame with stream key ``key``, or -1: route them one by one."""
        assert self._route_key is not None
        route = self._route_key(key)
        return -1 if route is None else self._code(route)

    def classify(self, frame: str) -> int:
        """The route code of one frame."""
        return self._code(self.route(frame))

    def interpret(self, frame: str, index: int, recv: int) -> bool:
        """A landed frame the connection must see now (``route_list[index]``); returns ``started``."""
        self._interpret(frame, self.route_list[index], recv)
        return self.started

    def chain_at(self, index: int) -> tuple[bytes, bytes, bytes | None, int] | bool:
        """Whether the frames of ``route_list[index]`` may be checked by the compiled path now (the session's
        ``ChainedSession`` side): the chain's keys and last id when its chain is in sequence, True when it is
        not now, False when the route's frames are never checked there."""
        session = self._chained()
        channel, symbol = self.route_list[index]
        chain = session.id_chain(channel) if session is not None else None
        if session is None or chain is None:
            return False
        last = session.chain_position(channel, symbol)
        return (chain.first, chain.last, chain.prev, last) if last >= 0 else True

    def chain_advance(self, index: int, last: int) -> None:
        """The compiled path checked frames of ``route_list[index]`` continuing its chain up to ``last``."""
        session = self._chained()
        assert session is not None
        channel, symbol = self.route_list[index]
        session.chain_advance(channel, symbol, last)

    def _chained(self) -> ChainedSession | None:
        """The connection's session where it is a ``ChainedSession`` (asked once per session: ``chain_at`` runs
        after every frame the session interprets, and a Protocol's isinstance costs microseconds)."""
        session = self.conn.session
        if session is not self._session_seen:
            self._session_seen = session
            self._session_chained = session if isinstance(session, ChainedSession) else None
        return self._session_chained

    def land(self, batch: Batch) -> None:
        """Frames the compiled path received (after every frame handed over before them)."""
        n = batch.rows
        conn = self.conn
        conn.sink.append_batch(self.exchange_id, self.conn_id, self.landed + 1, batch, self.route_list)
        conn._last.frame = batch.last_text()
        c = conn.counters
        c.messages_received += n
        c.messages_processed += n - self.failed
        c.last_message_ns = batch.last_recv
        self.landed += n
        self.failed = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        # per frame: three cheap tests, the text, route(), two appends; the rest once per read or per rare frame
        if (
            frame.fin
            and CONTROL_MAX < frame.payload_size <= MAX_FRAME_BYTES
            and self.plain
            and not (self.binary_as_bytes and frame.msg_type is _BINARY_FRAME)
        ):
            try:
                message: str | bytes | None = frame.get_payload_as_utf8_text()
            except UnicodeDecodeError:
                message = frame.get_payload_as_bytes()
        else:
            message = self.message(frame)
        if message is not None:
            recv = self.recv or self._stamp()
            if type(message) is str:
                route = self.route(message)
                self.routes.append(route)
                self.payloads.append(message)  # landed before it is interpreted: whatever happens next
                if route[0] in self.watch or not self.started:
                    self._interpret(message, route, recv)
            else:
                self._binary(message, recv)  # type: ignore[arg-type]
        if frame.last_in_buffer:
            self.hand_over()

    def _stamp(self) -> int:
        self.recv = time.time_ns()
        return self.recv

    def hand_over(self) -> None:
        """The read is parsed: its frames go to the sink, the counters move on."""
        recv, self.recv = self.recv, 0
        payloads = self.payloads
        if not payloads:
            return
        n = len(payloads)
        conn = self.conn
        conn.sink.append_frames(recv, self.exchange_id, self.conn_id, self.landed + 1, self.routes, payloads)
        conn._last.frame = payloads[-1]
        c = conn.counters
        c.messages_received += n
        c.messages_processed += n - self.failed
        c.last_message_ns = recv
        self.landed += n
        self.routes, self.payloads, self.failed = [], [], 0

    def _interpret(self, frame: str, route: Route, recv: int) -> None:
        conn = self.conn
        # events recorded now look up the newest exchange time in this frame, received at recv
        conn._last.frame = frame
        conn.counters.last_message_ns = recv
        channel, symbol = route
        try:
            if not self.started:
                self.started = conn._start(frame, recv)
            if channel in self.watch:
                if channel == CONTROL_CHANNEL:
                    conn._control(frame, recv)
                else:
                    session = conn.session
                    assert session is not None
                    action = session.on_frame(channel, symbol, frame)
                    if action is not None:
                        conn._act(action, recv)
        except Exception as exc:
            self.failed += 1
            conn._uninterpretable(channel, symbol, self.landed + self.pending(), recv, exc)

    def _text(self, data: bytes) -> str | None:
        """The text of a binary-encoded frame, None when the exchange's frames are not or this one does not decode."""
        if self._decode is None:
            return None
        try:
            return self._decode(data)
        except Exception:  # a damaged frame: landed as received and quarantined below
            return None

    def _binary(self, data: bytes, recv: int) -> None:
        """A frame that is not UTF-8: the text it encodes where the exchange's frames are binary-encoded
        (``BinaryFrames``: HTX's gzip), else landed exactly (base64) and quarantined: nothing can be read from it."""
        conn = self.conn
        conn.counters.last_message_ns = recv
        text = self._text(data)
        if text is not None:
            route = self.route(text)
            self.routes.append(route)
            self.payloads.append(text)
            if route[0] in self.watch or not self.started:
                self._interpret(text, route, recv)
            return
        if self.payloads:  # the newest exchange time stays that of the frames before it
            conn._last.frame = self.payloads[-1]
            conn._newest()
        try:
            data.decode()
            reason = "is not UTF-8"
        except UnicodeDecodeError as exc:
            reason = f"is not UTF-8 ({exc.reason} at byte {exc.start})"
        self.routes.append(_BINARY_ROUTE)
        self.payloads.append(base64.b64encode(data).decode())
        self.failed += 1
        seq = self.landed + self.pending()
        conn._quarantine(
            BINARY_CHANNEL, "", seq, recv, f"{reason}: landed base64-encoded in channel {BINARY_CHANNEL!r}"
        )


def _shown(url: str) -> str:
    """``url`` as status, logs and the lake may show it: credentials (``user:password@``) replaced by ``***@``."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
