"""Runs many collectors together and reports on them as one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._collector import ExchangeCollector, create_collector, gate_for
from ._config import ExchangeCollectorConfig
from ._connection import RawSink
from ._gate import ConnectGate

__all__ = ["CollectorManager"]


class CollectorManager:
    def __init__(self, configs: Iterable[ExchangeCollectorConfig], sink: RawSink) -> None:
        # collectors of one exchange (several config entries) share its connection rate
        gates: dict[str, ConnectGate] = {}
        self.collectors: list[ExchangeCollector] = []
        for cfg in configs:
            gate = gates.setdefault(cfg.exchange, gate_for(cfg))
            self.collectors.append(create_collector(cfg, sink, gate))

    async def start(self) -> None:
        for collector in self.collectors:
            await collector.start()

    async def stop(self) -> None:
        for collector in self.collectors:
            await collector.stop()

    def get_status(self) -> dict[str, Any]:
        per = [c.get_status() for c in self.collectors]
        return {
            "messages_received": sum(s["messages_received"] for s in per),
            "messages_processed": sum(s["messages_processed"] for s in per),
            "errors": sum(s["errors"] for s in per),
            "frame_errors": sum(s["frame_errors"] for s in per),
            "reconnects": sum(s["reconnects"] for s in per),
            "collectors": per,
        }

    def get_health_status(self) -> dict[str, Any]:
        per = [c.get_health_status() for c in self.collectors]
        return {
            "status": "healthy" if all(h["status"] == "healthy" for h in per) else "degraded",
            "collectors": per,
        }
