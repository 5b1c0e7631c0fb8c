"""Relations over the lake's minute-partitioned trees (raw, events, backfill, backfill_events) for SQL readers.

For each tree ``t`` that has files, two relations, every timestamp as TIMESTAMPTZ (the warehouse tables' type, so
plain literals compare the same way everywhere) and the Hive partition columns ``date`` (DATE), ``hour`` and
``minute`` (INTEGER) typed so that ``WHERE date = '...' AND hour = ...`` prunes files:

- the view ``t``: the whole tree. DuckDB lists every file of the tree when a query binds it (a glob cannot be
  narrowed by a filter), which costs ~60 us a file: fine for a small lake, slow for months of minutes.
- the table macro ``t_between(lo, hi)``: the partitions whose minute is in [lo, hi) (for raw and events, also
  ``recv_ts`` in [lo, hi)). The file list is computed from the two literals, one glob per hour, so only those
  hours' directories are listed: counting an hour through it costs what reading that hour's files does.

A glob matching nothing is an error in DuckDB, and ``allow_empty`` with no file at all leaves no columns: each
list therefore starts with an empty file of the tree's schema under a Hive path of its own, kept beside the
warehouse snapshots (``anchor_dir``), so an hour the collector did not record reads as zero rows.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mdplatform.lake import BACKFILL_EVENTS_TABLE, BACKFILL_TABLE, EVENTS_TABLE, RAW_TABLE
from mdplatform.schemas import EVENTS_ARROW, RAW_ARROW

__all__ = ["MINUTE_TREES", "lake_view_sql"]

#: tree -> (schema, whether its minute partitions are minutes of ``recv_ts``): backfill trees are partitioned by
#: exchange time, which is no column of theirs, so only their partition minute bounds them
MINUTE_TREES: dict[str, tuple[pa.Schema, bool]] = {
    RAW_TABLE: (RAW_ARROW, True),
    EVENTS_TABLE: (EVENTS_ARROW, True),
    BACKFILL_TABLE: (RAW_ARROW, False),
    BACKFILL_EVENTS_TABLE: (EVENTS_ARROW, False),
}

_HIVE_TYPES = "{'date': DATE, 'hour': INTEGER, 'minute': INTEGER}"
# the partition's minute as a UTC instant, from the Hive columns only, so DuckDB evaluates it per file
_PARTITION_MINUTE = "(date + make_time(hour, minute, 0))::TIMESTAMP"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _select_list(schema: pa.Schema) -> str:
    cols = [
        f"{f.name}::TIMESTAMPTZ AS {f.name}" if pa.types.is_timestamp(f.type) else f.name
        for f in schema
        if f.name != "exchange"  # also the first Hive column: one column, from the file
    ]
    return ", ".join(["exchange", *cols, "date", "hour", "minute"])


def _anchor(anchor_dir: Path, tree: str, schema: pa.Schema) -> str:
    """An empty file of ``schema`` in a Hive path no real partition has (1970-01-01 00:00)."""
    path = anchor_dir / tree / "exchange=_" / "date=1970-01-01" / "hour=00" / "minute=00" / "empty.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        pq.write_table(schema.empty_table(), tmp)
        tmp.replace(path)
    return str(path)


def lake_view_sql(lake: Path, anchor_dir: Path) -> list[str]:
    """CREATE OR REPLACE statements for the views and macros of the trees of the local ``lake`` that have files."""
    out: list[str] = []
    for tree, (schema, by_recv_ts) in MINUTE_TREES.items():
        base = lake.resolve() / tree
        if not any(base.glob("exchange=*/date=*/hour=*/minute=*/*.parquet")):
            continue
        select = _select_list(schema)
        everything = _literal(str(base / "*" / "*" / "*" / "*" / "*.parquet"))
        out.append(
            f"CREATE OR REPLACE VIEW {tree} AS SELECT {select} FROM read_parquet({everything}, "
            f"hive_partitioning = true, hive_types = {_HIVE_TYPES})"
        )
        # strftime keeps '%' directives only, so the lake path goes in as a separate literal
        hour_glob = "'/*/date=%Y-%m-%d/hour=%H/*/*.parquet'"
        exact = (
            " AND recv_ts::TIMESTAMPTZ >= lo::TIMESTAMPTZ AND recv_ts::TIMESTAMPTZ < hi::TIMESTAMPTZ"
            if by_recv_ts
            else ""
        )
        out.append(
            f"CREATE OR REPLACE MACRO {tree}_between(lo, hi) AS TABLE "
            f"SELECT {select} FROM read_parquet(list_prepend({_literal(_anchor(anchor_dir, tree, schema))}, "
            f"[{_literal(str(base))} || strftime(h, {hour_glob}) FOR h IN generate_series("
            "date_trunc('hour', timezone('UTC', lo::TIMESTAMPTZ)), "
            "timezone('UTC', hi::TIMESTAMPTZ) - INTERVAL 1 MICROSECOND, INTERVAL 1 HOUR)]), "
            f"allow_empty = true, hive_partitioning = true, hive_types = {_HIVE_TYPES}) "
            f"WHERE {_PARTITION_MINUTE} >= date_trunc('minute', timezone('UTC', lo::TIMESTAMPTZ)) "
            f"AND {_PARTITION_MINUTE} < timezone('UTC', hi::TIMESTAMPTZ){exact}"
        )
    return out
