"""Links that go quiet without closing. The no-data watchdog (``idle_timeout_s``, here 0.5 s) closes them, the
collector reconnects and frames resume; nothing sent before the stall is lost, nothing is landed twice, and the
close event says the connection was idle."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from _faults import (
    Conn,
    FaultProxy,
    FeedServer,
    Outcome,
    Probe,
    assert_landed_as_sent,
    binance_frames,
    collector,
    ingest,
)
from _reliability import record

IDLE_S = 0.5
#: the watchdog looks every ping_interval_s / 2
WATCH = {"idle_timeout_s": IDLE_S, "ping_interval_s": 0.2}


def _idle_for(detail: str) -> float:
    m = re.fullmatch(r"idle: no data for (\d+\.\d)s", detail)
    assert m is not None, detail
    return float(m.group(1))


@pytest.mark.timeout(60)
def test_a_black_holed_link_is_closed_by_the_watchdog_and_collection_resumes(tmp_path: Path, shared_data: Path) -> None:
    frames = binance_frames(shared_data, "btcusdt@trade", 10)
    before, after = frames[:5], frames[5:]

    async def script(conn: Conn) -> None:
        await conn.send_all(before if conn.n == 1 else after)

    stalled: list[int] = []

    async def scenario() -> tuple[Outcome, FeedServer]:
        async with FeedServer(script) as server, FaultProxy(server.port) as proxy:

            async def drive(probe: Probe) -> None:
                await probe.until_received(len(before))
                stalled.append(proxy.stall())
                await probe.until_received(len(frames))

            config = collector("binance", ["BTCUSDT"], ["trade"], proxy.url, **WATCH)
            return await ingest(tmp_path, [config], drive), server

    out, server = asyncio.run(scenario())
    assert_landed_as_sent(out, server)
    first, second = out.conn_ids
    idle = _idle_for(out.close_detail(first))
    assert IDLE_S <= idle < IDLE_S + 1.5  # the watchdog looks every 0.1 s (later on a loaded machine)
    assert out.status["reconnects"] == 1 and out.status["messages_received"] == len(frames)
    recover = (out.first_recv(second) - stalled[0]) / 1e9
    # the watchdog's wait, then the closing handshake's (close_timeout, 2 s: the peer cannot answer)
    assert IDLE_S < recover < IDLE_S + 6, recover
    record(
        "stall: link black-holed (nothing forwarded, nothing closed)",
        received=len(frames),
        landed=len(frames),
        quarantined=0,
        lost=0,
        duplicated=0,
        recover_s=recover,
        note=f"idle_timeout_s={IDLE_S:g}: closed as idle after {idle:.1f} s without data, then the closing handshake "
        "waits out close_timeout (2 s: no answer can come); recovery counted from the stall",
    )


@pytest.mark.timeout(60)
def test_a_server_that_stops_sending_but_answers_pings_is_closed_as_idle(tmp_path: Path, shared_data: Path) -> None:
    frames = binance_frames(shared_data, "btcusdt@trade", 10)
    before, after = frames[:5], frames[5:]

    async def script(conn: Conn) -> None:
        await conn.send_all(before if conn.n == 1 else after)  # then silence; pings are still answered

    async def scenario() -> tuple[Outcome, FeedServer]:
        async with FeedServer(script) as server:

            async def drive(probe: Probe) -> None:
                await probe.until_received(len(frames))

            config = collector("binance", ["BTCUSDT"], ["trade"], server.url, liveness_interval_s=0.1, **WATCH)
            return await ingest(tmp_path, [config], drive), server

    out, server = asyncio.run(scenario())
    assert_landed_as_sent(out, server)
    first, second = out.conn_ids
    idle = _idle_for(out.close_detail(first))
    assert IDLE_S <= idle < IDLE_S + 1.5  # the watchdog looks every 0.1 s (later on a loaded machine)
    # the link itself was alive all along: pongs kept coming back while no data did
    alive = out.kind("alive")
    assert alive.filter(alive["conn_id"] == first).height >= 3
    assert out.status["reconnects"] == 1 and out.status["messages_received"] == len(frames)
    silent_from = int(out.raw.filter(out.raw["conn_id"] == first).get_column("recv_ts").max())  # type: ignore[arg-type]
    recover = (out.first_recv(second) - silent_from) / 1e9
    assert IDLE_S < recover < IDLE_S + 3, recover
    record(
        "stall: server stops sending, still answers pings",
        received=len(frames),
        landed=len(frames),
        quarantined=0,
        lost=0,
        duplicated=0,
        recover_s=recover,
        note=f"idle_timeout_s={IDLE_S:g}: closed as idle after {idle:.1f} s (alive events kept coming: the link "
        "was up, the stream was not); recovery counted from the last frame",
    )
