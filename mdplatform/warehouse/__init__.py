"""Where the derived tables live: hourly Parquet partitions in the lake and the DuckDB warehouse."""

from ._duckdb import Warehouse, WarehouseSchemaError, Window, default_sql_dir, default_warehouse_path
from ._lake import (
    partition_exists,
    partition_path,
    quarantine_path,
    read_partition,
    read_partitions,
    remove_file,
    write_partition,
)

__all__ = [
    "Warehouse",
    "WarehouseSchemaError",
    "Window",
    "default_sql_dir",
    "default_warehouse_path",
    "partition_exists",
    "partition_path",
    "quarantine_path",
    "read_partition",
    "read_partitions",
    "remove_file",
    "write_partition",
]
