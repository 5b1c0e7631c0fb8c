"""Collector configuration: which exchange, instruments and channels, and where to connect."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ConfigError", "ExchangeCollectorConfig", "IngestConfig", "load_config"]


class ConfigError(ValueError):
    """A configuration file or entry that cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class ExchangeCollectorConfig:
    exchange: str
    symbols: tuple[str, ...]
    channels: tuple[str, ...]
    #: endpoint overrides (a local replay server in tests and the demo); default: the exchange's own
    ws_url: str | None = None
    rest_url: str | None = None
    max_streams_per_connection: int = 200
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    #: overrides the exchange's no-data watchdog
    idle_timeout_s: float | None = None
    #: overrides how long a connection may be silent before a text ping (exchanges that want them, e.g. OKX)
    ping_interval_s: float | None = None
    #: seconds between the WebSocket pings whose pongs prove the connection alive (``alive`` events)
    liveness_interval_s: float = 5.0
    #: overrides the exchange's connection rate (new connections per second, shared by its connections)
    connects_per_s: float | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ExchangeCollectorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown collector field(s) {unknown}; known: {sorted(known)}")
        for required in ("exchange", "symbols", "channels"):
            if not data.get(required):
                raise ConfigError(f"collector entry needs a non-empty {required!r}: {dict(data)}")
        values = dict(data)
        for key in ("symbols", "channels"):
            if isinstance(values[key], str):
                values[key] = [values[key]]
            values[key] = tuple(str(v) for v in values[key])
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        from ..exchanges import get_exchange

        try:
            exchange = get_exchange(self.exchange)
        except KeyError as exc:
            raise ConfigError(str(exc)) from exc
        bad = sorted(set(self.channels) - exchange.capabilities.channels)
        if bad:
            raise ConfigError(
                f"{self.exchange}: unsupported channel(s) {bad}; supported: {sorted(exchange.capabilities.channels)}"
            )
        if self.max_streams_per_connection < 1:
            raise ConfigError("max_streams_per_connection must be >= 1")
        if not self.liveness_interval_s > 0:
            raise ConfigError("liveness_interval_s must be > 0")
        if self.connects_per_s is not None and not self.connects_per_s > 0:
            raise ConfigError("connects_per_s must be > 0")


@dataclass(frozen=True)
class IngestConfig:
    collectors: tuple[ExchangeCollectorConfig, ...]
    lake: str | None = None
    #: where the ingestor writes its status JSON every few seconds (None: not written)
    status_file: str | None = None
    #: the write-ahead journal's directory on local disk (None: ``$MDP_JOURNAL``, else beside a local lake as
    #: ``<lake>-journal``, else ``.mdp-journal/`` in the working directory)
    journal: str | None = None
    #: disk the journal may fill while the lake cannot be written; collection stops only when it is exhausted
    journal_budget_mb: float = 2048.0


def load_config(path: str | Path) -> IngestConfig:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("collectors"), list) or not data["collectors"]:
        raise ConfigError(f"{path}: expected a mapping with a non-empty 'collectors' list")
    top = {"collectors", "lake", "status_file", "journal", "journal_budget_mb"}
    unknown = sorted(set(data) - top)
    if unknown:
        raise ConfigError(f"{path}: unknown top-level field(s) {unknown}")
    collectors = []
    for i, entry in enumerate(data["collectors"]):
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{path}: collectors[{i}] is not a mapping")
        try:
            collectors.append(ExchangeCollectorConfig.from_mapping(entry))
        except (ConfigError, TypeError) as exc:
            raise ConfigError(f"{path}: collectors[{i}]: {exc}") from exc
    budget = data.get("journal_budget_mb", 2048.0)
    if not isinstance(budget, int | float) or isinstance(budget, bool) or budget <= 0:
        raise ConfigError(f"{path}: journal_budget_mb must be a positive number of megabytes, not {budget!r}")
    return IngestConfig(
        tuple(collectors),
        lake=data.get("lake"),
        status_file=data.get("status_file"),
        journal=data.get("journal"),
        journal_budget_mb=float(budget),
    )
