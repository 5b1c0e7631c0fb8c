"""The Binance replay over a real socket: combined streams, SUBSCRIBE, REST depth, rebase, drops, pings."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
import orjson
import pytest
from _replay_util import recv_n, recv_quiet, run
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode

from mdplatform.capture import read_capture
from mdplatform.exchanges import get_exchange
from mdplatform.exchanges.binance._replay import stream_key
from mdplatform.replay import ReplayServer, live_shift_ns, minute_shift_ns, text_frame

SPOT = "binance-hftbacktest/spot/btcusdt_20240808.gz"
USDM = "binance-hftbacktest/usdm/btcusdt_20240808.gz"
MINUTE_NS = 60 * 10**9


def _recorded(path: Path, *streams: str) -> list[str]:
    prefixes = tuple(f'{{"stream":"{s}"' for s in streams)
    return [f.frame for f in read_capture(path) if f.frame.startswith(prefixes)]


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 70_000])
def test_text_frame_matches_websockets(size: int) -> None:
    payload = bytes(range(48, 58)) * (size // 10) + b"x" * (size % 10)
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


def test_stream_key() -> None:
    assert stream_key("btcusdt@depth@100ms") == stream_key("BTCUSDT@depth") == "btcusdt@depth"
    assert stream_key("btcusdt@depth@0ms") == "btcusdt@depth"
    assert stream_key("btcusdt@depth5@100ms") == "btcusdt@depth5@100ms"
    assert stream_key("btcusdt@trade") == "btcusdt@trade"


def test_minute_shift() -> None:
    last = 1723161601271 * 10**6  # 2024-08-09 00:00:01.271
    now = 1763700000 * 10**9 + 12_345  # 2025-11-21 04:40:00.000012345
    shift = minute_shift_ns(last, now)
    assert shift % MINUTE_NS == 0
    # the last minute of the recording becomes the one that just closed
    assert (last + shift) // MINUTE_NS == now // MINUTE_NS - 1


def test_live_shift_starts_the_recording_now_never_in_the_future() -> None:
    first = 1723161255208 * 10**6  # 2024-08-08 23:54:15.208, the first depth event of the spot capture
    for now in (1763700000 * 10**9 + 12_345, 1763700000 * 10**9 + 59 * 10**9, 1763700014 * 10**9):
        shift = live_shift_ns(first, now)
        assert shift % MINUTE_NS == 0
        assert now - MINUTE_NS < first + shift <= now


def test_combined_stream_url_gets_its_streams_in_order(shared_data: Path) -> None:
    path = shared_data / SPOT
    expected = _recorded(path, "btcusdt@trade", "btcusdt@depth@100ms")
    assert len(expected) == 9_757 + 3_451

    async def scenario() -> list[str]:
        async with ReplayServer([path], verbose=False) as server:
            assert server.exchange == "binance"
            url = f"{server.ws_url}/stream?streams=btcusdt@trade/btcusdt@depth@100ms"
            async with connect(url, compression=None, max_queue=None) as ws:
                got = await recv_n(ws, len(expected))
                await server.wait_finished(10)
                got += await recv_quiet(ws, 0.2)  # nothing else: no bookTicker, no extras
                assert server.sent == len(expected)
                assert server.sent_by_stream == {"btcusdt@trade": 9_757, "btcusdt@depth@100ms": 3_451}
                assert server.position == 41_249
                # the exchange does not hang up when the recording ends
                await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 7}).decode())
                assert orjson.loads(await ws.recv()) == {
                    "result": ["btcusdt@trade", "btcusdt@depth@100ms"],
                    "id": 7,
                }
            return got

    assert run(scenario) == expected


def test_subscribe_message_any_depth_speed(shared_data: Path) -> None:
    path = shared_data / SPOT
    depth = _recorded(path, "btcusdt@depth@100ms")

    async def scenario() -> None:
        async with ReplayServer([path], verbose=False) as server, connect(server.ws_url + "/stream") as ws:
            await asyncio.sleep(0.05)
            assert server.position == 0  # nobody subscribed: the cursor waits
            request = {"method": "SUBSCRIBE", "params": ["btcusdt@depth@0ms"], "id": 1}
            await ws.send(orjson.dumps(request).decode())
            ack, *frames = await recv_n(ws, 301)
            assert orjson.loads(ack) == {"result": None, "id": 1}
            # the recording's depth stream, in its recorded envelope, whatever speed was asked for
            assert frames == depth[:300]
            await ws.send('{"method":"UNSUBSCRIBE","params":["btcusdt@depth@0ms"],"id":2}')
            await ws.send('{"method":"NOPE","id":3}')
            rest = await recv_quiet(ws, 0.3)
            replies = [orjson.loads(m) for m in rest if not m.startswith('{"stream"')]
            assert replies[0] == {"result": None, "id": 2}
            assert replies[1]["id"] == 3 and replies[1]["error"]["code"] == 2

    run(scenario)


def test_rest_depth_before_and_during_replay(shared_data: Path) -> None:
    path = shared_data / SPOT
    frames = list(read_capture(path))
    (recorded,) = [f.frame for f in frames if f.kind == "rest"]
    diffs = [orjson.loads(f.frame)["data"] for f in frames if f.frame.startswith('{"stream":"btcusdt@depth')]
    builder = get_exchange("binance").book_builder("BTCUSDT", keep_raw=True)  # type: ignore[attr-defined]

    async def scenario() -> None:
        async with ReplayServer([path], verbose=False) as server, httpx.AsyncClient() as http:
            url = server.rest_url
            assert url.endswith("/api/v3/depth")
            # before the cursor reaches the recorded reply, that reply is what the exchange answers
            r = await http.get(url, params={"symbol": "BTCUSDT", "limit": 1000})
            assert r.status_code == 200 and r.text == recorded
            small = (await http.get(url, params={"symbol": "BTCUSDT", "limit": 5})).json()
            assert small["lastUpdateId"] == 50093239218 and len(small["bids"]) == len(small["asks"]) == 5
            assert (await http.get(url, params={"symbol": "NOPEUSDT"})).json()["code"] == -1121
            assert (await http.get(server.rest_url.replace("/api/v3", "/fapi/v1"))).status_code == 404
            with pytest.raises(InvalidStatus) as rejected:
                await connect(server.ws_url + "/ws/v5/public")
            assert rejected.value.response.status_code == 404

            # a client syncing like a collector: diffs over WS, the snapshot mid-stream over REST
            async with connect(server.ws_url + "/stream?streams=btcusdt@depth", max_queue=None) as ws:
                received = [orjson.loads(m)["data"] for m in await recv_n(ws, 1_000)]
                mid = (await http.get(url, params={"symbol": "BTCUSDT", "limit": 5000})).json()
                for d in received:
                    builder.on_depth(d)
                assert mid["lastUpdateId"] >= received[-1]["u"] > 50093239218
                builder.on_snapshot(mid)
                await server.wait_finished(10)
                for m in await recv_n(ws, len(diffs) - 1_000):
                    builder.on_depth(orjson.loads(m))
            final = (await http.get(url, params={"symbol": "BTCUSDT", "limit": 5000})).json()
            assert final["lastUpdateId"] == diffs[-1]["u"] == builder.book.update_id
            assert list(final) == ["lastUpdateId", "bids", "asks"]
            assert builder.state == "synced"
            assert [tuple(x) for x in final["bids"][:500]] == builder.book.raw_bids(500)
            assert [tuple(x) for x in final["asks"][:500]] == builder.book.raw_asks(500)
            assert final["bids"][0][0] < final["asks"][0][0]

    run(scenario)


def test_rebase_shifts_exchange_times_only(shared_data: Path) -> None:
    path = shared_data / SPOT
    trades = _recorded(path, "btcusdt@trade")
    last_ms = max(
        max(v for k in ("E", "T") if isinstance(v := orjson.loads(f.frame).get("data", {}).get(k), int))
        for f in read_capture(path)
        if f.kind == "ws" and '"E":' in f.frame
    )

    async def scenario() -> None:
        async with ReplayServer([path], rebase=True, verbose=False) as server:
            shift = server.shift_ns
            assert shift % MINUTE_NS == 0 and shift > 0
            shift_ms = shift // 10**6
            async with connect(server.ws_url + "/stream?streams=btcusdt@trade", max_queue=None) as ws:
                got = await recv_n(ws, len(trades))

            def shifted(frame: str) -> str:
                return re.sub(r'"([ET])":(\d{13})', lambda m: f'"{m[1]}":{int(m[2]) + shift_ms}', frame)

            # byte for byte the recorded frame, except the two timestamps
            assert got == [shifted(f) for f in trades]
            # the recording now ends in the minute that just closed
            end = (last_ms + shift_ms) * 10**6
            floor_now = time.time_ns() // MINUTE_NS * MINUTE_NS
            assert floor_now - 2 * MINUTE_NS <= end < floor_now

    run(scenario)


def test_rebase_rest_snapshot_times(shared_data: Path) -> None:
    path = shared_data / USDM

    async def scenario() -> None:
        async with ReplayServer([path], rebase=True, verbose=False) as server, httpx.AsyncClient() as http:
            assert server.exchange == "binance-usdm"
            r = await http.get(server.rest_url, params={"symbol": "BTCUSDT", "limit": 1000})
            body = r.json()
            shift_ms = server.shift_ns // 10**6
            assert list(body)[:3] == ["lastUpdateId", "E", "T"]
            assert body["lastUpdateId"] == 5123107852948
            assert (body["E"], body["T"]) == (1723161256501 + shift_ms, 1723161256493 + shift_ms)
            assert body["bids"][0] == ["61800.20", "2.909"]  # prices stay strings, as recorded

    run(scenario)


def test_drop_after_closes_once_and_waits_for_the_client(shared_data: Path) -> None:
    path = shared_data / SPOT
    trades = _recorded(path, "btcusdt@trade")
    url_path = "/stream?streams=btcusdt@trade"

    async def scenario() -> None:
        async with ReplayServer([path], drop_after=100, verbose=False) as server:
            async with connect(server.ws_url + url_path, max_queue=None) as ws:
                first = await recv_n(ws, 100)
                with pytest.raises(ConnectionClosed) as closed:
                    await recv_n(ws, 1, timeout=5)
                assert closed.value.rcvd is None  # no close frame: an abrupt drop
            assert first == trades[:100]
            assert server.drops == 1 and server.sent == 100
            position = server.position
            await asyncio.sleep(0.2)
            assert server.position == position  # nobody listening: the cursor waits
            async with connect(server.ws_url + url_path, max_queue=None) as ws:
                again = await recv_n(ws, len(trades) - 100)
                await server.wait_finished(10)
            assert again == trades[100:]  # the timeline went on from where the drop happened
            assert server.drops == 1

    run(scenario)


def test_server_pings_and_drops_clients_that_do_not_pong(shared_data: Path) -> None:
    path = shared_data / SPOT

    async def scenario() -> None:
        server = ReplayServer([path], ping_interval=0.2, verbose=False)
        async with server, connect(server.ws_url + "/stream", ping_interval=None) as good:
            silent = await connect(server.ws_url + "/stream", ping_interval=None)
            assert silent.transport is not None
            silent.transport.pause_reading()  # never sees the pings, never pongs
            await asyncio.sleep(0.1)
            assert server.clients == 2
            await asyncio.sleep(0.8)
            assert server.clients == 1
            silent.transport.abort()
            await good.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
            assert orjson.loads(await good.recv()) == {"result": [], "id": 1}

    run(scenario)


def test_one_exchange_per_server(shared_data: Path) -> None:
    paths = [shared_data / SPOT, shared_data / USDM]

    async def scenario() -> None:
        with pytest.raises(ValueError, match="binance-usdm capture, not binance"):
            await ReplayServer(paths, verbose=False).start()

    run(scenario)
