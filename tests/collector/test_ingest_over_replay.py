"""The ingestor against the local exchange replay over a real socket: every frame lands, once, in order."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from _collector_util import until

from mdplatform.collector import (
    CollectorManager,
    ConfigError,
    ExchangeCollectorConfig,
    IngestConfig,
    load_config,
)
from mdplatform.ingest import Ingestor
from mdplatform.lake import RawWriter, read_raw
from mdplatform.replay import ReplayServer

ALL_TIME = (0, 2**62)


def _recorded_frames(path: Path) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return [line.rstrip("\n").split(" ", 1)[1] for line in fh if '"stream"' in line[:40]]


async def _ingest_replay(
    lake: str, server: ReplayServer, config: ExchangeCollectorConfig, settle: Callable[[Ingestor], bool]
) -> tuple[Ingestor, dict[str, object]]:
    ingestor = Ingestor(IngestConfig((config,)), lake=lake)
    stop = asyncio.Event()
    task = asyncio.create_task(ingestor.run(stop=stop))
    await server.wait_finished(timeout=60)
    await until(lambda: settle(ingestor), 30)
    health = ingestor.manager.get_health_status()
    stop.set()
    await task
    return ingestor, health


def test_binance_every_frame_lands_once_across_a_dropped_connection(lake: str, shared_data: Path, receive: str) -> None:
    capture = shared_data / "binance-hftbacktest/spot/btcusdt_20240808.gz"
    recorded = _recorded_frames(capture)

    async def scenario() -> tuple[Ingestor, dict[str, object], int]:
        async with ReplayServer([capture], speed=0, drop_after=15_000) as server:
            config = ExchangeCollectorConfig(
                exchange="binance",
                symbols=("BTCUSDT",),
                channels=("trade", "depth", "bookTicker"),
                ws_url=server.ws_url,
                rest_url=server.rest_url,
                reconnect_initial_s=0.05,
            )
            received = lambda ing: ing.manager.get_status()["messages_received"] >= server.sent  # noqa: E731
            ingestor, health = await _ingest_replay(lake, server, config, received)
            return ingestor, health, server.sent

    ingestor, health, sent = asyncio.run(scenario())
    status = ingestor.manager.get_status()
    raw = read_raw(lake, *ALL_TIME).sort("recv_ts", "conn_id", "seq")
    ws_rows = raw.filter(pl.col("channel") != "depthSnapshot")

    assert sent == len(recorded) == 41_248
    assert status["reconnects"] == 1
    assert status["messages_received"] == ws_rows.height == sent
    # one connection id per connection, each with an unbroken sequence from 1
    per_conn = ws_rows.group_by("conn_id").agg(
        pl.col("seq").min().alias("lo"), pl.col("seq").max().alias("hi"), pl.len().alias("n")
    )
    assert per_conn.height == 2
    assert (per_conn["lo"] == 1).all() and (per_conn["hi"] == per_conn["n"]).all()
    # exactly the recorded frames, byte for byte, in order
    ordered = ws_rows.sort("recv_ts")["payload"].to_list()
    assert ordered == recorded
    assert ws_rows.filter(pl.col("channel") == "trade").height == sum('@trade"' in f[:40] for f in recorded)
    # the book re-synced on the new connection with a fresh REST snapshot, landed in the raw layer
    snapshots = raw.filter(pl.col("channel") == "depthSnapshot")
    assert snapshots.height == 2 and set(snapshots["symbol"]) == {"BTCUSDT"}
    assert all(p.startswith('{"lastUpdateId"') for p in snapshots["payload"])
    collector = status["collectors"][0]
    assert collector["book_sync"] == {"BTCUSDT": "synced"}
    assert collector["sync_errors"] == 0
    assert health["status"] == "healthy", health
    assert ingestor.writer.stats.rows_written == raw.height


def test_okx_subscribes_keeps_books_verified_and_lands_acks(lake: str, shared_data: Path, receive: str) -> None:
    capture = shared_data / "cryptofeed-samples/OKX.ws.1.0.gz"

    async def scenario() -> tuple[Ingestor, dict[str, object], int]:
        async with ReplayServer([capture], speed=0) as server:
            config = ExchangeCollectorConfig(
                exchange="okx",
                symbols=("BTC-USDT", "BTC-USD-220527", "UNI-USD-SWAP"),
                channels=("trades", "books", "tickers"),
                ws_url=server.ws_url,
            )
            received = lambda ing: ing.manager.get_status()["messages_received"] >= server.sent + 9  # noqa: E731
            ingestor, health = await _ingest_replay(lake, server, config, received)
            return ingestor, health, server.sent

    ingestor, health, sent = asyncio.run(scenario())
    raw = read_raw(lake, *ALL_TIME)
    by_channel = dict(raw.group_by("channel").len().iter_rows())
    assert by_channel["control"] == 9  # one subscribe ack per (channel, instId)
    # every data frame of the recording (the cursor waits for the subscription, so the recorded snapshots come first)
    assert by_channel["books"] == 290 and by_channel["trades"] == 74 and by_channel["tickers"] == 28
    assert sent == 392
    assert raw.height == sent + 9
    collector = ingestor.manager.get_status()["collectors"][0]
    assert collector["sync_errors"] == 0 and collector["errors"] == 0
    assert set(collector["book_sync"].values()) == {"synced"}
    assert health["status"] == "healthy", health


def test_watchdog_reconnects_a_silent_connection(lake: str, shared_data: Path) -> None:
    capture = shared_data / "cryptofeed-samples/OKX.ws.1.0.gz"

    async def scenario() -> dict[str, object]:
        async with ReplayServer([capture], speed=0) as server:
            writer = RawWriter(lake)
            config = ExchangeCollectorConfig(
                exchange="okx",
                symbols=("BTC-USDT",),
                channels=("trades",),
                ws_url=server.ws_url,
                idle_timeout_s=0.6,
                reconnect_initial_s=0.05,
            )
            manager = CollectorManager([config], writer)
            await manager.start()
            # the replay ends quickly and then stays silent; the watchdog must notice, reconnect, notice again
            await until(lambda: manager.get_status()["reconnects"] >= 2, 15)
            status = manager.get_status()
            await manager.stop()
            writer.close()
            return status

    status = asyncio.run(scenario())
    conn = status["collectors"][0]["connections"][0]
    assert "no data for" in conn["last_error"]
    assert status["reconnects"] >= 2


def test_reconnect_backs_off_exponentially_one_attempt_at_a_time(lake: str) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    attempts: list[float] = []

    async def scenario() -> dict[str, object]:
        server = await asyncio.start_server(
            lambda r, w: (attempts.append(time.monotonic()), w.close()), "127.0.0.1", port
        )
        writer = RawWriter(lake)
        config = ExchangeCollectorConfig(
            exchange="binance",
            symbols=("BTCUSDT",),
            channels=("trade",),
            ws_url=f"ws://127.0.0.1:{port}",
            reconnect_initial_s=0.1,
            reconnect_max_s=0.8,
            connects_per_s=1000.0,  # the backoff alone (Binance's own rate would space attempts 6+ at 1/s)
        )
        manager = CollectorManager([config], writer)
        await manager.start()
        await until(lambda: len(attempts) >= 6 and manager.get_status()["errors"] >= 6, 20)
        status = manager.get_status()
        await manager.stop()
        server.close()
        writer.close()
        return status

    status = asyncio.run(scenario())
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    # delay = initial * 2**n * jitter(0.5..1), capped: later waits are longer than the first and never exceed the cap
    assert gaps[0] < 0.2
    assert max(gaps[3:]) >= 0.35
    assert all(g < 0.8 + 0.3 for g in gaps)
    assert status["errors"] >= 6 and status["messages_received"] == 0
    assert status["collectors"][0]["connections"][0]["state"] in {"backoff", "connecting"}


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("collectors:\n  - exchange: binance\n    symbols: [BTCUSDT]\n    channels: [trades]\n")
    with pytest.raises(ConfigError, match=r"unsupported channel\(s\) \['trades'\]"):
        load_config(bad)
    bad.write_text("collectors:\n  - exchange: nope\n    symbols: [X]\n    channels: [trade]\n")
    with pytest.raises(ConfigError, match="unknown exchange 'nope'"):
        load_config(bad)
    good = tmp_path / "good.yaml"
    good.write_text("collectors:\n  - exchange: okx\n    symbols: BTC-USDT\n    channels: [trades, books]\n")
    config = load_config(good)
    assert config.collectors[0].symbols == ("BTC-USDT",)
    assert config.collectors[0].channels == ("trades", "books")


def test_keepalive_binance_answers_server_pings_okx_sends_text_pings(lake: str, shared_data: Path) -> None:
    """A silent but healthy connection stays up: Binance's server pings get pongs (or the server drops us),
    OKX gets a text "ping" before its idle limit and the "pong" counts as data for the watchdog."""

    async def scenario() -> dict[str, object]:
        binance = ReplayServer(
            [shared_data / "binance-hftbacktest/spot/btcusdt_20240808.gz"], speed=0, ping_interval=0.2
        )
        okx = ReplayServer([shared_data / "cryptofeed-samples/OKX.ws.1.0.gz"], speed=0)
        async with binance, okx:
            writer = RawWriter(lake)
            configs = [
                ExchangeCollectorConfig(
                    exchange="binance",
                    symbols=("BTCUSDT",),
                    channels=("trade",),
                    ws_url=binance.ws_url,
                    rest_url=binance.rest_url,
                    idle_timeout_s=30,
                ),
                ExchangeCollectorConfig(
                    exchange="okx",
                    symbols=("BTC-USDT",),
                    channels=("trades",),
                    ws_url=okx.ws_url,
                    idle_timeout_s=1.5,
                    ping_interval_s=0.3,
                ),
            ]
            manager = CollectorManager(configs, writer)
            await manager.start()
            await binance.wait_finished(timeout=30)
            await okx.wait_finished(timeout=30)
            await asyncio.sleep(3.0)  # silent for twice the idle limit
            status = manager.get_status()
            await manager.stop()
            writer.close()
            return status

    status = asyncio.run(scenario())
    binance, okx = status["collectors"]  # type: ignore[misc]
    # the Binance replay pings every 0.2 s and drops a client that has not ponged within 0.2 s: 3 s of silence
    # without a drop means every ping was answered
    assert binance["reconnects"] == 0 and binance["errors"] == 0
    assert binance["connections"][0]["state"] == "connected"
    assert okx["reconnects"] == 0 and okx["errors"] == 0
    pongs = read_raw(lake, *ALL_TIME, exchanges=["okx"], channels=["control"]).filter(pl.col("payload") == "pong")
    assert pongs.height >= 5
