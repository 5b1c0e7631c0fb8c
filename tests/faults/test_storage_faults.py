"""A lake that cannot be written (remounted read-only, disk full) stops nothing: collection goes on, frames wait in
the write-ahead journal, health says "degraded" with the reason, writes are retried with backoff and the backlog
drains when the storage is back: every frame received lands exactly once. Only an exhausted journal budget stops
collection, with a message that says so, and what it holds lands at the next start.

The lake is a real tmpfs remounted read-only or filled up; the ingestor is the real one, fed real Binance trade
frames over a real socket by a server that records every frame it sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _feed import TradeFeed, lake_payloads, trade_frames
from _reliability import record, record_delivery
from _storage import Tmpfs, binance_trades, tmpfs, until

from mdplatform.collector import IngestConfig
from mdplatform.ingest import Ingestor

pytestmark = pytest.mark.waits

RATE = 500  # frames per second
MAX_ROWS = 500  # a lake file per second of frames: the lake is written (and its failure seen) all the time


def _outage(tmp_path: Path, shared_data: Path, fault: Callable[[Tmpfs], None], heal: Callable[[Tmpfs], None],
            reason: str, name: str) -> None:  # fmt: skip
    frames = trade_frames(shared_data, 20_000)
    with tmpfs(tmp_path / "mnt", 64) as fs:
        lake = str(fs.path / "lake")

        async def scenario() -> None:
            feed = TradeFeed(frames, RATE)
            port = feed.start()
            config = IngestConfig((binance_trades(port),), journal=str(tmp_path / "journal"))
            ingestor = Ingestor(config, lake=lake, status_every_s=0.5, max_rows=MAX_ROWS)
            stop = asyncio.Event()
            run = asyncio.create_task(ingestor.run(stop=stop))
            try:
                await until(lambda: len(lake_payloads(lake)) >= 1_000, 30, "frames written before the fault")
                fault(fs)
                in_lake = len(lake_payloads(lake))
                noticed = await until(lambda: ingestor.health()["lake"]["state"] == "failing", 30, "failure seen")
                await asyncio.sleep(8)
                health = ingestor.health()
                assert health["status"] == "degraded"
                assert any(p.startswith("lake not writable") and reason in p for p in health["problems"]), health
                assert len(lake_payloads(lake)) == in_lake  # nothing written, nothing torn
                during = len(feed.sent)
                heal(fs)
                healed = time.monotonic()
                await until(lambda: ingestor.health()["lake"]["state"] == "ok", 60, "backlog drained")
                sent_before_heal = {f for _, f in feed.sent[:during]}
                await until(lambda: sent_before_heal <= set(lake_payloads(lake)), 60, "frames of the outage")
                recover_s = time.monotonic() - healed
                await asyncio.sleep(2)
            finally:
                stop.set()
                result = await run
                feed.stop()
            landed = lake_payloads(lake)
            sent = [f for _, f in feed.sent]
            assert feed.connections == 1  # collection never stopped
            assert result.status["messages_received"] == len(sent)
            assert len(landed) == len(set(landed)) == len(sent)
            assert set(landed) == set(sent)
            assert result.failure is None
            assert result.status["lake"]["write_errors"] >= 1
            assert list((tmp_path / "journal").glob("*/*.wal")) == []
            record_delivery(
                name,
                sent,
                landed,
                recover_s,
                f"{during - in_lake} frames waited in the journal during 8 s of outage; failure seen in "
                f"{noticed:.1f} s",
            )

        asyncio.run(scenario())


def test_lake_remounted_read_only(tmp_path: Path, shared_data: Path) -> None:
    _outage(tmp_path, shared_data, Tmpfs.read_only, Tmpfs.writable, "Read-only file system",
            "lake read-only (remounted) for 8 s")  # fmt: skip


def test_lake_disk_full(tmp_path: Path, shared_data: Path) -> None:
    _outage(tmp_path, shared_data, Tmpfs.fill, Tmpfs.free, "No space left on device", "lake disk full for 8 s")


def test_an_exhausted_journal_budget_stops_collection_and_loses_nothing(tmp_path: Path, shared_data: Path) -> None:
    frames = trade_frames(shared_data, 5_000)
    status_file = tmp_path / "status.json"
    with tmpfs(tmp_path / "mnt", 64) as fs:
        lake = str(fs.path / "lake")
        fs.read_only()

        async def scenario() -> None:
            feed = TradeFeed(frames, 1_000)
            port = feed.start()
            config = IngestConfig(
                (binance_trades(port),),
                journal=str(tmp_path / "journal"),
                journal_budget_mb=0.5,
                status_file=str(status_file),
            )
            try:
                first = await asyncio.wait_for(Ingestor(config, lake=lake, max_rows=MAX_ROWS).run(), 60)
                assert first.failure is not None and "disk budget is exhausted" in first.failure
                assert "written to the lake when the ingestor next starts" in first.failure
                health = json.loads(status_file.read_text())["health"]
                assert health["status"] == "stopped"
                assert health["lake"]["state"] == "failing"
                received = first.status["messages_received"]
                assert 0 < received < len(frames)
                assert lake_payloads(lake) == []
                feed.pause()
                fs.writable()
                second = await Ingestor(config, lake=lake, max_rows=MAX_ROWS).run(duration_s=3)
            finally:
                feed.stop()
            landed = lake_payloads(lake)
            assert second.failure is None
            assert second.status["lake"]["rows_replayed"] == received
            assert len(landed) == len(set(landed)) == received
            assert set(landed) <= {f for _, f in feed.sent}
            record(
                "journal budget (0.5 MiB) exhausted while the lake is read-only",
                received=received,
                landed=len(landed),
                quarantined=0,
                lost=received - len(set(landed)),
                duplicated=len(landed) - len(set(landed)),
                recover_s=None,
                note="collection stops with a message naming the budget; every frame received lands at the next start",
            )

        asyncio.run(scenario())
