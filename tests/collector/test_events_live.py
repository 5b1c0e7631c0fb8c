"""The live collector's events over a real socket: open, subscribed, start, alive (pong-proven), close, and what
the book session and the exchange's acks report."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import polars as pl
import pytest
from _collector_util import until
from websockets.asyncio.server import ServerConnection, serve

from mdplatform.collector import CollectorManager, ExchangeCollectorConfig, IngestConfig
from mdplatform.collector._websocket import WsLink
from mdplatform.exchanges import GAP, SessionAction, StreamEvent, get_exchange
from mdplatform.ingest import Ingestor
from mdplatform.lake import RawWriter, read_events, read_raw
from mdplatform.replay import ReplayServer

ALL = (0, 2**62)
SPOT = "binance-hftbacktest/spot/btcusdt_20240808.gz"
OKX = "cryptofeed-samples/OKX.ws.1.0.gz"


def _ns(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        t=pl.col("recv_ts").dt.epoch("ns"),
        ex=pl.col("exchange_ts").dt.epoch("ns"),
        fr=pl.col("frame_recv_ts").dt.epoch("ns"),
    )


def _binance_e(payload: str) -> int | None:
    e = orjson.loads(payload)["data"].get("E")
    return None if e is None else e * 1_000_000


def test_binance_events_across_a_dropped_connection(
    lake: str, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[int] = []
    real_ping = WsLink.ping

    def recording_ping(self: WsLink) -> asyncio.Future[None]:
        pings.append(time.time_ns())
        return real_ping(self)

    monkeypatch.setattr(WsLink, "ping", recording_ping)

    async def scenario() -> tuple[Ingestor, dict[str, object]]:
        # 346 s of recording in about 3.5 s, every connection dropped once after 15,000 frames
        async with ReplayServer([shared_data / SPOT], speed=100, drop_after=15_000, verbose=False) as server:
            config = ExchangeCollectorConfig(
                exchange="binance",
                symbols=("BTCUSDT",),
                channels=("trade", "depth", "bookTicker"),
                ws_url=server.ws_url,
                rest_url=server.rest_url,
                reconnect_initial_s=0.05,
                liveness_interval_s=0.1,
            )
            ingestor = Ingestor(IngestConfig((config,)), lake=lake)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            await server.wait_finished(timeout=60)
            await until(lambda: ingestor.manager.get_status()["messages_received"] >= server.sent, 30)
            await asyncio.sleep(0.3)  # a few pings while the market is silent
            status = ingestor.manager.get_status()
            stop.set()
            await task
            return ingestor, status

    ingestor, status = asyncio.run(scenario())
    assert status["reconnects"] == 1
    raw = read_raw(lake, *ALL).with_columns(t=pl.col("recv_ts").dt.epoch("ns"))
    ev = _ns(read_events(lake, *ALL))
    assert ingestor.writer.stats.events_written == ev.height
    conns = ev.filter(pl.col("kind") == "open")["conn_id"].to_list()
    assert len(conns) == 2
    first, second = conns
    closes = ev.filter(pl.col("kind") == "close")
    assert closes["conn_id"].to_list() == [first, second]
    dropped, stopped = closes.iter_rows(named=True)
    assert dropped["detail"].startswith("ConnectionClosedError")  # the server went away without a close frame
    assert stopped["detail"] == "stopped"
    # the second connection opened after the first closed
    second_open = ev.filter((pl.col("kind") == "open") & (pl.col("conn_id") == second))["t"].item()
    assert second_open > dropped["t"]

    for conn_id in conns:
        e = ev.filter(pl.col("conn_id") == conn_id)
        frames = raw.filter(pl.col("conn_id") == conn_id).sort("seq")
        kinds = e["kind"].to_list()
        assert kinds[0] == "open" and kinds[-1] == "close"
        opened = e.row(0, named=True)
        assert opened["detail"].endswith("/stream?streams=btcusdt@trade/btcusdt@depth@100ms/btcusdt@bookTicker")
        # subscribed at open: the streams are in the URL
        subscribed = e.filter(pl.col("kind") == "subscribed")
        at_open = subscribed.filter(pl.col("t") == opened["t"])
        assert sorted(at_open.select("channel", "symbol").rows()) == [
            ("bookTicker", "BTCUSDT"),
            ("depth", "BTCUSDT"),
            ("trade", "BTCUSDT"),
        ]
        # start: the first frame carrying E
        (start,) = e.filter(pl.col("kind") == "start").iter_rows(named=True)
        timed = frames.with_columns(E=pl.col("payload").map_elements(_binance_e, return_dtype=pl.Int64)).filter(
            pl.col("E").is_not_null()
        )
        assert (start["seq"], start["t"], start["ex"], start["fr"]) == (
            timed["seq"][0],
            timed["t"][0],
            timed["E"][0],
            timed["t"][0],
        )
        # alive: recv_ts is when the ping went out, seq the frames landed by then, and the exchange time is that
        # of a frame landed before the ping
        alive = e.filter(pl.col("kind") == "alive")
        assert alive.height >= 5
        assert alive["ex"].drop_nulls().is_sorted()
        assert alive["t"].is_sorted()
        landed = frames["t"].to_list()
        # frames of one read of the socket share its receive time: fr names the read, whose frames include ex's
        by_recv: dict[int, set[int]] = {}
        for t, e_ms in zip(timed["t"].to_list(), timed["E"].to_list(), strict=True):
            by_recv.setdefault(t, set()).add(e_ms)
        for row in alive.iter_rows(named=True):
            assert any(0 <= p - row["t"] < 20_000_000 for p in pings), "alive recv_ts is not a ping time"
            assert row["seq"] == sum(1 for t in landed if t < row["t"])
            if row["ex"] is not None:
                assert row["fr"] < row["t"] and row["ex"] in by_recv[row["fr"]]
        # the book synced on each connection with its own REST snapshot
        assert e.filter(pl.col("kind") == "synced").select("channel", "symbol").rows() == [("depth", "BTCUSDT")]
        # every event's seq counts frames landed on its connection
        assert e["seq"].max() == frames.height == e.row(-1, named=True)["seq"]

    # the second connection was alive while the market was silent: its last alive came after its last frame
    last_alive = ev.filter((pl.col("kind") == "alive") & (pl.col("conn_id") == second))["t"].max()
    assert last_alive > raw.filter(pl.col("conn_id") == second)["t"].max()
    conn_status = status["collectors"][0]["connections"][0]  # type: ignore[index]
    assert conn_status["subscribed"] == 3 and conn_status["last_alive_time"] is not None


def test_okx_subscribed_rows_come_from_the_acks(lake: str, shared_data: Path) -> None:
    async def scenario() -> None:
        async with ReplayServer([shared_data / OKX], speed=0, verbose=False) as server:
            config = ExchangeCollectorConfig(
                exchange="okx",
                symbols=("BTC-USDT", "BTC-USD-220527", "UNI-USD-SWAP"),
                channels=("trades", "books", "tickers"),
                ws_url=server.ws_url,
                liveness_interval_s=0.1,
            )
            ingestor = Ingestor(IngestConfig((config,)), lake=lake)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            await server.wait_finished(timeout=30)
            await until(lambda: ingestor.manager.get_status()["messages_received"] >= server.sent + 9, 30)
            await asyncio.sleep(0.5)
            stop.set()
            await task

    asyncio.run(scenario())
    ev = _ns(read_events(lake, *ALL))
    raw = read_raw(lake, *ALL).with_columns(t=pl.col("recv_ts").dt.epoch("ns"))
    acks = raw.filter(pl.col("channel") == "control").sort("seq")
    subscribed = ev.filter(pl.col("kind") == "subscribed")
    assert subscribed.height == 9
    assert subscribed.select("t", "seq").rows() == acks.select("t", "seq").rows()
    expected = [(a["arg"]["channel"], a["arg"]["instId"]) for a in map(orjson.loads, acks["payload"])]
    assert subscribed.select("channel", "symbol").rows() == expected
    assert sorted(ev.filter(pl.col("kind") == "synced")["symbol"]) == ["BTC-USD-220527", "BTC-USDT", "UNI-USD-SWAP"]
    assert ev.filter(pl.col("kind") == "alive").height >= 3
    assert ev["kind"].to_list()[0] == "open" and ev["kind"].to_list()[-1] == "close"


def test_a_refused_subscription_is_recorded_and_degrades_health(lake: str) -> None:
    """A minimal OKX-speaking server that accepts one subscription and refuses the other."""

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            if message == "ping":
                await ws.send("pong")
                continue
            for arg in orjson.loads(message)["args"]:
                if arg["instId"] == "NOPE-USDT":
                    msg = f"Wrong URL or channel:{arg['channel']},instId:NOPE-USDT doesn't exist."
                    await ws.send(orjson.dumps({"event": "error", "code": "60018", "msg": msg}).decode())
                else:
                    await ws.send(orjson.dumps({"event": "subscribe", "arg": arg}).decode())
                    item = {
                        "instId": arg["instId"],
                        "tradeId": "1",
                        "px": "1",
                        "sz": "1",
                        "side": "buy",
                        "ts": "1700000000000",
                    }
                    await ws.send(orjson.dumps({"arg": arg, "data": [item]}).decode())

    async def scenario() -> tuple[dict[str, object], dict[str, object]]:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            writer = RawWriter(lake)
            config = ExchangeCollectorConfig(
                exchange="okx",
                symbols=("BTC-USDT", "NOPE-USDT"),
                channels=("trades",),
                ws_url=f"ws://127.0.0.1:{port}/ws/v5/public",
                liveness_interval_s=0.1,
            )
            manager = CollectorManager([config], writer)
            await manager.start()
            await until(lambda: manager.get_status()["collectors"][0]["sub_errors"] == 1, 10)
            await asyncio.sleep(0.3)
            status, health = manager.get_status(), manager.get_health_status()
            await manager.stop()
            writer.close()
            return status, health

    status, health = asyncio.run(scenario())
    ev = _ns(read_events(lake, *ALL))
    (refused,) = ev.filter(pl.col("kind") == "sub_error").iter_rows(named=True)
    assert refused["detail"] == "60018: Wrong URL or channel:trades,instId:NOPE-USDT doesn't exist."
    assert ev.filter(pl.col("kind") == "subscribed").select("channel", "symbol").rows() == [("trades", "BTC-USDT")]
    (start,) = ev.filter(pl.col("kind") == "start").iter_rows(named=True)
    assert start["ex"] == 1_700_000_000_000 * 1_000_000
    assert ev.filter(pl.col("kind") == "alive")["ex"].to_list()[-1] == 1_700_000_000_000 * 1_000_000
    assert health["status"] == "degraded"
    (collector,) = health["collectors"]  # type: ignore[misc]
    assert collector["sub_errors"] == 1
    assert any("subscription refused" in p and "NOPE-USDT" in p for p in collector["problems"])
    conn = status["collectors"][0]["connections"][0]  # type: ignore[index]
    assert conn["sub_errors"] == 1 and conn["subscribed"] == 1


def test_a_gap_the_session_reports_becomes_an_event(
    lake: str, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exchange = get_exchange("binance")

    class GapOnThe100thDiff:
        def __init__(self) -> None:
            self.diffs = 0

        def on_frame(self, channel: str, symbol: str, frame: str) -> SessionAction | None:
            self.diffs += 1
            if self.diffs == 100:
                return SessionAction(error="fake gap", events=(StreamEvent(GAP, channel, symbol, "U=7 > u+1=5"),))
            return None

        def on_snapshot(self, symbol: str, body: str) -> SessionAction | None:
            return None

        def sync_state(self) -> dict[str, str]:
            return {}

    monkeypatch.setattr(exchange, "new_session", lambda subs, rest_url: GapOnThe100thDiff())

    async def scenario() -> None:
        async with ReplayServer([shared_data / SPOT], speed=0, verbose=False) as server:
            writer = RawWriter(lake)
            config = ExchangeCollectorConfig(
                exchange="binance",
                symbols=("BTCUSDT",),
                channels=("trade", "depth", "bookTicker"),
                ws_url=server.ws_url,
                rest_url=server.rest_url,
            )
            manager = CollectorManager([config], writer)
            await manager.start()
            await server.wait_finished(timeout=30)
            await until(lambda: manager.get_status()["messages_received"] >= server.sent, 30)
            await manager.stop()
            writer.close()

    asyncio.run(scenario())
    ev = _ns(read_events(lake, *ALL))
    raw = read_raw(lake, *ALL).with_columns(t=pl.col("recv_ts").dt.epoch("ns")).sort("seq")
    depth = raw.filter(pl.col("channel") == "depth").row(99, named=True)
    (gap,) = ev.filter(pl.col("kind") == "gap").iter_rows(named=True)
    assert (gap["channel"], gap["symbol"], gap["detail"]) == ("depth", "BTCUSDT", "U=7 > u+1=5")
    assert (gap["t"], gap["seq"]) == (depth["t"], depth["seq"])
    # the newest exchange time known then: at least the gap frame's own, at most the largest landed so far
    landed = raw.filter(pl.col("seq") <= depth["seq"])["payload"].map_elements(_binance_e, return_dtype=pl.Int64)
    assert _binance_e(depth["payload"]) <= gap["ex"] <= landed.max()
