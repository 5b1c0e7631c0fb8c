"""A local exchange: WebSocket + REST on one port, replaying recorded frames through the real protocol.

One cursor per server walks the merged recording, like a live exchange's single timeline: every frame goes
to every client subscribed to it, nobody gets a private rewind. By default the cursor waits while no client has
a subscription (so a test that connects late still sees the first frame); with ``pause_when_idle=False`` it
waits only for the first subscriber and then never again, so frames passed while nobody is connected are lost,
as on a real exchange (a collector outage). Frames are paced by their recorded receive-time gaps divided by
``speed`` (0: as fast as the sockets take them).

REST (depth snapshots, trade history) is rate limited like the exchange: a sliding window of request weights
(``rest_limit``, the exchange's own budget by default) answered, when exceeded, the way the exchange answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import math
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from .._time import MINUTE_NS
from ..capture import ReadStats, detect_exchange, merge_captures
from ..contract import HttpHeaders, Prepared, Query, ReplayClient, ReplayProtocol
from ..exchanges import get_exchange
from ..history import RateLimit

__all__ = ["ReplayServer", "RestBudget", "live_shift_ns", "minute_shift_ns", "protocol_for", "text_frame"]

log = logging.getLogger("mdplatform.replay")


def protocol_for(exchange_id: str) -> ReplayProtocol:
    """A new server-side adapter for the exchange with this registry id (its folder holds it)."""
    try:
        return get_exchange(exchange_id).replay_protocol()
    except KeyError as exc:
        raise ValueError(f"no replay protocol: {exc.args[0]}") from None


#: frames queued before the cursor writes them out and lets other tasks (REST, subscribes, pings) in
_BATCH = 64
#: requests tolerated (answered 429 again) while a client is told to wait, before an exchange that bans answers 418
_BAN_AFTER_VIOLATIONS = 3
#: a ban lasts this many windows (Binance's shortest ban is 2 minutes, two of its one-minute windows)
_BAN_WINDOWS = 2


class RestBudget:
    """The replay's REST rate limit, one for every client (they all come from one IP).

    A sliding window of the weights of the requests served (on the monotonic clock, at their arrival). A request
    that does not fit is refused (429) with ``Retry-After`` = the whole seconds until it would fit; that period is
    the client's to wait. Where the exchange bans (``bans``: Binance), a client that sends more than
    ``_BAN_AFTER_VIOLATIONS`` requests within it is banned (418) for ``_BAN_WINDOWS`` windows.
    """

    def __init__(self, limit: RateLimit, *, bans: bool) -> None:
        self.limit = limit
        self.bans = bans
        self._window: deque[tuple[float, int]] = deque()
        self.used = 0
        self._retry_until = 0.0
        self._violations = 0
        self._ban_until = 0.0

    def _expire(self, now: float) -> None:
        window, per = self._window, self.limit.per_s
        while window and window[0][0] + per <= now:
            self.used -= window.popleft()[1]

    def admit(self, weight: int, now: float | None = None) -> tuple[int, int]:
        """(200, 0) when the request is served (its weight counted), else (429 or 418, Retry-After seconds)."""
        now = time.monotonic() if now is None else now
        self._expire(now)
        if now < self._ban_until:
            return 418, _whole_seconds(self._ban_until - now)
        if now < self._retry_until:
            self._violations += 1
            if self.bans and self._violations > _BAN_AFTER_VIOLATIONS:
                self._ban_until = self._retry_until = now + _BAN_WINDOWS * self.limit.per_s
                self._violations = 0
                return 418, _whole_seconds(self._ban_until - now)
            return 429, _whole_seconds(self._retry_until - now)
        if self.used + weight > self.limit.weight:
            need = self.used + weight - self.limit.weight
            freed = 0
            wait = self.limit.per_s
            for t, w in self._window:
                freed += w
                if freed >= need:
                    wait = t + self.limit.per_s - now
                    break
            retry_after = _whole_seconds(wait)
            self._retry_until = now + retry_after
            self._violations = 0
            return 429, retry_after
        self._window.append((now, weight))
        self.used += weight
        return 200, 0


def _whole_seconds(seconds: float) -> int:
    """Retry-After is whole seconds: round up, and never 0 (a client would come straight back)."""
    return max(1, math.ceil(seconds - 1e-9))


def minute_shift_ns(last_exchange_ns: int, now_ns: int) -> int:
    """Whole minutes that move a recording ending at ``last_exchange_ns`` to end just before the current
    minute: floor_minute(now) - end of the minute holding the last exchange time."""
    end_minute = (last_exchange_ns // MINUTE_NS + 1) * MINUTE_NS
    return (now_ns // MINUTE_NS) * MINUTE_NS - end_minute


def live_shift_ns(first_exchange_ns: int, now_ns: int) -> int:
    """Whole minutes that move a recording's first exchange time to at most a minute before ``now``: replayed at
    real speed from now on, every frame then looks live (a little behind, never from the future)."""
    return (now_ns - first_exchange_ns) // MINUTE_NS * MINUTE_NS


class ReplayServer:
    """Replays captures over a local WebSocket/HTTP server speaking the exchange's protocol.

    ``exchange`` defaults to the one detected from the first file (all files must be of one exchange).
    ``rebase`` shifts every exchange timestamp by whole minutes so the recording ends just before the
    current minute (``shift_ns``). ``drop_after`` aborts every client connection once, after that many
    frames were sent in total. ``pause_when_idle`` False: the cursor never waits again once the first client
    subscribed (frames nobody is subscribed to are lost, counted in ``missed``). ``subscribers``: the first frame
    waits until that many clients have subscribed (several collectors sharing one replay all see it from its start).
    ``sent`` counts recorded frames sent (one per client it went to), ``sent_by_stream`` the same per stream;
    ``finished`` is set when the recording is exhausted, after which connections stay open (as a live exchange's
    would).

    REST: ``rest_base`` is the server's http://host:port; trade history serves the recorded trades the cursor has
    passed (the whole recording while no client has subscribed). ``rest_limit`` is the REST budget (default: the
    exchange's own); ``rest_requests`` counts the REST requests answered, ``rest_throttled`` those refused (429/418).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        exchange: str | None = None,
        speed: float = 0,
        rebase: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        drop_after: int | None = None,
        ping_interval: float | None = 20.0,
        verbose: bool = True,
        pause_when_idle: bool = True,
        rest_limit: RateLimit | None = None,
        subscribers: int = 1,
    ) -> None:
        if not paths:
            raise ValueError("no capture files to replay")
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.paths = [str(p) for p in paths]
        self.exchange = exchange
        self.speed = float(speed)
        self.rebase = rebase
        self.host = host
        self.port = port
        self.drop_after = drop_after
        self.ping_interval = ping_interval
        self.verbose = verbose
        self.pause_when_idle = pause_when_idle
        self.shift_ns = 0
        self.sent = 0
        #: replayable frames the cursor passed that went to no client (only without ``pause_when_idle``, or
        #: frames of streams nobody subscribed to)
        self.missed = 0
        self.sent_by_stream: dict[str, int] = {}
        self.position = 0  # recorded frames the cursor has passed
        self.skipped = 0  # recorded frames not replayed (REST replies, recorded acks)
        self.drops = 0
        self.read_stats = ReadStats()
        self.finished = asyncio.Event()
        self.protocol: ReplayProtocol | None = None
        self._ws_path = ""
        self._rest_path = ""
        self._server: Server | None = None
        self._cursor: asyncio.Task[None] | None = None
        self._clients: set[ReplayClient] = set()
        self._active = asyncio.Event()
        self._next_client = 0
        self._error: BaseException | None = None
        self._detect = exchange is None
        self.rest_limit = rest_limit
        self.subscribers = subscribers
        self.rest_requests = 0
        self.rest_throttled = 0
        self._rest_budget: RestBudget | None = None
        #: the receive time of the first frame with an exchange time (rebase at real speed)
        self._first_recv_ns = 0

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        exchange = self.exchange or detect_exchange(self.paths[0])
        protocol = self.protocol = protocol_for(exchange)
        self.exchange = exchange
        self._ws_path, self._rest_path = _endpoint_paths(exchange)
        if self.rest_limit is None:
            self.rest_limit = protocol.default_rest_limit
        self._rest_budget = RestBudget(self.rest_limit, bans=protocol.rest_bans)
        span = await asyncio.to_thread(self._prepass, protocol)
        if self.rebase:
            if span is None:
                raise ValueError("rebase: the capture has no exchange timestamps")
            first_ns, last_ns = span[0] * 1_000_000, span[1] * 1_000_000
            # at real speed the replay runs alongside the clock, so its start is aligned with now; at any other
            # speed the whole recording is moved into the recent past
            if self.speed == 1:
                # anchored on the later of the first exchange time and the first frame's receive time: a frame
                # can carry history (a trades snapshot on subscribe, hours old on a quiet pair), which must not
                # pull the live frames ahead of the clock
                self.shift_ns = live_shift_ns(max(first_ns, self._first_recv_ns), time.time_ns())
            else:
                self.shift_ns = minute_shift_ns(last_ns, time.time_ns())
            protocol.shift_ms = self.shift_ns // 1_000_000
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            compression=None,
            ping_interval=self.ping_interval if protocol.server_pings else None,
            ping_timeout=self.ping_interval if protocol.server_pings else None,
            # a peer that stopped answering is gone: do not wait long for its half of the close
            close_timeout=2.0,
            write_limit=2**20,
            max_size=2**20,
            server_header=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        protocol.base_url = self.rest_base  # an adapter handing out its WebSocket endpoint names this server
        if self.verbose and self.rebase:
            minutes = self.shift_ns // MINUTE_NS
            print(f"replay rebase: exchange times shifted by {self.shift_ns} ns ({minutes} min)", flush=True)
        self._cursor = asyncio.create_task(self._run(), name="replay-cursor")

    def _prepass(self, protocol: ReplayProtocol) -> tuple[int, int] | None:
        # what must be known before the first frame: recorded REST snapshots (served before the cursor
        # reaches them) and, for rebase, the exchange times' span and the recording's first receive time
        earliest: int | None = None
        latest: int | None = None
        if self._detect:
            # one server is one exchange: its paths and stream names would be ambiguous otherwise
            for path in self.paths[1:]:
                detected = detect_exchange(path)
                if detected != self.exchange:
                    raise ValueError(f"{path} is a {detected} capture, not {self.exchange}")
        for frame in merge_captures(self.paths):
            t = protocol.scan(frame, times=self.rebase)
            if t is not None:
                if earliest is None:
                    self._first_recv_ns = frame.recv_ns
                earliest = t if earliest is None else min(earliest, t)
                latest = t if latest is None else max(latest, t)
        protocol.finish_scan()
        return None if earliest is None or latest is None else (earliest, latest)

    async def close(self) -> None:
        if self._cursor is not None:
            self._cursor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cursor
            self._cursor = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> ReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_finished(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.finished.wait(), timeout)
        if self._error is not None:
            raise RuntimeError("replay failed") from self._error

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{self._ws_path}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}{self._rest_path}"

    @property
    def rest_base(self) -> str:
        """http://host:port: where a ``TradeHistory`` pointed at this replay sends its requests."""
        return f"http://{self.host}:{self.port}"

    @property
    def clients(self) -> int:
        """Open client connections."""
        return sum(1 for c in self._clients if c.ws.state is State.OPEN)

    # --- the cursor --------------------------------------------------------------------------------

    def _frames(self) -> Iterator[Prepared]:
        protocol = self.protocol
        assert protocol is not None
        for frame in merge_captures(self.paths, stats=self.read_stats):
            prepared = protocol.prepare(frame)
            if prepared is None:
                self.skipped += 1
                continue
            yield prepared

    async def _run(self) -> None:
        try:
            await self._replay()
        except Exception as exc:
            self._error = exc
            log.exception("replay failed")
        # a cancelled cursor (close() before the end) propagates and reports nothing
        bad = self.read_stats.bad
        if bad:
            first = bad[0]
            log.warning(
                "replay: %d unreadable capture line(s), first %s:%d (%s)",
                len(bad),
                first.path,
                first.line,
                first.reason,
            )
        if self.verbose:
            print(f"replay finished: {self.sent} frames", flush=True)
        self.finished.set()

    async def _replay(self) -> None:
        protocol = self.protocol
        assert protocol is not None
        advance = protocol.advance
        clients = self._clients
        by_stream = self.sent_by_stream
        speed = self.speed
        active = self._active
        dirty: list[ReplayClient] = []  # clients with frames in their outbox
        anchor_wall = anchor_rec = 0
        anchored = False
        batched = 0
        may_pause = True  # without pause_when_idle: only until the first subscriber
        for frame in self._frames():
            if may_pause and not active.is_set():
                await self._flush(dirty)
                await active.wait()
                anchored = False
                may_pause = self.pause_when_idle
            if speed > 0:
                now = time.monotonic_ns()
                if not anchored:
                    anchor_wall, anchor_rec, anchored = now, frame.recv_ns, True
                due = anchor_wall + int((frame.recv_ns - anchor_rec) / speed)
                if due > now:
                    await self._flush(dirty)
                    batched = 0
                    await asyncio.sleep((due - now) / 1e9)
            self.position += 1
            protocol.passed_ns = frame.recv_ns
            advance(frame)
            data, key = frame.data, frame.key
            if data is None or key is None:
                self.skipped += 1
                continue
            # no await between advancing the book and queueing the frame: a client that subscribes
            # later gets a book snapshot that already includes this frame, and not the frame
            wire: bytes | None = None
            sent = self.sent
            for client in clients:
                if key not in client.keys or client.dropped or client.ws.state is not State.OPEN:
                    continue
                if wire is None:
                    wire = self._frame(data)
                if not client.outbox:
                    dirty.append(client)
                client.outbox.append(wire)
                self.sent += 1
                by_stream[frame.stream] = by_stream.get(frame.stream, 0) + 1
                if self.drop_after is not None and self.drops == 0 and self.sent >= self.drop_after:
                    for c in dirty:
                        self._write(c)
                    dirty.clear()
                    self._drop_all()
                    break
            if self.sent == sent:
                self.missed += 1
            batched += 1
            if batched >= _BATCH:
                batched = 0
                await self._flush(dirty)
        await self._flush(dirty)

    def _write(self, client: ReplayClient) -> None:
        """Hand a client's queued frames to its transport in one write (one syscall, not one per frame)."""
        outbox = client.outbox
        if not outbox:
            return
        ws = client.ws
        transport = ws.transport
        if client.dropped or ws.state is not State.OPEN or transport is None or transport.is_closing():
            outbox.clear()
            return
        # frames the websockets protocol queued itself (pongs, pings) go first, as it would send them
        pending = ws.protocol.data_to_send()
        if any(not chunk for chunk in pending):  # an EOF marker: the protocol is closing the connection
            outbox.clear()
            ws.send_data()
            return
        transport.write(b"".join([*pending, *outbox]) if pending else b"".join(outbox))
        outbox.clear()

    async def _flush(self, dirty: list[ReplayClient]) -> None:
        """Write every queued frame, then wait for slow clients' buffers (back-pressure) and yield."""
        if dirty:
            clients = list(dirty)
            dirty.clear()
            for client in clients:
                self._write(client)
            for client in clients:
                await _drain(client)
        await asyncio.sleep(0)

    def _drop_all(self) -> None:
        """Abort every connection without a close frame, as a network failure would."""
        self.drops += 1
        for client in list(self._clients):
            client.dropped = True
            client.keys.clear()
            self._clients.discard(client)
            transport = client.ws.transport
            if transport is not None:
                transport.abort()
        self._refresh_active()
        log.info("replay: dropped every connection after %d frames", self.sent)

    def _refresh_active(self) -> None:
        subscribed = sum(1 for c in self._clients if c.keys)
        if subscribed and subscribed >= (self.subscribers if self.position == 0 else 1):
            self._active.set()
            if self.protocol is not None:
                self.protocol.subscribed = True  # from now on REST history is what the cursor has passed
        else:
            self._active.clear()

    # --- connections -------------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        protocol = self.protocol
        assert protocol is not None and ws.request is not None
        path, query = _split(ws.request.path)
        self._next_client += 1
        client = ReplayClient(ws, self._next_client)
        self._clients.add(client)
        try:
            replies = protocol.on_open(client, path, query)
            self._refresh_active()
            if replies:
                await self._reply(client, replies)
            async for message in ws:
                if client.dropped:
                    break
                text = message if isinstance(message, str) else message.decode()
                replies = protocol.on_message(client, text)
                self._refresh_active()
                if replies:
                    await self._reply(client, replies)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            self._refresh_active()

    async def _reply(self, client: ReplayClient, replies: list[bytes]) -> None:
        """Write replies (acks, a book snapshot) after the frames already queued for this client and before
        any frame the cursor queues later: the write is synchronous, so nothing can come in between."""
        client.outbox.extend(self._frame(reply) for reply in replies)
        self._write(client)
        await _drain(client)

    def _frame(self, payload: bytes) -> bytes:
        """The WebSocket frame of a payload: text, or binary where the exchange sends binary frames and the payload
        is not JSON text."""
        binary = self.protocol is not None and self.protocol.binary_frames and payload[:1] not in (b"{", b"[")
        return data_frame(payload, binary=binary)

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        protocol = self.protocol
        assert protocol is not None
        path, query = _split(request.path)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if protocol.accepts(path):
                return None
            return _json_response(404, b'{"code":-1,"msg":"no such stream endpoint"}')
        weight = protocol.rest_weight(path, query)
        if weight is None:
            reply = protocol.http_get(path, query)  # paths without a weight: not rate limited
            if reply is None:
                return _json_response(404, b'{"code":-1,"msg":"Not found"}')
            return _json_response(*reply)
        budget = self._rest_budget
        assert budget is not None
        self.rest_requests += 1
        status, retry_after = budget.admit(weight)
        if status != 200:
            self.rest_throttled += 1
            refused, body, headers = protocol.throttled(status, retry_after, budget.used, budget.limit)
            return _json_response(refused, body, headers)
        reply = protocol.http_get(path, query)
        headers = protocol.rest_headers(budget.used, budget.limit)
        if reply is None:
            return _json_response(404, b'{"code":-1,"msg":"Not found"}', headers)
        return _json_response(*reply, headers)


def text_frame(payload: bytes) -> bytes:
    """A complete unmasked, uncompressed WebSocket text frame (server to client, RFC 6455 5.2).

    Encoded once per recorded frame and shared by every client it goes to; compression is disabled on
    this server, so no extension ever touches the payload.
    """
    return data_frame(payload, binary=False)


def data_frame(payload: bytes, *, binary: bool) -> bytes:
    """``text_frame``, or the same as a binary frame (opcode 2)."""
    first = 0x82 if binary else 0x81
    n = len(payload)
    if n < 126:
        head = bytes((first, n))
    elif n < 1 << 16:
        head = bytes((first, 0x7E)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 0x7F)) + n.to_bytes(8, "big")
    return head + payload


async def _drain(client: ReplayClient) -> None:
    # the connection's flow control: returns at once unless the transport buffer is above write_limit
    try:
        await client.ws.drain()
    except Exception:  # the connection is gone; its handler cleans up
        return


def _split(target: str) -> tuple[str, Query]:
    parts = urlsplit(target)
    return parts.path, parse_qs(parts.query)


def _json_response(status: int, body: bytes, extra: HttpHeaders | None = None) -> Response:
    headers = Headers()
    headers["Content-Type"] = "application/json;charset=UTF-8"
    headers["Content-Length"] = str(len(body))
    headers["Connection"] = "close"
    for name, value in (extra or {}).items():
        headers[name] = value
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def _endpoint_paths(exchange: str) -> tuple[str, str]:
    """The paths of the exchange module's ws_url/rest_url, so a collector pointed at the replay by swapping
    scheme and host builds the same URLs it builds for the real exchange."""
    ex = get_exchange(exchange)
    ws_path = urlsplit(ex.ws_url).path.rstrip("/")
    rest_path = urlsplit(ex.rest_url).path.rstrip("/") if ex.rest_url else ""
    return ws_path, rest_path
