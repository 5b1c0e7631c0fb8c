"""``collector_status`` written by a running ingestor (collecting from the local replay of a real Binance
recording) to a database of the test's own: a row per connection and per book at every report, the last one saying
the connection stopped with every frame the replay sent counted; a database that cannot be written never stops
collection."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import logging
import uuid
from pathlib import Path

import psycopg
import pytest

from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.ingest import Ingestor
from mdplatform.replay import ReplayServer

SPOT = "binance-hftbacktest/spot/btcusdt_20240808.gz"
LINES = 4_000


async def _until(predicate: object, timeout: float) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def _config(ws_url: str, rest_url: str) -> ExchangeCollectorConfig:
    return ExchangeCollectorConfig(
        exchange="binance",
        symbols=("BTCUSDT",),
        channels=("trade", "depth", "bookTicker"),
        ws_url=ws_url,
        rest_url=rest_url,
        reconnect_initial_s=0.05,
    )


@pytest.mark.timeout(120)
def test_the_ingestor_writes_collector_status(migrated: str, lake: str, shared_data: Path, tmp_path: Path) -> None:
    capture = tmp_path / "head.gz"
    with gzip.open(shared_data / SPOT, "rt") as src, gzip.open(capture, "wt") as dst:
        dst.writelines(itertools.islice(src, LINES))

    async def scenario() -> tuple[int, int]:
        async with ReplayServer([capture], speed=0) as server:
            config = IngestConfig((_config(server.ws_url, server.rest_url),), status_http="off", pg_dsn=migrated)
            ingestor = Ingestor(config, lake=lake, status_every_s=0.2)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            await server.wait_finished(timeout=60)
            await _until(lambda: ingestor.health()["status"] == "healthy", 30)
            assert ingestor.pg is not None
            written = ingestor.pg.rows_written
            await _until(lambda: ingestor.pg is not None and ingestor.pg.rows_written >= written + 4, 30)
            stop.set()
            await task
            return server.sent, ingestor.pg.rows_written

    sent, rows_written = asyncio.run(scenario())

    with psycopg.connect(migrated) as conn:
        rows = conn.execute(
            "SELECT ts, exchange, symbol, channel, state, messages, detail FROM collector_status ORDER BY ts"
        ).fetchall()
    assert len(rows) == rows_written
    connections = [r for r in rows if r[2] is None]
    books = [r for r in rows if r[2] is not None]
    # a report: a row for the connection and, once its session keeps the book, one for the book, stamped alike
    assert len(connections) >= len(books) >= 2 and {r[0] for r in books} <= {r[0] for r in connections}
    assert len({r[0] for r in connections}) == len(connections)
    assert {r[1] for r in rows} == {"binance"}
    assert {r[3] for r in connections} == {None}
    last = connections[-1]
    assert last[4] == "stopped" and last[5] == sent
    detail = json.loads(last[6])
    assert detail["connection"] == 0 and detail["reconnects"] == 0 and detail["gaps"] == 0
    assert detail["conn_id"].startswith("binance-")
    assert any(r[4] == "connected" and r[5] == sent for r in connections)  # while it ran, everything received
    assert {(r[2], r[3]) for r in books} == {("BTCUSDT", "depth")}
    assert books[-1][4] == "synced" and books[-1][5] is None and books[-1][6] is None
    assert [r[5] for r in connections] == sorted(r[5] for r in connections)  # the count only grows


@pytest.mark.timeout(60)
def test_a_database_that_cannot_be_written_does_not_stop_collection(
    migrated: str, lake: str, caplog: pytest.LogCaptureFixture
) -> None:
    missing = str(psycopg.conninfo.make_conninfo(migrated, dbname=f"mdp_missing_{uuid.uuid4().hex[:8]}"))
    caplog.set_level(logging.WARNING, logger="mdplatform.pg")

    async def scenario() -> dict[str, object]:
        # nothing listens where the collector connects either: the ingestor runs on, down, reporting
        config = IngestConfig(
            (_config("ws://127.0.0.1:9/ws", "http://127.0.0.1:9"),), status_http="off", pg_dsn=missing
        )
        ingestor = Ingestor(config, lake=lake, status_every_s=0.2)
        stop = asyncio.Event()
        task = asyncio.create_task(ingestor.run(stop=stop))
        await _until(lambda: ingestor.pg is not None and ingestor.pg.errors >= 3, 30)
        health = ingestor.health()
        stop.set()
        await task
        return health

    health = asyncio.run(scenario())
    pg = health["pg"]
    assert isinstance(pg, dict)
    assert pg["rows_written"] == 0 and pg["errors"] >= 3
    assert "does not exist" in pg["last_error"]
    assert health["status"] == "down"  # the collector's own state: the database is not a reason
    logged = [r for r in caplog.records if "collector_status not written" in r.getMessage()]
    assert len(logged) == 1  # once, not at every report
