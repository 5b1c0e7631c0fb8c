"""1,000 forced disconnects in a row: the proxy aborts the TCP connection (no close frame) as soon as the
collector has received the frames sent on it; the collector reconnects every time, and every frame is landed
exactly once, on the connection it came on, in order. Coverage, from the trade ids, sees nothing missing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
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
    coverage,
    ingest,
    lost_and_duplicated,
    median,
    rebased,
)
from _reliability import record

CUTS = 1000
PER_CONNECTION = 3


@pytest.mark.timeout(120)
def test_a_thousand_forced_disconnects_land_every_frame_once(tmp_path: Path, shared_data: Path) -> None:
    frames = rebased(binance_frames(shared_data, "btcusdt@trade", PER_CONNECTION * (CUTS + 1)))
    cuts: list[int] = []

    async def script(conn: Conn) -> None:
        first = (conn.n - 1) * PER_CONNECTION
        await conn.send_all(frames[first : first + PER_CONNECTION])

    async def scenario() -> tuple[Outcome, FeedServer]:
        async with FeedServer(script) as server, FaultProxy(server.port) as proxy:

            async def drive(probe: Probe) -> None:
                for n in range(1, CUTS + 1):
                    await probe.until_received(n * PER_CONNECTION)
                    cuts.append(proxy.cut())
                await probe.until_received((CUTS + 1) * PER_CONNECTION)

            # the first backoff step (a connection that delivered data starts over from it) kept to 1-2 ms: the loop
            # is about reconnecting 1,000 times, not about waiting
            config = collector("binance", ["BTCUSDT"], ["trade"], proxy.url, reconnect_initial_s=0.002)
            return await ingest(tmp_path, [config], drive), server

    out, server = asyncio.run(scenario())

    assert [len(c.sent) for c in server.conns] == [PER_CONNECTION] * (CUTS + 1)
    assert_landed_as_sent(out, server)
    payloads = out.raw.get_column("payload")
    assert payloads.len() == len(frames) and payloads.n_unique() == len(frames)
    assert sorted(payloads.to_list()) == sorted(frames)
    status = out.status
    assert status["reconnects"] == CUTS and status["messages_received"] == len(frames)
    assert status["frame_errors"] == 0 and status["errors"] == CUTS
    # every cut is on record: one close per connection, saying how it ended
    closes = out.kind("close").get_column("detail").to_list()
    assert len(closes) == CUTS + 1 and out.kind("open").height == CUTS + 1
    assert sum(d.startswith("ConnectionClosedError: no close frame received or sent") for d in closes) == CUTS
    assert closes[-1] == "stopped"
    assert out.kind("frame_error").height == 0
    # and coverage knows nothing was missed: consecutive trade ids bridge every reconnect
    trades = out.raw.get_column("payload").str.extract(r'"T":(\d+)').cast(pl.Int64) * 1_000_000
    cov = coverage(out).filter(pl.col("end") > trades.min())
    assert cov.select("status", "start", "end").rows() == [("covered", trades.min(), trades.max())], cov
    # recovery: from each cut to the first frame landed on the next connection
    firsts = out.raw.group_by("conn_id").agg(pl.col("recv_ts").min()).sort("recv_ts").get_column("recv_ts").to_list()
    recover = [(first - cut) / 1e9 for cut, first in zip(cuts, firsts[1:], strict=True)]
    assert all(r > 0 for r in recover) and max(recover) < 5.0, max(recover)
    lost, duplicated = lost_and_duplicated([f for c in server.conns for f in c.sent], payloads.to_list())
    assert lost == duplicated == 0
    record(
        f"{CUTS:,} forced disconnects (TCP aborted)",
        received=len(frames),
        landed=payloads.len(),
        quarantined=0,
        lost=lost,
        duplicated=duplicated,
        recover_s=median(recover),
        note=f"{PER_CONNECTION} frames per connection, reconnect_initial_s 2 ms, {CUTS:,} reconnects, {CUTS + 1:,} "
        "close events, no coverage gap (trade ids bridge every reconnect); time to recover: median of "
        f"{CUTS:,} (max {max(recover):.3f} s); the whole loop {out.wall_s:.1f} s",
    )
