"""A subscription the exchange refuses: the refusal is recorded (``sub_error`` with the exchange's message), health
turns "degraded" naming it, and the connection's other streams keep flowing, every frame landed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _faults import (
    Conn,
    FeedServer,
    Outcome,
    Probe,
    assert_landed_as_sent,
    binance_frames,
    collector,
    ingest,
    okx_frames,
    okx_subscribe,
)
from _reliability import record


def _check(out: Outcome, server: FeedServer, refusal: str, subscribed: list[tuple[str, str]]) -> None:
    assert_landed_as_sent(out, server)
    (conn_id,) = out.conn_ids
    status, health = out.status, out.health
    assert status["collectors"][0]["sub_errors"] == 1 and status["reconnects"] == 0
    assert out.kind("sub_error").select("conn_id", "detail").rows() == [(conn_id, refusal)]
    assert out.kind("subscribed").select("channel", "symbol").rows() == subscribed
    assert health["status"] == "degraded"
    assert health["collectors"][0]["problems"] == [f"{conn_id}: subscription refused: {refusal}"]
    assert status["collectors"][0]["connections"][0]["state"] == "connected"


@pytest.mark.timeout(60)
def test_okx_refusing_an_unknown_instrument_degrades_health_and_the_rest_flows(
    tmp_path: Path, shared_data: Path
) -> None:
    trades = okx_frames(shared_data, "trades", "BTC-USDT", 20)

    async def script(conn: Conn) -> None:
        await okx_subscribe(conn, refuse={"ETH-USDX"})
        await conn.send_all(trades)

    async def scenario() -> tuple[Outcome, FeedServer]:
        async with FeedServer(script) as server:

            async def drive(probe: Probe) -> None:
                await probe.until_received(2 + len(trades))

            config = collector("okx", ["BTC-USDT", "ETH-USDX"], ["trades"], server.url)
            return await ingest(tmp_path, [config], drive), server

    out, server = asyncio.run(scenario())
    refusal = "60018: channel:trades,instId:ETH-USDX doesn't exist"
    _check(out, server, refusal, [("trades", "BTC-USDT")])
    record(
        "subscription refused (OKX 60018, unknown instId)",
        received=2 + len(trades),
        landed=2 + len(trades),
        quarantined=0,
        lost=0,
        duplicated=0,
        recover_s=None,
        note="sub_error event; health degraded: subscription refused: 60018 ...; the other stream kept flowing on "
        "the same connection (the ack and the error are landed frames too)",
    )


@pytest.mark.timeout(60)
def test_a_binance_error_frame_degrades_health_and_the_streams_keep_flowing(tmp_path: Path, shared_data: Path) -> None:
    trades = binance_frames(shared_data, "btcusdt@trade", 20)
    error = '{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}'  # Binance's answer to a bad stream

    async def script(conn: Conn) -> None:
        await conn.send_all([*trades[:10], error, *trades[10:]])

    async def scenario() -> tuple[Outcome, FeedServer]:
        async with FeedServer(script) as server:

            async def drive(probe: Probe) -> None:
                await probe.until_received(1 + len(trades))

            return await ingest(tmp_path, [collector("binance", ["BTCUSDT"], ["trade"], server.url)], drive), server

    out, server = asyncio.run(scenario())
    _check(out, server, "2: Invalid request: invalid stream", [("trade", "BTCUSDT")])
    record(
        "subscription refused (Binance error frame, code 2)",
        received=1 + len(trades),
        landed=1 + len(trades),
        quarantined=0,
        lost=0,
        duplicated=0,
        recover_s=None,
        note="sub_error event; health degraded naming it; trades before and after it landed, no reconnect",
    )
