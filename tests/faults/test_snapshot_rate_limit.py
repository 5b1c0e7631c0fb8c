"""Book snapshots go through one limiter per host: when the exchange answers 429 with Retry-After (the replay
enforcing a budget of 60 weight per second; a spot depth snapshot of 1000 levels weighs 50), the collector waits
it out instead of hammering, and every book syncs on the same connection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.history import RateLimit
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events
from mdplatform.replay import ReplayServer

SPOT = ["btcusdt_20240808.gz", "ethusdt_20240808.gz"]


@pytest.mark.timeout(90)
def test_snapshots_wait_out_a_429_and_every_book_syncs(tmp_path: Path, shared_data: Path) -> None:
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
            ingestor = Ingestor(IngestConfig((config,)), lake=lake, status_every_s=0.5)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            for _ in range(300):
                await asyncio.sleep(0.1)
                book = ingestor.manager.get_status()["collectors"][0]["book_sync"]
                if book and all(state == "synced" for state in book.values()) and len(book) == 2:
                    break
            status = ingestor.manager.get_status()
            stop.set()
            await task
            return server.rest_requests, server.rest_throttled, status

    requests, throttled, status = asyncio.run(scenario())
    assert status["collectors"][0]["book_sync"] == {"BTCUSDT": "synced", "ETHUSDT": "synced"}, status
    assert throttled >= 1 and requests >= 3  # two snapshots, at least one of them answered 429 first
    assert throttled <= 2  # one pause per refusal, no hammering
    assert status["reconnects"] == 0 and status["collectors"][0]["sync_errors"] == 0
    synced = read_events(lake, 0, 2**62)
    assert sorted(synced.filter(synced["kind"] == "synced").get_column("symbol").unique().to_list()) == [
        "BTCUSDT",
        "ETHUSDT",
    ]
