"""The Parquet lake: raw frames and the collector's events by receive minute, derived tables by exchange-time
hour."""

from ._atomic import write_parquet_atomic, write_table_atomic
from ._fs import filesystem, is_local, join, lake_root
from ._paths import (
    EVENTS_TABLE,
    MINUTE_NS,
    RAW_TABLE,
    MinuteTable,
    hour_parts,
    minute_dir,
    parse_minute_dir,
    part_path,
    raw_exchange_dir,
    table_exchange_dir,
)
from ._reader import list_exchanges, list_raw_minutes, raw_minute_bounds, read_events, read_raw
from ._writer import RawWriter, WriterStats

__all__ = [
    "EVENTS_TABLE",
    "MINUTE_NS",
    "RAW_TABLE",
    "MinuteTable",
    "RawWriter",
    "WriterStats",
    "filesystem",
    "hour_parts",
    "is_local",
    "join",
    "lake_root",
    "list_exchanges",
    "list_raw_minutes",
    "minute_dir",
    "parse_minute_dir",
    "part_path",
    "raw_exchange_dir",
    "raw_minute_bounds",
    "read_events",
    "read_raw",
    "table_exchange_dir",
    "write_parquet_atomic",
    "write_table_atomic",
]
