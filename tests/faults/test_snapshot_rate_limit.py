"""Book snapshots go through one limiter per host: when the exchange answers 429 or 418 with Retry-After, the
collector waits it out instead of hammering, and every book syncs on the same connection while its depth frames
keep landing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import polars as pl
import pytest
from _faults import Conn, FeedServer, Outcome, Probe, assert_landed_as_sent, binance_snapshot, collector, ingest
from _reliability import record

from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.history import RateLimit
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events, read_raw
from mdplatform.replay import ReplayServer

SPOT = ["btcusdt_20240808.gz", "ethusdt_20240808.gz"]


@pytest.mark.timeout(90)
def test_snapshots_wait_out_a_429_and_every_book_syncs(tmp_path: Path, shared_data: Path) -> None:
    """The replay enforcing a budget of 60 weight per second; a spot depth snapshot of 1000 levels weighs 50."""
    files = [shared_data / "binance-hftbacktest" / "spot" / name for name in SPOT]
    lake = str(tmp_path / "lake")

    async def scenario() -> tuple[int, int, dict[str, object]]:
        async with ReplayServer(files, speed=20, rest_limit=RateLimit(60, 1.0), verbose=False) as server:
            config = ExchangeCollectorConfig(
                exchange="binance",
                symbols=("BTCUSDT", "ETHUSDT"),
                channels=("depth",),
                ws_url=server.ws_url,
                rest_url=server.rest_url,
            )
            ingest_config = IngestConfig((config,), journal=str(tmp_path / "journal"))
            ingestor = Ingestor(ingest_config, lake=lake, status_every_s=0.5)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            for _ in range(300):
                await asyncio.sleep(0.1)
                book = ingestor.manager.get_status()["collectors"][0]["book_sync"]
                if book and all(state == "synced" for state in book.values()) and len(book) == 2:
                    break
            stop.set()
            await task
            return server.rest_requests, server.rest_throttled, ingestor.manager.get_status()

    requests, throttled, status = asyncio.run(scenario())
    assert status["collectors"][0]["book_sync"] == {"BTCUSDT": "synced", "ETHUSDT": "synced"}, status
    assert throttled >= 1 and requests >= 3  # two snapshots, at least one of them answered 429 first
    assert throttled <= 2  # one pause per refusal, no hammering
    assert status["reconnects"] == 0 and status["collectors"][0]["sync_errors"] == 0
    events = read_events(lake, 0, 2**62)
    synced = events.filter(events["kind"] == "synced")
    assert sorted(synced.get_column("symbol").to_list()) == ["BTCUSDT", "ETHUSDT"]
    # every frame received was landed once; the two snapshots beside them
    raw = read_raw(lake, 0, 2**62)
    ws = raw.filter(~pl.col("conn_id").str.ends_with("/rest"))
    assert ws.height == status["messages_received"] and ws.get_column("payload").n_unique() == ws.height
    assert raw.filter(pl.col("channel") == "depthSnapshot").height == 2
    opened = events.filter(events["kind"] == "open").get_column("recv_ts").min()
    recover = (synced.get_column("recv_ts").max() - opened).total_seconds()  # type: ignore[operator, union-attr]
    record(
        "REST snapshots over the weight budget (replay: 429 + Retry-After)",
        received=ws.height,
        landed=ws.height,
        quarantined=0,
        lost=0,
        duplicated=0,
        recover_s=recover,
        note=f"{throttled} of {requests} snapshot requests answered 429; no reconnect, no sync error; time to "
        "recover: from the connection's open to both books synced",
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("refusal", [429, 418])
def test_a_snapshot_refused_with_retry_after_is_asked_again_after_the_wait(
    tmp_path: Path, shared_data: Path, refusal: int
) -> None:
    snapshot, diffs = binance_snapshot(shared_data)
    diffs = diffs[:150]
    msg = {  # Binance's words
        429: "Too much request weight used; current limit is 6000 request weight per 1 MINUTE.",
        418: "Way too much request weight used; IP banned until 1723161315000.",
    }[refusal]

    def rest(path: str) -> tuple[int, bytes, dict[str, str]]:
        assert path.startswith("/api/v3/depth?symbol=BTCUSDT"), path
        if not server.rest_log:
            return refusal, orjson.dumps({"code": -1003, "msg": msg}), {"Retry-After": "1"}
        return 200, snapshot.encode(), {}

    async def script(conn: Conn) -> None:
        for diff in diffs:  # at 10 ms a frame: the stream goes on through the wait
            await conn.send(diff)
            await asyncio.sleep(0.01)

    server = FeedServer(script, rest=rest)

    async def scenario() -> Outcome:
        async with server:

            async def drive(probe: Probe) -> None:
                await probe.until_received(len(diffs))

            return await ingest(tmp_path, [collector("binance", ["BTCUSDT"], ["depth"], server.url)], drive)

    out = asyncio.run(scenario())
    (refused_at, _, first), (asked_at, _, second) = server.rest_log
    assert (first, second) == (refusal, 200)
    assert 1.0 <= (asked_at - refused_at) / 1e9 < 5.0  # Retry-After honoured, then asked again
    assert_landed_as_sent(out, server)
    assert out.raw.filter(pl.col("channel") == "depthSnapshot").get_column("payload").to_list() == [snapshot]
    status = out.status
    assert status["collectors"][0]["book_sync"] == {"BTCUSDT": "synced"} and out.kind("synced").height == 1
    assert status["reconnects"] == 0 and status["collectors"][0]["sync_errors"] == 0
    recover = (out.kind("synced").get_column("recv_ts")[0] - refused_at) / 1e9
    record(
        f"REST snapshot answered {refusal} + Retry-After: 1",
        received=len(diffs),
        landed=len(diffs),
        quarantined=0,
        lost=0,
        duplicated=0,
        recover_s=recover,
        note="asked again once, after the wait; depth frames kept landing meanwhile, the book synced on the same "
        "connection (snapshot landed once); time to recover: from the refusal to synced",
    )
