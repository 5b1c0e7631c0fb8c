"""WebSocket collectors: per-exchange connections with keep-alive, reconnect, book sync and status."""

from ._collector import ExchangeCollector, create_collector
from ._config import ConfigError, ExchangeCollectorConfig, IngestConfig, Shard, load_config
from ._connection import Connection, RawSink
from ._manager import CollectorManager

__all__ = [
    "CollectorManager",
    "ConfigError",
    "Connection",
    "ExchangeCollector",
    "ExchangeCollectorConfig",
    "IngestConfig",
    "RawSink",
    "Shard",
    "create_collector",
    "load_config",
]
