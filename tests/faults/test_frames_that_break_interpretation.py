"""A frame the code does not expect never stops a connection: it is landed (exactly, or as base64 when it is not
UTF-8), counted and logged with the exchange and channel, and the connection goes on; a book frame that cannot be
interpreted marks its stream out of sync (a `gap` event) and the connection reconnects for a fresh book.

The servers are minimal Binance combined-stream and OKX v5 endpoints speaking the real wire format, sending the
bundled recordings' own frames; the broken ones are made from them as a faulty network or exchange would send them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
from pathlib import Path

import orjson
import polars as pl
import pytest
from _reliability import record
from websockets.asyncio.server import ServerConnection, serve

from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events, read_raw

SPOT = "binance-hftbacktest/spot/btcusdt_20240808.gz"
INVALID_UTF8 = b'{"stream":"btcusdt@trade","data":{"e":"trade","p":"\xff\xfe"}}'


def _frames(shared_data: Path, stream: str, n: int) -> list[str]:
    out = []
    with gzip.open(shared_data / SPOT, "rt") as fh:
        for line in fh:
            frame = line.split(" ", 1)[1].rstrip("\n")
            if frame.startswith(f'{{"stream":"{stream}"'):
                out.append(frame)
                if len(out) == n:
                    break
    return out


async def _serve(messages: list[str | bytes], again: list[str | bytes] | None = None, *, okx: bool = False):  # type: ignore[no-untyped-def]
    """A server sending ``messages`` on the first connection and ``again`` on later ones (OKX: after acking the
    client's subscribe request, as OKX does)."""
    connections: list[int] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        connections.append(len(connections) + 1)
        if okx:
            request = orjson.loads(await ws.recv())
            for arg in request["args"]:
                await ws.send(orjson.dumps({"event": "subscribe", "arg": arg}).decode())
        for m in messages if len(connections) == 1 else (again or []):
            await ws.send(m)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(done.wait(), 30)

    server = await serve(handler, "127.0.0.1", 0, compression=None)
    return server, server.sockets[0].getsockname()[1], connections, done


def _run(  # type: ignore[no-untyped-def]
    tmp_path: Path,
    messages: list[str | bytes],
    channels: tuple[str, ...],
    until: int,
    *,
    exchange: str = "binance",
    symbol: str = "BTCUSDT",
    again: list[str | bytes] | None = None,
):
    async def scenario():  # type: ignore[no-untyped-def]
        server, port, connections, done = await _serve(messages, again, okx=exchange == "okx")
        config = ExchangeCollectorConfig(
            exchange=exchange,
            symbols=(symbol,),
            channels=channels,
            ws_url=f"ws://127.0.0.1:{port}" + ("/ws/v5/public" if exchange == "okx" else ""),
            rest_url=f"http://127.0.0.1:{port}/api/v3/depth",
            reconnect_initial_s=0.05,
            reconnect_max_s=0.2,
        )
        ingest_config = IngestConfig((config,), journal=str(tmp_path / "journal"))
        ingestor = Ingestor(ingest_config, lake=str(tmp_path / "lake"), status_every_s=0.5)
        stop = asyncio.Event()
        task = asyncio.create_task(ingestor.run(stop=stop))
        for _ in range(200):
            await asyncio.sleep(0.05)
            if ingestor.manager.get_status()["messages_received"] >= until:
                break
        await asyncio.sleep(0.5)
        status = ingestor.manager.get_status()
        stop.set()
        await task
        done.set()
        server.close()
        await server.wait_closed()
        return status, connections

    return asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_a_binary_frame_that_is_not_utf8_is_landed_and_the_connection_goes_on(
    tmp_path: Path, shared_data: Path
) -> None:
    trades = _frames(shared_data, "btcusdt@trade", 4)
    status, connections = _run(tmp_path, [trades[0], trades[1], INVALID_UTF8, trades[2], trades[3]], ("trade",), 5)
    assert status["messages_received"] == 5 and len(connections) == 1, status
    raw = read_raw(str(tmp_path / "lake"), 0, 2**62).sort("seq")
    assert raw.get_column("seq").to_list() == [1, 2, 3, 4, 5]
    assert raw.get_column("payload").to_list()[:2] + raw.get_column("payload").to_list()[3:] == trades
    binary = raw.row(2, named=True)
    assert binary["channel"] == "binary" and base64.b64decode(binary["payload"]) == INVALID_UTF8
    conn = status["collectors"][0]["connections"][0]
    assert status["frame_errors"] == 1 and "not UTF-8" in (conn["last_error"] or "") and conn["state"] == "connected"
    # quarantined: the landed row is flagged by a frame_error event naming its seq and why
    events = read_events(str(tmp_path / "lake"), 0, 2**62)
    flagged = events.filter(events["kind"] == "frame_error").select("conn_id", "seq", "channel", "detail").rows()
    assert len(flagged) == 1 and flagged[0][:3] == (binary["conn_id"], 3, "binary"), flagged
    assert flagged[0][3].startswith(f"is not UTF-8 (invalid start byte at byte {INVALID_UTF8.index(0xFF)})"), flagged
    after = raw.get_column("recv_ts").to_list()[2:4]
    record(
        "invalid UTF-8 (binary frame)",
        received=5,
        landed=4,
        quarantined=1,
        lost=0,
        duplicated=0,
        recover_s=(after[1] - after[0]).total_seconds(),
        note="landed base64 in channel 'binary', flagged by a frame_error event; the connection went on (time to "
        "recover: to the next frame landed)",
    )


OKX = "cryptofeed-samples/OKX.ws.1.0.gz"


def _okx_books(shared_data: Path, n: int) -> list[str]:
    out = []
    with gzip.open(shared_data / OKX, "rt") as fh:
        for line in fh:
            _, _, frame = line.partition(": ")
            if frame.startswith('{"arg":{"channel":"books","instId":"BTC-USDT"},"action"'):
                out.append(frame.rstrip("\n"))
                if len(out) == n:
                    break
    return out


@pytest.mark.timeout(60)
def test_an_okx_book_frame_with_a_price_abc_marks_a_gap_and_the_connection_resyncs(
    tmp_path: Path, shared_data: Path
) -> None:
    snapshot, first, second, third = _okx_books(shared_data, 4)
    assert '"action":"snapshot"' in snapshot and '"action":"update"' in first
    bad = orjson.loads(second)
    bad["data"][0]["asks"][0][0] = "abc"
    broken = orjson.dumps(bad).decode()
    status, connections = _run(
        tmp_path,
        [snapshot, first, broken, third],
        ("books",),
        6,  # 1 ack + 4 frames, then the second connection's ack + snapshot
        exchange="okx",
        symbol="BTC-USDT",
        again=[snapshot],
    )
    assert len(connections) == 2 and status["reconnects"] == 1, status
    # first connection: the ack, the snapshot, an update, the broken update (then it closes to resync); second:
    # the ack and a fresh snapshot
    assert status["frame_errors"] == 1 and status["messages_received"] == 6
    lake = str(tmp_path / "lake")
    raw = read_raw(lake, 0, 2**62)
    books = raw.filter(raw["channel"] == "books").sort("recv_ts").get_column("payload").to_list()
    # every frame landed as received, the broken one and the one after it included
    assert books == [snapshot, first, broken, snapshot]
    events = read_events(lake, 0, 2**62)
    kinds = [(k, d) for k, d in events.filter(events["channel"] == "books").select("kind", "detail").iter_rows()]
    gaps = [d for k, d in kinds if k == "gap"]
    assert len(gaps) == 1 and "could not be interpreted: ValueError" in gaps[0]
    # the broken update (the first connection's 4th frame, after the ack, the snapshot and an update) is flagged
    flagged = events.filter(events["kind"] == "frame_error").select("conn_id", "seq", "symbol", "detail").rows()
    broken_row = raw.filter(raw["payload"] == broken).select("conn_id", "seq").row(0)
    assert len(flagged) == 1 and flagged[0][:3] == (*broken_row, "BTC-USDT") and broken_row[1] == 4, flagged
    assert flagged[0][3].startswith("could not be interpreted: ValueError: could not convert string to float"), flagged
    # the new connection's snapshot syncs the book again
    assert [k for k, _ in kinds if k in ("gap", "synced")][-1] == "synced"
    broken_at = raw.filter(raw["payload"] == broken).get_column("recv_ts")[0]
    synced_at = events.filter(events["kind"] == "synced").get_column("recv_ts").max()
    record(
        "OKX book update: price 'abc'",
        received=6,
        landed=5,
        quarantined=1,
        lost=0,
        duplicated=0,  # the snapshot landed twice because it was sent twice, once per connection
        recover_s=(synced_at - broken_at).total_seconds(),  # type: ignore[operator]
        note="frame_error and gap events, reconnect, the snapshot synced the book again (time to recover: until then)",
    )


@pytest.mark.timeout(60)
def test_a_binance_depth_frame_without_update_ids_is_quarantined_and_the_book_starts_over(
    tmp_path: Path, shared_data: Path
) -> None:
    depth = _frames(shared_data, "btcusdt@depth@100ms", 3)
    bad = orjson.loads(depth[1])
    del bad["data"]["U"], bad["data"]["u"]  # a diff the update-id chain cannot go through
    broken = orjson.dumps(bad).decode()
    # (this server answers no REST snapshot: later connections also close, for want of one)
    status, connections = _run(tmp_path, [depth[0], broken, depth[2]], ("depth",), 3, again=[depth[2]])
    assert len(connections) >= 2 and status["frame_errors"] == 1, status
    lake = str(tmp_path / "lake")
    raw = read_raw(lake, 0, 2**62).filter(pl.col("channel") == "depth").sort("recv_ts")
    first = raw.filter(pl.col("conn_id") == raw["conn_id"][0])
    # landed as received, the broken frame included; the first connection closed right after it
    assert first.get_column("payload").to_list() == [depth[0], broken]
    events = read_events(lake, 0, 2**62)
    flagged = events.filter(pl.col("kind") == "frame_error").select("conn_id", "seq", "symbol", "detail").rows()
    detail = "could not be interpreted: ValueError: binance BTCUSDT: depth frame without U/u update ids"
    assert flagged == [(raw["conn_id"][0], 2, "BTCUSDT", detail)]
    gaps = events.filter(pl.col("kind") == "gap").get_column("detail").to_list()
    assert len(gaps) == 1 and "depth frame without U/u" in gaps[0]
    closes = events.filter((pl.col("kind") == "close") & (pl.col("conn_id") == raw["conn_id"][0]))["detail"]
    assert closes.to_list() == [f"resync after an uninterpretable book frame: frame 2 (depth BTCUSDT) {detail}"]
