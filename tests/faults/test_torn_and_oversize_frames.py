"""Frames that never arrive whole: one torn by a connection cut in its middle, one over the 16 MiB frame limit.
Nothing of either is landed, every frame before and after is, the connection reconnects, and the loss is on
record twice: the close event says why the connection ended, and coverage finds the missing trade id."""

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
    rebased,
)
from _reliability import record

from mdplatform.collector._connection import MAX_FRAME_BYTES


def _trades(shared_data: Path) -> tuple[list[str], str, list[str]]:
    """Five trades, the one that will not arrive, five more: consecutive trade ids, the lost one's neighbours at
    different milliseconds (coverage has no room for a gap of no duration inside a burst)."""
    frames = rebased(binance_frames(shared_data, "btcusdt@trade", 100))
    i = next(i for i in range(5, 94) if _times(frames[i - 1]) < _times(frames[i + 1]))
    return frames[i - 5 : i], frames[i], frames[i + 1 : i + 6]


def _gap(out: Outcome, before: list[str], after: list[str]) -> list[tuple[object, ...]]:
    """The gap rows coverage has between the last trade before the fault and the first one after."""
    lo, hi = _times(before[-1], after[0])
    cov = coverage(out).filter((pl.col("status") == "gap") & (pl.col("end") > lo) & (pl.col("start") < hi))
    return cov.select("start", "end", "reason", "missing").rows()


@pytest.mark.timeout(60)
def test_a_frame_torn_by_a_cut_lands_nothing_of_it(tmp_path: Path, shared_data: Path) -> None:
    before, torn, after = _trades(shared_data)

    async def script(conn: Conn) -> None:
        await conn.send_all([*before, torn] if conn.n == 1 else after)

    async def scenario() -> tuple[Outcome, FeedServer, int | None]:
        async with FeedServer(script) as server, FaultProxy(server.port) as proxy:
            proxy.tear(len(before) + 1)

            async def drive(probe: Probe) -> None:
                await probe.until_received(len(before) + len(after))

            out = await ingest(tmp_path, [collector("binance", ["BTCUSDT"], ["trade"], proxy.url)], drive)
            return out, server, proxy.torn_ns

    out, server, torn_ns = asyncio.run(scenario())
    assert torn_ns is not None and server.conns[0].sent == [*before, torn]
    assert_landed_as_sent(out, server, expected=[before, after])
    assert not any(torn.startswith(p) for p in out.raw.get_column("payload").to_list())  # no half of it either
    first, second = out.conn_ids
    assert out.close_detail(first) == "ConnectionClosedError: no close frame received or sent"
    status = out.status
    assert status["reconnects"] == 1 and status["messages_received"] == 10 and status["frame_errors"] == 0
    assert _gap(out, before, after) == [(*_times(before[-1], after[0]), "not connected", 1)]
    recover = (out.first_recv(second) - torn_ns) / 1e9
    record(
        "torn frame (half sent, then the TCP connection aborted)",
        received=11,
        landed=10,
        quarantined=0,
        lost=1,
        duplicated=0,
        recover_s=recover,
        note="the torn frame never completed: nothing of it landed; the close event and a coverage gap (not "
        "connected, 1 trade id missing) record the loss",
    )


@pytest.mark.timeout(60)
def test_a_frame_over_the_size_limit_closes_the_connection_and_says_so(tmp_path: Path, shared_data: Path) -> None:
    before, lost, after = _trades(shared_data)
    # the lost trade itself, padded past the limit the way a runaway server would send it
    big = lost[:-2] + ',"pad":"' + "x" * MAX_FRAME_BYTES + '"}}'

    async def script(conn: Conn) -> None:
        await conn.send_all([*before, big] if conn.n == 1 else after)

    async def scenario() -> tuple[Outcome, FeedServer]:
        async with FeedServer(script) as server:

            async def drive(probe: Probe) -> None:
                await probe.until_received(len(before) + len(after))

            return await ingest(tmp_path, [collector("binance", ["BTCUSDT"], ["trade"], server.url)], drive), server

    out, server = asyncio.run(scenario())
    assert_landed_as_sent(out, server, expected=[before, after])
    first, second = out.conn_ids
    why = out.close_detail(first)
    assert why.startswith("a frame over the 16 MiB size limit was refused (") and why.endswith("closed with 1009")
    status = out.status
    assert status["errors"] == 1 and status["reconnects"] == 1 and status["frame_errors"] == 0
    assert status["collectors"][0]["connections"][0]["last_error"] == f"connection failed: {why}"
    assert _gap(out, before, after) == [(*_times(before[-1], after[0]), "not connected", 1)]
    recover = (out.first_recv(second) - server.conns[0].sent_ns[-1]) / 1e9
    record(
        "oversize frame (over the 16 MiB limit)",
        received=11,
        landed=10,
        quarantined=0,
        lost=1,
        duplicated=0,
        recover_s=recover,
        note=f"a trade padded to 16 MiB + {len(big.encode()) - MAX_FRAME_BYTES} bytes: refused (close 1009, named "
        "in the close event and last_error); the connection reconnects; coverage shows the gap (not connected, 1 "
        "trade id missing)",
    )


def _times(*frames: str) -> tuple[int, ...]:
    return tuple(int(f.split('"T":')[1].split(",")[0]) * 1_000_000 for f in frames)
