"""The Parquet lake: raw frames by receive minute, derived tables by exchange-time hour."""

from ._atomic import write_parquet_atomic, write_table_atomic
from ._fs import filesystem, is_local, join, lake_root
from ._paths import MINUTE_NS, hour_parts, minute_dir, parse_minute_dir, raw_exchange_dir
from ._reader import list_exchanges, list_raw_minutes, raw_minute_bounds, read_raw
from ._writer import RawWriter, WriterStats

__all__ = [
    "MINUTE_NS",
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
    "raw_exchange_dir",
    "raw_minute_bounds",
    "read_raw",
    "write_parquet_atomic",
    "write_table_atomic",
]
