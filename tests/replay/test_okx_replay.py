"""The OKX v5 replay over a real socket: ping/pong, subscribe acks, books snapshots mid-stream, rebase, seqIds, the
REST order book (on the real 2022 recording; the seqIds it lacks are given as OKX's v5 docs describe them)."""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
from _replay_util import recv_n, recv_quiet, run
from websockets.asyncio.client import connect

from mdplatform.capture import read_capture
from mdplatform.exchanges import OkxSession, SessionAction, Subscription, get_exchange
from mdplatform.exchanges.okx import REST_BOOKS_PATH
from mdplatform.replay import ReplayServer

OKX = "cryptofeed-samples/OKX.ws.1.0.gz"


def _recorded(path: Path, *keys: tuple[str, str]) -> list[str]:
    route = get_exchange("okx").route
    return [f.frame for f in read_capture(path) if route(f.frame) in keys]


def _subscribe(*args: tuple[str, str]) -> str:
    return orjson.dumps({"op": "subscribe", "args": [{"channel": c, "instId": i} for c, i in args]}).decode()


def test_ping_acks_and_subscribed_frames_in_order(shared_data: Path) -> None:
    path = shared_data / OKX
    keys = (("books", "BTC-USDT"), ("trades", "BTC-USDT"))
    expected = _recorded(path, *keys)
    assert len(expected) == 98 + 69

    async def scenario() -> None:
        async with ReplayServer([path], verbose=False) as server:
            assert server.exchange == "okx" and server.ws_url.endswith("/ws/v5/public")
            async with connect(server.ws_url) as ws:
                await ws.send("ping")
                assert await ws.recv() == "pong"
                await ws.send("{not json")
                error = orjson.loads(await ws.recv())
                assert (error["event"], error["code"]) == ("error", "60012")
                await asyncio.sleep(0.05)
                assert server.position == 0  # no subscription yet: the cursor waits
                await ws.send(_subscribe(*keys))
                acks = [orjson.loads(m) for m in await recv_n(ws, 2)]
                assert [(a["event"], a["arg"]) for a in acks] == [
                    ("subscribe", {"channel": "books", "instId": "BTC-USDT"}),
                    ("subscribe", {"channel": "trades", "instId": "BTC-USDT"}),
                ]
                frames = await recv_n(ws, len(expected))
                await server.wait_finished(10)
                assert await recv_quiet(ws, 0.2) == []
                await ws.send("ping")  # still served after the recording ended
                assert await ws.recv() == "pong"
            assert frames == expected  # byte for byte, in recorded order
            assert server.sent == len(expected)
            assert server.sent_by_stream == {"books:BTC-USDT": 98, "trades:BTC-USDT": 69}
            # the recorded acks are not replayed: the server answers its own clients
            assert server.skipped == 18

            session = OkxSession(get_exchange("okx"), [Subscription("books", "BTC-USDT")])  # type: ignore[arg-type]
            actions = [session.on_frame(*get_exchange("okx").route(frame), frame) for frame in frames]
            assert [_reported(a) for a in actions if a is not None] == [["synced"]]  # the recorded snapshot
            assert session.checksums_verified == 98

    run(scenario)


def _reported(action: SessionAction | None) -> list[str]:
    """The event kinds of a session's answer that asks for nothing (no error, no resubscribe)."""
    assert action is not None and action.error is None and not action.send and action.fetch_snapshot is None
    return [ev.kind for ev in action.events]


def test_books_subscribe_mid_stream_gets_a_valid_snapshot(shared_data: Path) -> None:
    path = shared_data / OKX
    okx = get_exchange("okx")
    trades = _recorded(path, ("trades", "BTC-USDT"))
    books = _recorded(path, ("books", "UNI-USD-SWAP"))

    async def scenario() -> None:
        # paced (the 11 s recording in ~1.1 s) so the second client joins while the stream is under way
        async with ReplayServer([path], speed=10, verbose=False) as server:
            first = await connect(server.ws_url, max_queue=None)
            late = await connect(server.ws_url, max_queue=None)
            await first.send(_subscribe(("trades", "BTC-USDT")))
            while server.position < 60:
                await asyncio.sleep(0.01)
            await late.send(_subscribe(("books", "UNI-USD-SWAP"), ("trades", "BTC-USDT")))
            ack1, ack2, snapshot = (orjson.loads(m) for m in await recv_n(late, 3))
            assert (ack1["event"], ack2["event"]) == ("subscribe", "subscribe")
            assert snapshot["action"] == "snapshot"
            assert snapshot["arg"] == {"channel": "books", "instId": "UNI-USD-SWAP"}
            (data,) = snapshot["data"]
            assert list(data) == ["asks", "bids", "ts", "checksum"]
            assert all(len(level) == 4 and isinstance(level[0], str) for level in data["asks"] + data["bids"])
            await server.wait_finished(10)
            first_frames = await recv_quiet(first, 0.2)
            late_frames = await recv_quiet(late, 0.1)
            await first.close()
            await late.close()
            assert server.protocol is not None and server.protocol.snapshots_sent == 1  # type: ignore[attr-defined]
            # every subscriber gets the shared timeline from the moment it subscribed
            assert first_frames[0].startswith('{"event":"subscribe"')
            assert first_frames[1:] == trades
            late_trades = [f for f in late_frames if '"channel":"trades"' in f]
            assert 0 < len(late_trades) < len(trades) and late_trades == trades[-len(late_trades) :]
            updates = [f for f in late_frames if '"channel":"books"' in f]
            assert len(updates) > 20 and updates == books[-len(updates) :]
            assert server.sent == len(first_frames) - 1 + len(late_frames)

            session = OkxSession(okx, [Subscription("books", "UNI-USD-SWAP")])  # type: ignore[arg-type]
            frames = [orjson.dumps(snapshot).decode(), *updates]
            actions = [session.on_frame("books", "UNI-USD-SWAP", frame) for frame in frames]
            assert _reported(actions[0]) == ["synced"]  # the generated snapshot loads the book
            assert actions[1:] == [None] * len(updates)
            # the generated snapshot's checksum and every later recorded one verify against it
            assert session.checksums_verified == 1 + len(updates)

    run(scenario)


def test_rebase_shifts_ts_only(shared_data: Path) -> None:
    path = shared_data / OKX
    keys = (("books", "BTC-USD-220527"), ("tickers", "BTC-USDT"))
    expected = _recorded(path, *keys)

    async def scenario() -> None:
        async with ReplayServer([path], rebase=True, verbose=False) as server, connect(server.ws_url) as ws:
            await ws.send(_subscribe(*keys))
            got = (await recv_n(ws, 2 + len(expected)))[2:]
            shift_ms = server.shift_ns // 10**6

            def shifted(frame: str) -> str:
                return re.sub(r'"ts":"(\d+)"', lambda m: f'"ts":"{int(m[1]) + shift_ms}"', frame)

            assert shift_ms > 0 and server.shift_ns % (60 * 10**9) == 0
            assert got == [shifted(f) for f in expected]

    run(scenario)


def test_run_replay_prints_machine_readable_lines(shared_data: Path) -> None:
    code = (
        "import sys; from mdplatform.replay import run_replay; "
        f"run_replay([{str(shared_data / OKX)!r}], speed=0, rebase=True)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines: dict[str, str] = {}
        while "REPLAY_SHIFT_NS" not in lines:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            key, _, value = line.strip().partition("=")
            lines[key] = value
        assert int(lines["REPLAY_SHIFT_NS"]) % (60 * 10**9) == 0
        port = int(lines["REPLAY_PORT"])
        assert lines["REPLAY_WS_URL"] == f"ws://127.0.0.1:{port}/ws/v5/public"

        async def client() -> None:
            async with connect(lines["REPLAY_WS_URL"]) as ws:
                await ws.send(_subscribe(("trades", "BTC-USDT")))
                await recv_n(ws, 1 + 69)

        run(client)
        while "REPLAY_FINISHED" not in lines:
            key, _, value = proc.stdout.readline().strip().partition("=")
            lines[key] = value
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert out.strip().splitlines()[-1] == "REPLAY_SENT=69"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_seq_ids_on_request_and_the_rest_order_book(shared_data: Path) -> None:
    """``seq_ids``: the 2022 recording's books pushes numbered as OKX numbers them today (snapshot prevSeqId -1, each
    update's prevSeqId the previous seqId); a mid-stream subscriber's snapshot and GET /api/v5/market/books carry the
    book's seqId, so a session splices either with the stream (OKX v5 docs: "WS / Order book channel", "GET / Order
    book", the 2026 changelog's "How to manage a local order book correctly")."""
    path = shared_data / OKX
    okx = get_exchange("okx")
    recorded = _recorded(path, ("books", "BTC-USDT"))

    async def scenario() -> None:
        async with (
            ReplayServer([path], speed=10, verbose=False) as server,
            httpx.AsyncClient(base_url=server.rest_base) as http,
        ):
            protocol = server.protocol
            assert protocol is not None
            # before anything passed: no book yet (a passing failure), unknown and missing instIds refused
            empty = await http.get(REST_BOOKS_PATH, params={"instId": "BTC-USDT", "sz": "400"})
            assert (empty.status_code, empty.json()["code"]) == (503, "50001")
            unknown = await http.get(REST_BOOKS_PATH, params={"instId": "XRP-USDT"})
            assert (unknown.status_code, unknown.json()["code"]) == (400, "51001")
            missing = await http.get(REST_BOOKS_PATH)
            assert (missing.status_code, missing.json()["code"]) == (400, "50014")
            protocol.seq_ids = True  # type: ignore[attr-defined]
            first = await connect(server.ws_url, max_queue=None)
            late = await connect(server.ws_url, max_queue=None)
            await first.send(_subscribe(("books", "BTC-USDT")))
            frames = [orjson.loads(m) for m in (await recv_n(first, 1 + 40))[1:]]
            await late.send(_subscribe(("books", "BTC-USDT")))
            ack, snapshot = (orjson.loads(m) for m in await recv_n(late, 2))
            reply = await http.get(REST_BOOKS_PATH, params={"instId": "BTC-USDT", "sz": "400"})
            rest_body = reply.text
            await server.wait_finished(10)
            frames += [orjson.loads(m) for m in await recv_quiet(first, 0.2)]
            late_frames = await recv_quiet(late, 0.1)
            await first.close()
            await late.close()

            assert len(frames) == len(recorded) == 98
            items = [dict(f["data"][0]) for f in frames]
            assert items[0]["prevSeqId"] == -1 and frames[0]["action"] == "snapshot"
            assert all(b["prevSeqId"] == a["seqId"] for a, b in itertools.pairwise(items))
            # the recorded frames otherwise unchanged
            for frame, text in zip(frames, recorded, strict=True):
                original = orjson.loads(text)
                del frame["data"][0]["prevSeqId"], frame["data"][0]["seqId"]
                assert frame == original
            assert ack["event"] == "subscribe" and snapshot["action"] == "snapshot"
            snap = snapshot["data"][0]
            assert snap["prevSeqId"] == -1 and snap["seqId"] > items[0]["seqId"]
            assert protocol.rest_books == 1  # type: ignore[attr-defined]
            rest = orjson.loads(rest_body)
            assert rest["code"] == "0" and list(rest["data"][0]) == ["asks", "bids", "ts", "seqId"]
            assert len(rest["data"][0]["asks"]) <= 400

            # a session syncs on the generated snapshot and every later update verifies (checksum and seqId chain)
            session = OkxSession(okx, [Subscription("books", "BTC-USDT")])  # type: ignore[arg-type]
            actions = [
                session.on_frame("books", "BTC-USDT", f) for f in [orjson.dumps(snapshot).decode(), *late_frames]
            ]
            assert _reported(actions[0]) == ["synced"] and actions[1:] == [None] * len(late_frames)
            assert session.errors == 0
            # a session that got no snapshot splices the REST book with the updates that follow it
            spliced = OkxSession(okx, [Subscription("books", "BTC-USDT")], server.rest_url)  # type: ignore[arg-type]
            after = [f for f in late_frames if orjson.loads(f)["data"][0]["seqId"] > rest["data"][0]["seqId"]]
            fetch = spliced.on_frame("books", "BTC-USDT", after[0])
            assert fetch is not None and fetch.fetch_snapshot is not None
            assert fetch.fetch_snapshot[1].startswith(f"{server.rest_url}{REST_BOOKS_PATH}?instId=BTC-USDT&sz=400")
            assert _reported(spliced.on_snapshot("BTC-USDT", rest_body)) == ["synced"]
            assert [spliced.on_frame("books", "BTC-USDT", f) for f in after[1:]] == [None] * (len(after) - 1)
            book, want = spliced.book("BTC-USDT"), session.book("BTC-USDT")
            assert book is not None and want is not None and book.raw_bids(25) == want.raw_bids(25)
            assert book.raw_asks(25) == want.raw_asks(25) and book.update_id == want.update_id

    run(scenario)


def test_rest_order_book_of_a_recording_without_seq_ids(shared_data: Path) -> None:
    """Without ``seq_ids`` the 2022 recording's REST book has no seqId (as OKX's before it): a session cannot splice it
    and resubscribes instead, once (no REST loop)."""
    path = shared_data / OKX
    okx = get_exchange("okx")

    async def scenario() -> None:
        async with ReplayServer([path], verbose=False) as server, connect(server.ws_url, max_queue=None) as ws:
            await ws.send(_subscribe(("books", "UNI-USD-SWAP")))
            await recv_n(ws, 2)
            await server.wait_finished(10)
            assert server.finished.is_set()
            async with httpx.AsyncClient(base_url=server.rest_base) as http:
                reply = await http.get(REST_BOOKS_PATH, params={"instId": "UNI-USD-SWAP", "sz": "5"})
            item = reply.json()["data"][0]
            assert "seqId" not in item and len(item["bids"]) == len(item["asks"]) == 5
            session = OkxSession(okx, [Subscription("books", "UNI-USD-SWAP")])  # type: ignore[arg-type]
            action = session.on_snapshot("UNI-USD-SWAP", reply.text)
            assert action is not None and action.fetch_snapshot is None and len(action.send) == 2
            assert session.rest_usable is False

    run(scenario)
