"""An S3 lake (a local moto server) stopped for two minutes: collection goes on, the frames wait in the journal,
health is degraded with the reason, and when S3 is back the backlog drains: every frame received lands exactly once.

The moto server runs in this process so that stopping it keeps its buckets (moto's state is per process) and it
comes back on the same port, as an S3 endpoint would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from _feed import TradeFeed, lake_payloads, trade_frames
from _reliability import record_delivery
from _storage import binance_trades, until
from moto.server import ThreadedMotoServer
from s3fs import S3FileSystem

from mdplatform.collector import IngestConfig
from mdplatform.ingest import Ingestor

pytestmark = pytest.mark.waits

OUTAGE_S = 120
RATE = 100  # frames per second: the recording lasts the whole test


class Moto:
    def __init__(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        self.host, self.port = self.server.get_host_and_port()
        self.bucket = ""

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    moto = Moto()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MDP_S3_ENDPOINT": f"http://{moto.host}:{moto.port}",
    }.items():
        monkeypatch.setenv(key, value)
    S3FileSystem.clear_instance_cache()
    # moto's state outlives a server within a process (another test file may have used it): a bucket of its own
    moto.bucket = f"outage-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=f"http://{moto.host}:{moto.port}").create_bucket(Bucket=moto.bucket)
    try:
        yield moto
    finally:
        moto.stop()


def _payloads(lake: str) -> list[str]:
    S3FileSystem.clear_instance_cache()  # a fresh listing, not one cached before the files landed
    return lake_payloads(lake)


def test_s3_down_for_two_minutes(tmp_path: Path, shared_data: Path, moto: Moto) -> None:
    frames = trade_frames(shared_data, 30_000)
    lake = f"s3://{moto.bucket}/lake"

    async def scenario() -> None:
        feed = TradeFeed(frames, RATE)
        port = feed.start()
        config = IngestConfig((binance_trades(port),), journal=str(tmp_path / "journal"))
        ingestor = Ingestor(config, lake=lake, status_every_s=1.0, max_rows=RATE)
        stop = asyncio.Event()
        run = asyncio.create_task(ingestor.run(stop=stop))
        try:
            await until(lambda: len(_payloads(lake)) >= 3 * RATE, 30, "frames written before the outage")
            moto.stop()
            noticed = await until(lambda: ingestor.health()["lake"]["state"] == "failing", 60, "outage seen")
            health = ingestor.health()
            assert health["status"] == "degraded"
            assert any(p.startswith("lake not writable") for p in health["problems"]), health
            await asyncio.sleep(OUTAGE_S - noticed)
            during = len(feed.sent)
            moto.start()
            recover_s = await until(lambda: ingestor.health()["lake"]["state"] == "ok", 120, "backlog drained")
            outage = {f for _, f in feed.sent[:during]}
            # the last of them may still be in the open minute's buffer (a file per RATE rows)
            await until(lambda: outage <= set(_payloads(lake)), 30, "frames of the outage in the lake")
        finally:
            stop.set()
            result = await run
            feed.stop()
        landed = _payloads(lake)
        sent_all = [f for _, f in feed.sent]
        assert feed.connections == 1
        assert result.status["messages_received"] == len(sent_all)
        assert len(landed) == len(set(landed)) == len(sent_all)
        assert set(landed) == set(sent_all)
        assert result.status["lake"]["rows_replayed"] > 0
        assert list((tmp_path / "journal").glob("*/*.wal")) == []
        record_delivery(
            "S3 (moto) stopped for 2 minutes",
            sent_all,
            landed,
            recover_s,
            f"{result.status['lake']['rows_replayed']} frames written from the journal; outage seen in {noticed:.1f} s",
        )

    asyncio.run(scenario())
