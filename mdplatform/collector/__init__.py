"""WebSocket collectors: per-exchange connections with keep-alive, reconnect, book sync and status."""

from ._collector import ExchangeCollector, create_collector
from ._config import (
    DEFAULT_STATUS_HTTP,
    STATUS_HTTP_ENV,
    ConfigError,
    ExchangeCollectorConfig,
    IngestConfig,
    Shard,
    load_config,
    status_http,
    status_http_address,
)
from ._connection import Connection, RawSink
from ._http import LOOP_TIMEOUT_S, StatusServer
from ._manager import CollectorManager
from ._status import Rates, connection_rows, never_connected

__all__ = [
    "DEFAULT_STATUS_HTTP",
    "LOOP_TIMEOUT_S",
    "STATUS_HTTP_ENV",
    "CollectorManager",
    "ConfigError",
    "Connection",
    "ExchangeCollector",
    "ExchangeCollectorConfig",
    "IngestConfig",
    "Rates",
    "RawSink",
    "Shard",
    "StatusServer",
    "connection_rows",
    "create_collector",
    "load_config",
    "never_connected",
    "status_http",
    "status_http_address",
]
