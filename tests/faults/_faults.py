"""Fault injection for the collector, over real sockets on 127.0.0.1.

- ``FeedServer``: a WebSocket endpoint (the ``websockets`` server: real handshake and framing) whose n-th
  connection runs a script; every frame a script sends is logged on its ``Conn``, so a test knows exactly what
  each connection was sent. Plain HTTP GETs (REST snapshots) are answered by a ``rest`` function.
- ``FaultProxy``: a TCP proxy in front of it that breaks the link as networks do: ``cut`` (abort every
  connection), ``stall`` (forward nothing more, close nothing), ``tear`` (forward half of a WebSocket frame, then
  abort).
- ``ingest``: the real ``Ingestor`` against them until a test's driver is done, and what it landed.

The frames are the bundled recordings' own (``binance_frames``, ``okx_frames``), every one distinct, with their
exchange times moved to the present where coverage is computed over them (``rebased``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import gzip
import http
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from mdplatform._time import HOUR_NS, MINUTE_NS
from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events, read_raw
from mdplatform.transforms import (
    compute_coverage,
    registry_normalizer,
    registry_stream_kinds,
    trades_for_window,
    validate_coverage,
)

SPOT = "binance-hftbacktest/spot/btcusdt_20240808.gz"
OKX = "cryptofeed-samples/OKX.ws.1.0.gz"

Frame = str | bytes
Script = Callable[["Conn"], Awaitable[None]]
#: (status, body, extra headers) for a REST path with its query
Rest = Callable[[str], tuple[int, bytes, dict[str, str]]]


# --- frames ---------------------------------------------------------------------------------------------


def binance_frames(shared_data: Path, stream: str, n: int) -> list[str]:
    """The first ``n`` frames of ``stream`` ("btcusdt@trade") in the Binance spot capture, as received."""
    return list(_binance(str(shared_data / SPOT), f'{{"stream":"{stream}"', n))


def binance_snapshot(shared_data: Path) -> tuple[str, list[str]]:
    """The capture's first REST depth snapshot (body as received) and the 200 depth diffs from the one before
    the first that continues it (Binance's rule: ``U <= lastUpdateId + 1 <= u``)."""
    path = str(shared_data / SPOT)
    snapshot = _binance(path, '{"lastUpdateId"', 1)[0]
    last = int(re.search(r'"lastUpdateId":(\d+)', snapshot).group(1))  # type: ignore[union-attr]
    diffs = _binance(path, '{"stream":"btcusdt@depth', 3000)
    ids = [tuple(int(re.search(f'"{k}":(\\d+)', d).group(1)) for k in "Uu") for d in diffs]  # type: ignore[union-attr]
    first = next(i for i, (lo, hi) in enumerate(ids) if lo <= last + 1 <= hi)
    return snapshot, list(diffs[max(first - 1, 0) : first + 199])


@functools.cache
def _binance(path: str, prefix: str, n: int) -> tuple[str, ...]:
    out: list[str] = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            frame = line.split(" ", 1)[1].rstrip("\n")
            if frame.startswith(prefix):
                out.append(frame)
                if len(out) == n:
                    break
    assert len(out) == n and len(set(out)) == n, f"{path}: {len(set(out))} distinct {prefix} frames, not {n}"
    return tuple(out)


def okx_frames(shared_data: Path, channel: str, inst: str, n: int) -> list[str]:
    """The first ``n`` pushes of ``channel``/``inst`` in the OKX cryptofeed sample (for books: the snapshot,
    then its updates)."""
    return list(_okx(str(shared_data / OKX), f'{{"arg":{{"channel":"{channel}","instId":"{inst}"}}', n))


@functools.cache
def _okx(path: str, prefix: str, n: int) -> tuple[str, ...]:
    out: list[str] = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            _, _, frame = line.partition(": ")
            if frame.startswith(prefix):
                out.append(frame.rstrip("\n"))
                if len(out) == n:
                    break
    assert len(out) == n and len(set(out)) == n, f"{path}: {len(set(out))} distinct {prefix} frames, not {n}"
    return tuple(out)


_TIMES = re.compile(r'"(E|T|ts)":("?)(\d{13})')


def rebased(frames: Sequence[str]) -> list[str]:
    """``frames`` with every exchange time (Binance ``E``/``T``, OKX ``ts``) moved by one offset so that the
    last one is a second ago: coverage is computed over exchange hours and refuses times ahead of their receipt,
    so recorded frames are made recent, as ``mdp replay --rebase`` does."""
    last = max(int(m.group(3)) for f in frames for m in _TIMES.finditer(f))
    shift = time.time_ns() // 1_000_000 - 1000 - last

    def move(m: re.Match[str]) -> str:
        return f'"{m.group(1)}":{m.group(2)}{int(m.group(3)) + shift}'

    return [_TIMES.sub(move, f) for f in frames]


# --- the server -----------------------------------------------------------------------------------------


class Conn:
    """One client connection of a ``FeedServer``: its number (1 for the first) and every frame sent on it with
    when (``time.time_ns``) its sending returned."""

    def __init__(self, n: int, ws: ServerConnection) -> None:
        self.n = n
        self.ws = ws
        self.sent: list[Frame] = []
        self.sent_ns: list[int] = []

    async def send(self, frame: Frame) -> None:
        await self.ws.send(frame)
        self.sent.append(frame)
        self.sent_ns.append(time.time_ns())

    async def send_all(self, frames: Sequence[Frame]) -> None:
        for frame in frames:
            await self.send(frame)

    async def recv(self) -> str:
        message = await self.ws.recv()
        return message if isinstance(message, str) else message.decode()


class FeedServer:
    """``script(conn)`` runs for every WebSocket connection; the connection stays open after it returns until
    the client (or the proxy) ends it. ``rest(path)``, if given, answers plain HTTP GETs; ``rest_log`` keeps
    (time.time_ns, path, status) of each."""

    def __init__(self, script: Script, *, rest: Rest | None = None) -> None:
        self.script = script
        self.rest = rest
        self.conns: list[Conn] = []
        self.rest_log: list[tuple[int, str, int]] = []
        self.port = 0
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FeedServer:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            compression=None,
            process_request=self._http,
            ping_interval=None,  # the client's pings are answered; the server sends none of its own
            close_timeout=1,
            max_size=2**20,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        conn = Conn(len(self.conns) + 1, ws)
        self.conns.append(conn)
        with contextlib.suppress(ConnectionClosed):  # the client or the proxy ended the connection mid-script
            await self.script(conn)
        await ws.wait_closed()

    def _http(self, ws: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        status, body, extra = self.rest(request.path) if self.rest else (404, b"{}", {})
        self.rest_log.append((time.time_ns(), request.path, status))
        headers = Headers({"Content-Type": "application/json", "Content-Length": str(len(body))})
        headers["Connection"] = "close"
        for name, value in extra.items():
            headers[name] = value
        return Response(status, http.HTTPStatus(status).phrase, headers, body)


async def okx_subscribe(conn: Conn, refuse: Collection[str] = ()) -> None:
    """Answer the client's subscribe request as OKX does: an ack per stream, an error for an unknown instId
    (60018; OKX names the stream only in its message)."""
    request = orjson.loads(await conn.recv())
    assert request["op"] == "subscribe", request
    for arg in request["args"]:
        if arg["instId"] in refuse:
            msg = f"channel:{arg['channel']},instId:{arg['instId']} doesn't exist"
            reply = {"event": "error", "msg": msg, "code": "60018", "connId": "a4d3ae55"}
        else:
            reply = {"event": "subscribe", "arg": arg, "connId": "a4d3ae55"}
        await conn.send(orjson.dumps(reply).decode())


# --- the proxy ------------------------------------------------------------------------------------------


class _Link:
    """One proxied connection: the client's and the server's sides."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client, self.server = client, server
        self.stalled = False
        self.frames = 0  # WebSocket data frames forwarded to the client

    def abort(self) -> None:
        self.client.transport.abort()
        self.server.transport.abort()


class FaultProxy:
    """Forwards TCP connections to 127.0.0.1:``upstream``; breaks them on demand. Each fault returns when it
    struck (``time.time_ns``)."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.connections = 0
        self.torn_ns: int | None = None
        self._tear_at: int | None = None
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._closing = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._closing.set()
        self.cut()
        self._server.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def cut(self) -> int:
        """Abort every open connection (both ends see it die, no close frame)."""
        now = time.time_ns()
        for link in list(self._links):
            link.abort()
        return now

    def stall(self) -> int:
        """Forward nothing more on the open connections, either way, and close nothing (a dead NAT entry, a hung
        middlebox); new connections flow."""
        now = time.time_ns()
        for link in self._links:
            link.stalled = True
        return now

    def tear(self, frame: int) -> None:
        """On the next connection to carry that many, forward only the first half of the ``frame``-th WebSocket
        data frame (1 for the first) to the client, then abort the connection (``torn_ns``: when)."""
        self._tear_at = frame

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(self._upstream(link, reader), self._downstream(link, up_reader))
        finally:
            link.abort()
            self._links.discard(link)

    async def _upstream(self, link: _Link, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await self._write(link, link.server, data)
        link.abort()

    async def _downstream(self, link: _Link, reader: asyncio.StreamReader) -> None:
        """The handshake answer, then frame by frame (RFC 6455 5.2; a server's frames are unmasked), counting the
        data frames so one can be torn."""
        with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            await self._write(link, link.client, await reader.readuntil(b"\r\n\r\n"))
            while True:
                head = await reader.readexactly(2)
                size = head[1] & 0x7F
                if size >= 126:
                    ext = await reader.readexactly(2 if size == 126 else 8)
                    head, size = head + ext, int.from_bytes(ext, "big")
                if head[0] & 0x0F in (0, 1, 2):  # continuation, text, binary
                    link.frames += 1
                    if link.frames == self._tear_at:
                        self._tear_at = None
                        await self._write(link, link.client, head + await reader.readexactly(size // 2))
                        self.torn_ns = time.time_ns()
                        break
                await self._write(link, link.client, head)
                while size:
                    chunk = await reader.read(min(size, 65536))
                    if not chunk:
                        raise ConnectionError("server closed mid-frame")
                    size -= len(chunk)
                    await self._write(link, link.client, chunk)
        link.abort()

    async def _write(self, link: _Link, to: asyncio.StreamWriter, data: bytes) -> None:
        if link.stalled:
            await self._closing.wait()  # until the proxy shuts down
            raise ConnectionError("stalled link closed with the proxy")
        to.write(data)
        await to.drain()


# --- the ingestor ---------------------------------------------------------------------------------------


def collector(
    exchange: str, symbols: Sequence[str], channels: Sequence[str], url: str, **kw: Any
) -> ExchangeCollectorConfig:
    """A collector pointed at a fault server (REST snapshots too), reconnecting within 10-50 ms (the exchange's
    connection rate raised to match: these tests reconnect far faster than an exchange allows)."""
    settings: dict[str, Any] = {"reconnect_initial_s": 0.01, "reconnect_max_s": 0.05, "connects_per_s": 1000.0, **kw}
    return ExchangeCollectorConfig(
        exchange=exchange,
        symbols=tuple(symbols),
        channels=tuple(channels),
        ws_url=url + ("/ws/v5/public" if exchange == "okx" else ""),
        rest_url=url.replace("ws://", "http://") + "/api/v3/depth",
        **settings,
    )


class Probe:
    """What a driver sees of the running ingestor."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.connections = [c for coll in ingestor.manager.collectors for c in coll.connections]

    def received(self) -> int:
        """Frames the collectors received: one counted here is in the lake writer already (the receive loop
        counts and appends it without yielding to the event loop in between)."""
        return sum(c.counters.messages_received for c in self.connections)

    async def until_received(self, n: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.received() < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {n} frames (have {self.received()})")
            await asyncio.sleep(0.001)


@dataclass
class Outcome:
    """What an ingest run left: the status and health as the driver finished, and the lake's rows."""

    status: dict[str, Any]
    health: dict[str, Any]
    raw: pl.DataFrame  # every raw/ row, recv_ts as Int64 ns, in landing order per connection
    events: pl.DataFrame  # every events/ row, recv_ts as Int64 ns
    lake: str
    wall_s: float
    conn_ids: list[str] = field(default_factory=list)  # WebSocket connections in the order they opened

    def kind(self, kind: str) -> pl.DataFrame:
        return self.events.filter(pl.col("kind") == kind)

    def first_recv(self, conn_id: str) -> int:
        return int(self.raw.filter(pl.col("conn_id") == conn_id).get_column("recv_ts").min())  # type: ignore[arg-type]

    def close_detail(self, conn_id: str) -> str:
        rows = self.kind("close").filter(pl.col("conn_id") == conn_id).get_column("detail").to_list()
        assert len(rows) == 1, rows
        return str(rows[0])


async def ingest(
    tmp_path: Path, configs: Sequence[ExchangeCollectorConfig], drive: Callable[[Probe], Awaitable[None]]
) -> Outcome:
    """Run the real ``Ingestor`` (its own journal directory, a fresh lake) until ``drive`` returns, then stop it
    the way SIGTERM does and read back what it landed."""
    lake = str(tmp_path / "lake")
    config = IngestConfig(tuple(configs), journal=str(tmp_path / "journal"))
    ingestor = Ingestor(config, lake=lake, status_every_s=3600)
    stop = asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(ingestor.run(stop=stop))
    try:
        while not ingestor.manager.collectors[0].connections:  # the collectors start inside run()
            await asyncio.sleep(0.001)
        await drive(Probe(ingestor))
        status, health = ingestor.manager.get_status(), ingestor.manager.get_health_status()
    finally:
        stop.set()
        await task
    wall = time.monotonic() - started
    ns = pl.col("recv_ts").cast(pl.Int64)
    raw = read_raw(lake, 0, 2**62).with_columns(recv_ts=ns).sort("recv_ts", "conn_id", "seq")
    events = read_events(lake, 0, 2**62).with_columns(recv_ts=ns).sort("recv_ts", maintain_order=True)
    opened = events.filter(pl.col("kind") == "open").get_column("conn_id").to_list()
    return Outcome(status, health, raw, events, lake, wall, opened)


# --- counting -------------------------------------------------------------------------------------------


def as_text(frame: Frame) -> str:
    """A frame as the raw layer holds it (a non-UTF-8 binary frame is landed base64-encoded)."""
    if isinstance(frame, str):
        return frame
    try:
        return frame.decode()
    except UnicodeDecodeError:
        return base64.b64encode(frame).decode()


def lost_and_duplicated(sent: Sequence[Frame], landed: Sequence[str]) -> tuple[int, int]:
    """(frames sent but not landed, frames landed more often than sent), as multisets of payloads."""
    want, got = Counter(as_text(f) for f in sent), Counter(landed)
    return sum((want - got).values()), sum((got - want).values())


def assert_landed_as_sent(out: Outcome, server: FeedServer, expected: Sequence[Sequence[Frame]] | None = None) -> None:
    """Every WebSocket connection landed exactly what the server sent on it, in order, with seq 1..n
    (``expected``: per connection, what should have arrived instead, where a fault kept some of it away)."""
    want = [c.sent for c in server.conns] if expected is None else expected
    assert len(out.conn_ids) == len(want), (out.conn_ids, len(want))
    for conn_id, frames in zip(out.conn_ids, want, strict=True):
        rows = out.raw.filter(pl.col("conn_id") == conn_id).sort("seq")
        assert rows.get_column("seq").to_list() == list(range(1, len(frames) + 1)), conn_id
        assert rows.get_column("payload").to_list() == [as_text(f) for f in frames], conn_id


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def coverage(out: Outcome) -> pl.DataFrame:
    """The coverage rows of every exchange hour the landed frames reached, computed from the lake the way the
    hourly asset does (trades of the window, events around it) and checked as it checks them; ``start``/``end``
    as Int64 ns, a stretch across an hour's edge as one row."""
    late = 15 * MINUTE_NS
    times = out.events.get_column("exchange_ts").cast(pl.Int64).drop_nulls()
    first, last = int(times.min()), int(times.max())  # type: ignore[arg-type]
    parts = []
    for hour in range(first - first % HOUR_NS, last + 1, HOUR_NS):
        lo, hi = hour - late, hour + HOUR_NS + late
        window = trades_for_window(
            read_raw(out.lake, lo, hi), hour, hour + HOUR_NS, late, normalize=registry_normalizer, skew_ns=10**10
        )
        events = read_events(out.lake, lo, hi)
        cov = compute_coverage(events, window.observed, hour, hour + HOUR_NS, kinds=registry_stream_kinds())
        assert validate_coverage(cov, hour, hour + HOUR_NS) == [], cov
        parts.append(cov)
    ns = pl.col("start_time").cast(pl.Int64), pl.col("end_time").cast(pl.Int64)
    cols = ("exchange", "channel", "symbol", "start", "end", "status", "reason", "detail", "missing")
    rows = pl.concat(parts).with_columns(start=ns[0], end=ns[1]).select(cols).sort("channel", "symbol", "start")
    merged: list[dict[str, Any]] = []
    same = ("channel", "symbol", "status", "reason")
    for row in rows.to_dicts():  # a stretch across an hour's edge is one stretch
        prev = merged[-1] if merged else None
        if prev and prev["end"] == row["start"] and all(prev[k] == row[k] for k in same) and not row["missing"]:
            prev["end"] = row["end"]
        else:
            merged.append(row)
    return pl.DataFrame(merged, schema=rows.schema)
