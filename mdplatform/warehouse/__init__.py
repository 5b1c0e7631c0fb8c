"""Where the derived tables live: hourly Parquet partitions in the lake, served to DuckDB readers by a catalog of
views over them (``Warehouse``)."""

from ._duckdb import Warehouse, default_sql_dir, default_warehouse_path, register_lake_filesystem
from ._lake import (
    partition_exists,
    partition_path,
    quarantine_path,
    read_partition,
    read_partition_file,
    read_partitions,
    remove_file,
    write_partition,
)
from ._served import SERVED, Served, hour_window
from ._window import Window

__all__ = [
    "SERVED",
    "Served",
    "Warehouse",
    "Window",
    "default_sql_dir",
    "default_warehouse_path",
    "hour_window",
    "partition_exists",
    "partition_path",
    "quarantine_path",
    "read_partition",
    "read_partition_file",
    "read_partitions",
    "register_lake_filesystem",
    "remove_file",
    "write_partition",
]
