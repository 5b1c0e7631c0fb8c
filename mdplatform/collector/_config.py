"""Collector configuration: which exchange, instruments and channels, where to connect, and which share of them
this ingestor collects when several hosts split one config (``Shard``)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_STATUS_HTTP",
    "STATUS_HTTP_ENV",
    "ConfigError",
    "ExchangeCollectorConfig",
    "IngestConfig",
    "Shard",
    "load_config",
    "status_http",
    "status_http_address",
]

#: what a writer name may hold: it goes into lake file names and S3 keys
_WRITER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class ConfigError(ValueError):
    """A configuration file or entry that cannot be used; the message says which field and why."""


#: where the ingestor serves ``/health`` and ``/metrics`` unless configured (``status_http``, ``$MDP_STATUS_HTTP``):
#: on by default, on the loopback interface only
DEFAULT_STATUS_HTTP = "127.0.0.1:9180"
STATUS_HTTP_ENV = "MDP_STATUS_HTTP"


def status_http(config: IngestConfig) -> tuple[str, int] | None:
    """Where ``config``'s ingestor serves ``/health`` and ``/metrics``: its ``status_http``, else
    ``$MDP_STATUS_HTTP``, else ``DEFAULT_STATUS_HTTP``; None when ``off``."""
    configured = config.status_http or os.environ.get(STATUS_HTTP_ENV) or DEFAULT_STATUS_HTTP
    try:
        return status_http_address(configured)
    except ConfigError as exc:
        source = "status_http" if config.status_http else f"${STATUS_HTTP_ENV}"
        raise ConfigError(f"{source}: {exc}") from None


def status_http_address(value: str) -> tuple[str, int] | None:
    """``HOST:PORT``, ``PORT`` (on 127.0.0.1; 0: any free port) or ``off`` (None) as (host, port)."""
    text = value.strip()
    if text.lower() in ("off", "false", "no"):
        return None
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or int(port) > 65_535:
        raise ConfigError(f"must be HOST:PORT, PORT or off, not {value!r}")
    return host, int(port)


@dataclass(frozen=True)
class ExchangeCollectorConfig:
    #: the exchange's id in the registry (``mdp exchanges`` lists them)
    exchange: str
    #: the exchange's own instrument ids (a list, or one as a string)
    symbols: tuple[str, ...]
    #: the exchange's own channel names; each symbol gets every channel
    channels: tuple[str, ...]
    #: WebSocket endpoint override (a local replay server in tests and the demo); default: the exchange's own
    ws_url: str | None = None
    #: REST endpoint override (book snapshots); default: the exchange's own
    rest_url: str | None = None
    #: streams (symbol x channel) per WebSocket connection, within the exchange's own limit; more open more
    #: connections
    max_streams_per_connection: int = 200
    #: first wait before a reconnect; doubled after each failure (with jitter) up to ``reconnect_max_s``
    reconnect_initial_s: float = 0.5
    #: longest wait between reconnect attempts
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
class Shard:
    """This ingestor's share of a config that ``count`` ingestors (hosts) run together: the (exchange, symbol) pairs
    whose ``replicas`` highest rendezvous scores include ``index``, each with every channel the config lists.

    Rendezvous (highest random weight) hashing on the pair's names: every host computes the same owners from the
    same config alone, every pair has exactly ``replicas`` owners, adding a pair moves no other and adding a shard
    moves only the pairs the new shard wins (about 1/count of them). A symbol's channels stay on one connection, as
    an unsharded collector has them: the exchange times its trades and depth frames carry are the liveness evidence
    of its streams without times (Binance spot ``bookTicker``), so splitting them would leave those uncovered.
    """

    #: this host's shard, 0 .. count - 1
    index: int
    #: how many hosts share the config
    count: int
    #: owners per (exchange, symbol): 2 collects every pair on two hosts (the transforms keep each trade once)
    replicas: int = 1

    def __post_init__(self) -> None:
        for name in ("index", "count", "replicas"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"shard {name} must be a whole number, not {value!r}")
        if self.count < 1:
            raise ConfigError(f"shard count must be >= 1, not {self.count}")
        if not 0 <= self.index < self.count:
            raise ConfigError(f"shard index must be in 0..{self.count - 1} for {self.count} shards, not {self.index}")
        if not 1 <= self.replicas <= self.count:
            raise ConfigError(f"shard replicas must be in 1..{self.count} for {self.count} shards, not {self.replicas}")

    @classmethod
    def parse(cls, value: object, *, replicas: int = 1) -> Shard:
        """``"I/N"`` (``--shard``, ``$MDP_SHARD``) with ``replicas``, or the config's mapping
        ``{index: I, count: N, replicas: R}``."""
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"index", "count", "replicas"})
            if unknown or "index" not in value or "count" not in value:
                raise ConfigError(f"shard needs 'index' and 'count' (and optionally 'replicas'), not {dict(value)}")
            return cls(value["index"], value["count"], value.get("replicas", replicas))
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value) if isinstance(value, str) else None
        if match is None:
            raise ConfigError(f"shard must be INDEX/COUNT (e.g. 0/3, indexes from 0), not {value!r}")
        return cls(int(match[1]), int(match[2]), replicas)

    def owners(self, exchange: str, symbol: str) -> tuple[int, ...]:
        """The shards that collect ``symbol`` of ``exchange``, highest score first."""
        key = f"{exchange}\x1f{symbol}\x1f".encode()
        scores = sorted(
            (
                (int.from_bytes(hashlib.blake2b(key + str(i).encode(), digest_size=8).digest(), "big"), i)
                for i in range(self.count)
            ),
            reverse=True,
        )
        return tuple(i for _, i in scores[: self.replicas])

    def owns(self, exchange: str, symbol: str) -> bool:
        return self.index in self.owners(exchange, symbol)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}" + (f" (replicas {self.replicas})" if self.replicas > 1 else "")


@dataclass(frozen=True)
class IngestConfig:
    #: what to collect: one entry per exchange (fields below)
    collectors: tuple[ExchangeCollectorConfig, ...]
    #: lake root, a local path or ``s3://bucket/prefix`` (None: ``--lake``, else ``$MDP_LAKE``, else ``./lake``)
    lake: str | None = None
    #: where the ingestor writes its status JSON every few seconds (None: not written)
    status_file: str | None = None
    #: the write-ahead journal's directory on local disk (None: ``$MDP_JOURNAL``, else beside a local lake as
    #: ``<lake>-journal``, else ``.mdp-journal/`` in the working directory)
    journal: str | None = None
    #: disk the journal may fill while the lake cannot be written; collection stops only when it is exhausted
    journal_budget_mb: float = 2048.0
    #: this ingestor's share when several run the same config (None: it collects everything)
    shard: Shard | None = None
    #: names this ingestor in its lake files and landing manifests (None: the host name)
    writer: str | None = None
    #: where the ingestor serves ``/health`` and ``/metrics``: ``HOST:PORT``, ``PORT`` (on 127.0.0.1) or ``off``
    #: (None: ``$MDP_STATUS_HTTP``, else ``127.0.0.1:9180``)
    status_http: str | None = None
    #: the PostgreSQL database the ingestor writes ``collector_status`` rows to (None: ``$MDP_PG_DSN``, else none)
    pg_dsn: str | None = field(default=None, repr=False)  # a DSN may hold a password

    def __post_init__(self) -> None:
        if self.status_http is not None:
            status_http(self)
        if self.writer is not None and not _WRITER_NAME.fullmatch(self.writer):
            raise ConfigError(
                f"writer must be 1-63 letters, digits, '.', '_' or '-' (starting with a letter or digit), "
                f"not {self.writer!r}"
            )

    def assigned(self) -> tuple[ExchangeCollectorConfig, ...]:
        """The collector entries this ingestor runs: every entry, or with a shard each entry narrowed to the symbols
        the shard owns (entries left without a symbol dropped). ConfigError when the shard owns nothing."""
        shard = self.shard
        if shard is None:
            return self.collectors
        mine = []
        for cfg in self.collectors:
            symbols = tuple(s for s in cfg.symbols if shard.owns(cfg.exchange, s))
            if symbols:
                mine.append(replace(cfg, symbols=symbols))
        if not mine:
            pairs = sum(len(c.symbols) for c in self.collectors)
            raise ConfigError(
                f"shard {shard} collects nothing: the config's {pairs} (exchange, symbol) pair(s) all hash to other "
                "shards; use fewer shards or more replicas"
            )
        return tuple(mine)


def load_config(path: str | Path, *, shard: str | None = None) -> IngestConfig:
    """The config at ``path``; ``shard`` ("I/N", ``--shard``) replaces the config's index and count, keeping its
    replicas. A shard that would collect nothing is an error here, before anything starts."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("collectors"), list) or not data["collectors"]:
        raise ConfigError(f"{path}: expected a mapping with a non-empty 'collectors' list")
    top = {f.name for f in fields(IngestConfig)}
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
    try:
        configured = None if data.get("shard") is None else Shard.parse(data["shard"])
        if shard is not None:
            configured = Shard.parse(shard, replicas=configured.replicas if configured else 1)
        writer = data.get("writer")
        http = data.get("status_http")
        config = IngestConfig(
            tuple(collectors),
            lake=data.get("lake"),
            status_file=data.get("status_file"),
            journal=data.get("journal"),
            journal_budget_mb=float(budget),
            shard=configured,
            writer=None if writer is None else str(writer),
            # YAML reads a bare ``off`` as false
            status_http=None if http is None else "off" if http is False else str(http),
            pg_dsn=data.get("pg_dsn"),
        )
        config.assigned()
        status_http(config)  # $MDP_STATUS_HTTP too: a typo is a config error before anything starts
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return config
