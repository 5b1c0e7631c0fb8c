"""The receive hot path without a socket: picows frames handed to a connection's listener as picows would.

The compiled path (``_batcher.pyx``) and the pure-Python one land the same rows, numbered alike, and show the
connection the same frames (book frames to the session, acks, the first exchange time, a frame that is not UTF-8
quarantined); a batch's buffers are taken again only once nobody holds them; a stream key is routed once."""

from __future__ import annotations

import asyncio
import gzip
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from picows import WSMsgType
from picows.picows import _make_test_ws_frame

from mdplatform.collector import Connection, ExchangeCollectorConfig, _connection
from mdplatform.collector._collector import gate_for
from mdplatform.exchanges import Subscription, get_exchange
from mdplatform.history import RestClient

SPOT = "binance-hftbacktest/spot/btcusdt_20240808.gz"
OKX = "cryptofeed-samples/OKX.ws.1.0.gz"
Row = tuple[int, str, str, str]  # seq, channel, symbol, payload


class Sink:
    """Rows as the lake writer would get them, whichever way they come."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.recv: list[int] = []
        self.events: list[tuple[str, str, int, str]] = []  # kind, symbol, seq, detail
        self.batches = 0

    def append_frames(
        self, recv: int, exchange: str, conn: str, seq: int, routes: list[Any], payloads: list[str]
    ) -> None:
        self.rows += [(seq + i, *r, p) for i, (r, p) in enumerate(zip(routes, payloads, strict=True))]
        self.recv += [recv] * len(payloads)

    def append_batch(self, exchange: str, conn: str, seq: int, batch: Any, routes: list[Any]) -> None:
        self.batches += 1
        offsets = np.frombuffer(batch.offsets, np.int32)
        data = bytes(batch.data)
        index = np.frombuffer(batch.routes, np.int32)
        for i in range(batch.rows):
            payload = data[offsets[i] : offsets[i + 1]].decode()
            self.rows.append((seq + i, *routes[index[i]], payload))
        self.recv += np.frombuffer(batch.recv, np.int64).tolist()

    def event(
        self, recv: int, exchange: str, conn: str, kind: str, channel: str, symbol: str, seq: int, *rest: Any
    ) -> None:
        self.events.append((kind, symbol, seq, rest[-1]))


class Session:
    """Records what the connection shows the book session."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def on_frame(self, channel: str, symbol: str, frame: str) -> None:
        self.seen.append((channel, symbol, frame))

    def sync_state(self) -> dict[str, str]:
        return {}


def _recorded(path: Path, n: int) -> list[str]:
    with gzip.open(path, "rt") as fh:
        frames = (line.rstrip("\n").split(" ", 1)[1] for line in fh)
        return [f for _, f in zip(range(n), (f for f in frames if not f.startswith('{"lastUpdateId"')), strict=False)]


def _okx_recorded(path: Path) -> list[str]:
    """The frames received (``<ts>: <frame>`` lines; what was sent is ``<url> <- ...``)."""
    with gzip.open(path, "rt") as fh:
        return [line.split(": ", 1)[1].rstrip("\n") for line in fh if line[:1].isdigit()]


def _frame(kind: WSMsgType, payload: bytes, fin: bool = True) -> Any:
    return _make_test_ws_frame(kind, payload, fin, False)


def _through(
    exchange: str, channel: str, symbol: str, session: Any, feed: Callable[[Connection, Any], None]
) -> tuple[Sink, Any]:
    """A fresh connection of ``exchange`` to ``channel`` of ``symbol``, with ``session``: ``feed(conn, listener)``
    gives its listener the frames, then the connection ends. Returns the rows and the compiled path's batcher."""
    sink = Sink()
    config = ExchangeCollectorConfig(exchange=exchange, symbols=(symbol,), channels=(channel,))
    conn = Connection(
        get_exchange(exchange), config, [Subscription(channel, symbol)], sink, RestClient(), gate_for(config)
    )
    conn._spawn = lambda coro: coro.close()  # type: ignore[method-assign]  # (no REST fetch is made)

    async def run() -> Any:
        conn._begin("c1", 1)
        receiver = _connection._Receiver(conn, "c1", "ws://x")
        conn._link, conn.session = receiver, session
        listener = receiver.listener()
        feed(conn, listener)
        listener.on_ws_disconnected(None)
        return receiver.batcher

    return sink, asyncio.run(run())


def _receive(exchange: str, channel: str, frames: list[Any]) -> tuple[Sink, Session, Any]:
    """Every frame through a fresh connection's listener (each one a read of its own), then the connection's end."""
    session = Session()

    def feed(conn: Connection, listener: Any) -> None:
        for frame in frames:
            listener.on_ws_frame(None, frame)

    sink, batcher = _through(exchange, channel, "X", session, feed)
    return sink, session, batcher


def _with_oddities(frames: list[str]) -> list[Any]:
    """The recorded frames as picows hands them over, with what a server may also send in between: an ack, a pong,
    a frame that is not UTF-8, a message in two fragments, a stream frame laid out otherwise, a long stream name."""
    wire = [_frame(WSMsgType.TEXT, f.encode()) for f in frames]
    trade = next(f for f in frames if '@trade"' in f[:40])
    odd = [
        [_frame(WSMsgType.TEXT, b'{"result":null,"id":1}')],
        [_frame(WSMsgType.PONG, b"7")],
        [_frame(WSMsgType.BINARY, b"\xff\xfe" + trade.encode()[2:])],
        [_frame(WSMsgType.TEXT, trade.encode()[:50], fin=False), _frame(WSMsgType.CONTINUATION, trade.encode()[50:])],
        [_frame(WSMsgType.TEXT, trade.replace('{"stream":"', '{"stream": "', 1).encode())],
        [_frame(WSMsgType.TEXT, trade.replace("btcusdt@trade", "btcusdt@" + "x" * 200, 1).encode())],
        [_frame(WSMsgType.BINARY, trade.encode())],  # binary, but UTF-8: landed as text
    ]
    for i, frames_in_a_row in enumerate(odd):
        wire[100 + 37 * i : 100 + 37 * i] = frames_in_a_row
    return wire


def test_both_receive_paths_land_the_same_rows(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not _connection.compiled_receive():
        pytest.skip("the compiled receive path is not built")
    frames = _recorded(shared_data / SPOT, 3_000)
    compiled = _receive("binance", "depth", _with_oddities(frames))
    monkeypatch.setattr(_connection, "_BATCHER", None)
    python = _receive("binance", "depth", _with_oddities(frames))
    (sink, session, batcher), (py_sink, py_session, _) = compiled, python

    assert len(sink.rows) == 3_000 + 6  # the pong is no row, the two fragments are one
    assert sink.rows == py_sink.rows
    assert [r[0] for r in sink.rows] == list(range(1, len(sink.rows) + 1))
    assert sink.recv == sorted(sink.recv)
    assert sink.events == py_sink.events
    assert [e[0] for e in sink.events] == ["start", "frame_error"]
    assert session.seen == py_session.seen
    assert len(session.seen) == sum("@depth" in f[:40] for f in frames)
    binary = next(r for r in sink.rows if r[1] == "binary")
    assert sink.events[1][2] == binary[0] and "not UTF-8" in sink.events[1][3]
    assert next(r for r in sink.rows if r[1] == "control")[3] == '{"result":null,"id":1}'
    assert sum(r[1] == "trade" for r in sink.rows) == sum('@trade"' in f[:40] for f in frames) + 3
    assert batcher is not None and sink.batches > 0 and py_sink.batches == 0  # the rows came in batches here


class Chained:
    """The exchange's own session (``ChainedSession``), recording what it is shown and what it answers."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seen = 0
        self.advanced = 0
        self.actions: list[tuple[str | None, tuple[Any, ...]]] = []

    def on_frame(self, channel: str, symbol: str, frame: str) -> Any:
        self.seen += 1
        return self._answer(self.inner.on_frame(channel, symbol, frame))

    def on_snapshot(self, symbol: str, body: str) -> Any:
        return self._answer(self.inner.on_snapshot(symbol, body))

    def _answer(self, action: Any) -> Any:
        if action is not None:
            self.actions.append((action.error, action.events))
        return action

    def sync_state(self) -> dict[str, str]:
        return dict(self.inner.sync_state())

    def id_chain(self, channel: str) -> Any:
        return self.inner.id_chain(channel)

    def chain_position(self, channel: str, symbol: str) -> int:
        return int(self.inner.chain_position(channel, symbol))

    def chain_advance(self, channel: str, symbol: str, last: int) -> None:
        self.advanced += 1
        self.inner.chain_advance(channel, symbol, last)


def _receive_chained(exchange: str, lines: list[str]) -> tuple[Sink, Chained]:
    """A recording's depth frames through a connection with the exchange's real session; its REST snapshot (inline)
    given to the session where it was received (the fetches the session asks for are not made)."""
    session = Chained(get_exchange(exchange).new_session([Subscription("depth", "BTCUSDT")], "http://127.0.0.1:9"))

    def feed(conn: Connection, listener: Any) -> None:
        for line in lines:
            if not line.startswith('{"lastUpdateId"'):
                listener.on_ws_frame(None, _frame(WSMsgType.TEXT, line.encode()))
            elif (action := session.on_snapshot("BTCUSDT", line)) is not None:
                conn._act(action, 1)

    sink, _ = _through(exchange, "depth", "BTCUSDT", session, feed)
    return sink, session


@pytest.mark.parametrize(
    ("exchange", "path"),
    [
        ("binance", "binance-hftbacktest/spot/btcusdt_20240808.gz"),
        ("binance-usdm", "binance-hftbacktest/usdm/btcusdt_20240808.gz"),
    ],
)
def test_a_book_chain_in_sequence_is_checked_by_the_compiled_path(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, exchange: str, path: str
) -> None:
    """Binance's depth frames continuing their chain never reach the session on the compiled path, with the same
    outcome: rows, events (synced, gap), the session's answers and its chain's last id; a frame dropped from the
    chain, one received twice and one whose ids cannot be read go to the session and are found as before."""
    if not _connection.compiled_receive():
        pytest.skip("the compiled receive path is not built")
    with gzip.open(shared_data / path, "rt") as fh:
        lines = [line.rstrip("\n").split(" ", 1)[1] for _, line in zip(range(4_000), fh, strict=False)]
    depth = [i for i, line in enumerate(lines) if "@depth" in line[:40]]
    snapshot = next(i for i, line in enumerate(lines) if line.startswith('{"lastUpdateId"'))
    after = [i for i in depth if i > snapshot + 200]
    assert len(after) > 50
    broken = list(lines)  # (changed from the end: the indexes before stay right)
    del broken[after[40]]  # a diff lost
    broken[after[20]] = broken[after[20]].replace('"u":', '"u" :', 1)  # ids unreadable: a frame error, then a gap
    broken.insert(after[10], broken[after[10]])  # received twice: stale, nothing to say
    for frames in (lines, broken):
        compiled = _receive_chained(exchange, frames)
        with monkeypatch.context() as m:
            m.setattr(_connection, "_BATCHER", None)
            python = _receive_chained(exchange, frames)
        (sink, session), (py_sink, py_session) = compiled, python
        assert sink.rows == py_sink.rows
        assert len(sink.rows) == sum(not f.startswith('{"lastUpdateId"') for f in frames)
        assert sink.events == py_sink.events
        assert session.actions == py_session.actions
        assert session.sync_state() == py_session.sync_state()
        assert session.inner.last_update_id("BTCUSDT") == py_session.inner.last_update_id("BTCUSDT")
        # the Python path shows the session every depth frame, the compiled one those before the chain is in
        # sequence, and each that does not continue it (then every one until a snapshot would sync it again)
        assert py_session.seen == sum("@depth" in f[:40] for f in frames)
        kinds = [e[0] for e in sink.events]
        if frames is lines:
            assert kinds == ["start", "synced"], sink.events
            assert session.seen < py_session.seen / 10 and session.advanced > 0
        else:
            assert kinds[:4] == ["start", "synced", "frame_error", "gap"], sink.events
            # no snapshot follows (no fetch is made here): from the unreadable frame on, the session sees them all
            unsynced = sum("@depth" in f[:40] for f in frames[after[20] + 1 :])
            assert unsynced < session.seen < unsynced + 40, (session.seen, unsynced)
            assert py_session.seen - session.seen > 15  # those between the snapshot's and the stale one's
            assert session.inner.sync_state() == {"BTCUSDT": "resyncing"}


def test_okx_frames_are_routed_by_their_arg(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not _connection.compiled_receive():
        pytest.skip("the compiled receive path is not built")
    frames = _okx_recorded(shared_data / OKX)
    wire = [_frame(WSMsgType.TEXT, f.encode()) for f in frames]
    sink, session, _ = _receive("okx", "books", wire)
    monkeypatch.setattr(_connection, "_BATCHER", None)
    py_sink, py_session, _ = _receive("okx", "books", [_frame(WSMsgType.TEXT, f.encode()) for f in frames])
    assert sink.rows == py_sink.rows and session.seen == py_session.seen
    okx = get_exchange("okx")
    assert [(r[1], r[2]) for r in sink.rows] == [okx.route(f) for f in frames]
    assert {r[1] for r in sink.rows} >= {"books", "trades", "tickers", "control"}


def test_a_stream_key_routes_every_frame_like_route(shared_data: Path) -> None:
    """What the compiled path relies on (``route_key`` of the text up to the n-th quote after ``route_prefix``)
    holds for every recorded frame."""
    for exchange, frames in (
        (
            "binance",
            _recorded(shared_data / SPOT, 20_000)
            + _recorded(shared_data / "binance-hftbacktest/usdm/btcusdt_20240808.gz", 5_000),
        ),
        ("okx", _okx_recorded(shared_data / OKX)),
    ):
        ex = get_exchange(exchange)
        prefix, quotes = ex.route_prefix  # type: ignore[attr-defined]
        keyed = 0
        for frame in frames:
            if not frame.startswith(prefix):
                continue
            # the text up to the n-th quote, as the compiled path cuts it
            key = re.match(f'(?:[^"]*"){{{quotes}}}', frame[len(prefix) :])
            assert key is not None
            route = ex.route_key(key.group(0)[:-1])  # type: ignore[attr-defined]
            if route is not None:
                keyed += 1
                assert route == ex.route(frame), frame[:120]
        assert keyed > 0.9 * len(frames), exchange


class Link:
    """The Python side of a ``Batcher`` reduced to what it calls."""

    def __init__(self) -> None:
        self.batches: list[Any] = []
        self.learned: list[str] = []
        self.classified = 0
        self.recv = 0

    def land(self, batch: Any) -> None:
        self.batches.append(batch)

    def learn(self, key: str) -> int:
        self.learned.append(key)
        return -1 if key.startswith("odd") else 0

    def classify(self, frame: str) -> int:
        self.classified += 1
        return 2

    def interpret(self, frame: str, index: int, recv: int) -> bool:
        return True

    def chain_at(self, index: int) -> bool:
        return False  # no route's ids are checked by the batcher

    def chain_advance(self, index: int, last: int) -> None:
        raise AssertionError("no chain is checked here")


def _batcher(link: Link) -> Any:
    from mdplatform.collector._batcher import Batcher

    batcher = Batcher(link, asyncio.get_running_loop(), b'{"stream":"', 1)
    batcher.started = True
    return batcher


@pytest.mark.skipif(not _connection.compiled_receive(), reason="the compiled receive path is not built")
def test_batches_go_at_a_size_or_an_age_and_their_buffers_only_back_when_free() -> None:
    from mdplatform.collector._batcher import HANDOVER_NS, HANDOVER_ROWS

    async def run() -> None:
        link = Link()
        batcher = _batcher(link)
        payload = [b'{"stream":"a@trade","data":%d}' % i for i in range(HANDOVER_ROWS + 5)]
        for p in payload:
            batcher.on_ws_frame(None, _frame(WSMsgType.TEXT, p))
        # a batch goes when full (HANDOVER_ROWS) or when its first frame is HANDOVER_NS old: on a quiet machine
        # the loop above fills one batch and leaves 5 frames, on a loaded one the age may cut earlier
        assert all(b.rows <= HANDOVER_ROWS for b in link.batches) and link.batches
        assert sum(b.rows for b in link.batches) + batcher.pending == len(payload)
        # what is pending goes by the timer; the loop may run it late: wait for it
        for _ in range(500):
            if batcher.pending == 0:
                break
            await asyncio.sleep(HANDOVER_NS / 1e9)
        assert sum(b.rows for b in link.batches) == len(payload) and batcher.pending == 0
        assert b"".join(bytes(b.data) for b in link.batches) == b"".join(payload)  # in order, nothing twice
        made = len(link.batches)
        assert link.learned == ["a@trade"] and link.classified == 0  # one key, routed once
        held = link.batches[0]
        first = bytes(held.data)
        assert first == b"".join(payload[: held.rows])
        del link.batches[1:]
        for i in range(3):  # the second batch's buffers are free: taken again; the held one's are not
            batcher.on_ws_frame(None, _frame(WSMsgType.TEXT, b'{"stream":"a@trade","data":"new %d"}' % i))
            batcher.hand_over()
            assert bytes(held.data) == first
            del link.batches[1:]
        assert batcher.reused == 3 and batcher.allocated == made
        view = held.data  # a view of a batch's data (as Arrow's buffers are) keeps its buffers from being taken
        del link.batches[:], held
        for i in range(3):
            batcher.on_ws_frame(None, _frame(WSMsgType.TEXT, b'{"stream":"a@trade","data":"more %d"}' % i))
            batcher.hand_over()
            assert bytes(view) == first
            del link.batches[:]
        del view
        allocated = batcher.allocated
        for i in range(3):
            batcher.on_ws_frame(None, _frame(WSMsgType.TEXT, b'{"stream":"a@trade","data":"again %d"}' % i))
            batcher.hand_over()
            del link.batches[:]
        assert batcher.allocated == allocated  # nothing new: buffers nobody holds are taken again
        batcher.on_ws_frame(None, _frame(WSMsgType.TEXT, b'{"stream":"odd","data":0}'))
        batcher.on_ws_frame(None, _frame(WSMsgType.TEXT, b'{"stream":"odd","data":1}'))
        batcher.on_ws_frame(None, _frame(WSMsgType.TEXT, b'{"other":1}'))
        assert link.learned == ["a@trade", "odd"] and link.classified == 3  # a key without a route: frame by frame

    asyncio.run(run())
