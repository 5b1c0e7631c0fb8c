"""The curated part of the lake: hourly Parquet partitions of the derived tables.

``{root}/{table}/date=YYYY-MM-DD/hour=HH/data.parquet`` for ``trades`` and ``candles`` (hour of exchange time;
for candles the hour whose end the candles' close_time falls in), and
``{root}/quarantine/{table}/date=/hour=/data.parquet`` for raw rows that could not be parsed (hour of receive
time). A materialized hour always has its data file, empty when the hour had no rows; a quarantine file only
exists when something was quarantined.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from mdplatform.lake import filesystem, hour_parts, is_local, join, lake_root, write_parquet_atomic
from mdplatform.transforms import HOUR_NS, floor_ns, from_ns

from ._kept import keep, read_kept

__all__ = [
    "partition_exists",
    "partition_path",
    "quarantine_path",
    "read_partition",
    "read_partition_file",
    "read_partitions",
    "remove_file",
    "write_partition",
]


def partition_path(root: str | None, table: str, hour_ns: int) -> str:
    if hour_ns % HOUR_NS:
        raise ValueError(f"{table} partitions start on the hour, not at {from_ns(hour_ns).isoformat()}")
    return join(lake_root(root), table, *hour_parts(hour_ns), "data.parquet")


def partition_exists(root: str | None, table: str, hour_ns: int) -> bool:
    """Whether the hour's partition of ``table`` was materialized (its file exists, empty or not)."""
    fs, target = filesystem(partition_path(root, table, hour_ns))
    return bool(fs.exists(target))


def quarantine_path(root: str | None, table: str, hour_ns: int) -> str:
    return partition_path(join(lake_root(root), "quarantine"), table, hour_ns)


def write_partition(path: str, df: pl.DataFrame) -> None:
    """Replace the file at ``path`` atomically (readers see the old or the new file, never a torn one). A local
    file's frame is kept for this process's next reads of it (``_kept``)."""
    write_parquet_atomic(df, path)
    fs, target = filesystem(path)
    if is_local(fs):
        keep(target, df)


def remove_file(path: str) -> bool:
    fs, target = filesystem(path)
    if not fs.exists(target):
        return False
    fs.rm(target)
    return True


def read_partition(
    path: str, schema: dict[str, pl.DataType], columns: Sequence[str] | None = None
) -> pl.DataFrame | None:
    """The partition file at ``path`` cast to ``schema`` (projected to ``columns``); None if it is missing."""
    cols = list(columns) if columns is not None else list(schema)
    fs, target = filesystem(path)
    if is_local(fs):
        df = read_kept(target, columns)
        if df is None:
            return None
    elif not fs.exists(target):
        return None
    else:
        with fs.open(target, "rb") as fh:
            df = pl.read_parquet(fh, columns=cols)
    return df.select([pl.col(c).cast(schema[c]) for c in cols])


def read_partition_file(path: str) -> pl.DataFrame | None:
    """The partition file at ``path`` as written, every column with its own type (what a check validates: the
    schema is under test); None if it is missing. A local file this process wrote or read, unchanged since, is
    not read again (``_kept``)."""
    fs, target = filesystem(path)
    if is_local(fs):
        return read_kept(target)
    if not fs.exists(target):
        return None
    with fs.open(target, "rb") as fh:
        return pl.read_parquet(fh)


def read_partitions(
    root: str | None,
    table: str,
    start_ns: int,
    end_ns: int,
    schema: dict[str, pl.DataType],
    columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """The hourly partitions of ``table`` for hours in [start, end), concatenated; missing hours skipped."""
    cols = list(columns) if columns is not None else list(schema)
    parts: list[pl.DataFrame] = []
    hour = floor_ns(start_ns, HOUR_NS)
    while hour < end_ns:
        got = read_partition(partition_path(root, table, hour), schema, cols)
        if got is not None and got.height:
            parts.append(got)
        hour += HOUR_NS
    return pl.concat(parts) if parts else pl.DataFrame(schema={c: schema[c] for c in cols})
