"""The Parquet lake: raw frames and the collector's events by receive minute, derived tables by exchange-time
hour."""

from ._atomic import open_atomic, write_bytes_atomic, write_parquet_atomic, write_table_atomic
from ._compact import (
    COMPACTED_TABLES,
    DEFAULT_DAY_AGE_NS,
    DEFAULT_MIN_AGE_NS,
    CompactionBusy,
    CompactStats,
    SpanStats,
    compact,
)
from ._fs import filesystem, is_local, join, lake_root
from ._groups import GROUPS, channel_groups, groups_of
from ._hourwriter import HourWriter, HourWriterStats
from ._journal import JournalError
from ._landed import LANDED_DIR, Landed, Manifest, list_manifests, read_manifest, write_manifest
from ._layout import FileMeta, LakeFile, list_files, resolve
from ._paths import (
    BACKFILL_EVENTS_TABLE,
    BACKFILL_TABLE,
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
from ._reader import (
    list_exchanges,
    list_raw_minutes,
    raw_minute_bounds,
    read_backfill,
    read_backfill_events,
    read_events,
    read_raw,
    unreadable_files,
)
from ._retention import DayFolder, RetentionStats, expire_days, hours_reading
from ._stale import remove_stale_temp_files
from ._stats import LakeStats, lake_stats
from ._writer import RawWriter, WriterStats

__all__ = [
    "BACKFILL_EVENTS_TABLE",
    "BACKFILL_TABLE",
    "COMPACTED_TABLES",
    "DEFAULT_DAY_AGE_NS",
    "DEFAULT_MIN_AGE_NS",
    "EVENTS_TABLE",
    "GROUPS",
    "LANDED_DIR",
    "MINUTE_NS",
    "RAW_TABLE",
    "CompactStats",
    "CompactionBusy",
    "DayFolder",
    "FileMeta",
    "HourWriter",
    "HourWriterStats",
    "JournalError",
    "LakeFile",
    "LakeStats",
    "Landed",
    "Manifest",
    "MinuteTable",
    "RawWriter",
    "RetentionStats",
    "SpanStats",
    "WriterStats",
    "channel_groups",
    "compact",
    "expire_days",
    "filesystem",
    "groups_of",
    "hour_parts",
    "hours_reading",
    "is_local",
    "join",
    "lake_root",
    "lake_stats",
    "list_exchanges",
    "list_files",
    "list_manifests",
    "list_raw_minutes",
    "minute_dir",
    "open_atomic",
    "parse_minute_dir",
    "part_path",
    "raw_exchange_dir",
    "raw_minute_bounds",
    "read_backfill",
    "read_backfill_events",
    "read_events",
    "read_manifest",
    "read_raw",
    "remove_stale_temp_files",
    "resolve",
    "table_exchange_dir",
    "unreadable_files",
    "write_bytes_atomic",
    "write_manifest",
    "write_parquet_atomic",
    "write_table_atomic",
]
