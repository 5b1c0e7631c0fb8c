"""A connection task that ends unasked (a bug in its loop: every expected failure reconnects inside it) is started
again by its collector, counted and reported: a connection never stops silently."""

from __future__ import annotations

import asyncio

import pytest

from mdplatform.collector import ExchangeCollectorConfig
from mdplatform.collector._collector import ExchangeCollector
from mdplatform.collector._connection import Connection


def test_a_connection_task_that_dies_is_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[str] = []

    async def run(self: Connection) -> None:
        runs.append("run")
        if len(runs) == 1:
            raise RuntimeError("a bug in the reconnect loop")
        await self._stopping.wait()

    monkeypatch.setattr(Connection, "run", run)
    config = ExchangeCollectorConfig(exchange="binance", symbols=("BTCUSDT",), channels=("trade",))

    async def scenario() -> ExchangeCollector:
        collector = ExchangeCollector(config, sink=None)  # type: ignore[arg-type]  # nothing is received
        await collector.start()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(runs) == 2:
                break
        await collector.stop()
        return collector

    collector = asyncio.run(scenario())
    assert runs == ["run", "run"]
    assert collector.restarts == 1
    status = collector.get_status()
    assert status["restarts"] == 1 and status["errors"] == 1
    assert status["connections"][0]["last_error"] == (
        "connection task ended (RuntimeError: a bug in the reconnect loop); started again"
    )
