"""Relations over the lake's minute-partitioned trees (raw, events, backfill, backfill_events) for SQL readers.

For each tree ``t`` that has files, two relations, every timestamp as TIMESTAMPTZ (the warehouse tables' type, so
plain literals compare the same way everywhere) and the partition columns ``date`` (DATE), ``hour`` and
``minute`` (INTEGER) typed so that ``WHERE date = '...' AND hour = ...`` prunes files:

- the view ``t``: the whole tree. DuckDB lists every file of the tree when a query binds it (a glob cannot be
  narrowed by a filter), which costs ~60 us a file: fine for a small lake, slow for months of minutes.
- the table macro ``t_between(lo, hi)``: the partitions whose minute is in [lo, hi) (for raw and events, also
  ``recv_ts`` in [lo, hi)). The file list is computed from the two literals, one glob per hour and day, so only
  those hours' and days' directories are listed: counting an hour through it costs what reading that hour's files
  does.

The trees partitioned by receive time (raw, events) hold files at three depths (``mdplatform/lake/_layout.py``):
minute files, and the hour and day files of ``mdp lake compact`` and imports. Each depth is read by its own
``read_parquet`` (DuckDB's Hive columns must be the same for every file of one), and an hour or day file's
``hour``/``minute`` come from ``recv_ts``. A compacted file is committed before the minute files it absorbed are
deleted: after a crash between the two, until ``mdp lake compact`` runs again, these views read both (the
library's readers, which know what each file absorbed, do not).

A glob matching nothing is an error in DuckDB, and ``allow_empty`` with no file at all leaves no columns: each
list therefore starts with an empty file of the tree's schema under a Hive path of its own, kept beside the
warehouse catalog (``anchor_dir``), so an hour the collector did not record reads as zero rows.
"""

from __future__ import annotations

import uuid
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

#: per depth: the glob of its files below the tree, its Hive keys, and the anchor's folders
_DEPTHS = {
    "minute": ("*/*/*/*/*.parquet", ("date", "hour", "minute"), "date=1970-01-01/hour=00/minute=00"),
    "hour": ("*/*/*/*.parquet", ("date", "hour"), "date=1970-01-01/hour=00"),
    "day": ("*/*/*.parquet", ("date",), "date=1970-01-01"),
}
_HIVE_TYPE = {"date": "DATE", "hour": "INTEGER", "minute": "INTEGER"}
# the partition's minute as a UTC instant, from the Hive columns only, so DuckDB evaluates it per file
_PARTITION_MINUTE = "(date + make_time(hour, minute, 0))::TIMESTAMP"
_UTC_RECV = "timezone('UTC', recv_ts::TIMESTAMPTZ)"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _hive_types(keys: tuple[str, ...]) -> str:
    return "{" + ", ".join(f"'{k}': {_HIVE_TYPE[k]}" for k in keys) + "}"


def _select_list(schema: pa.Schema, keys: tuple[str, ...]) -> str:
    cols = [
        f"{f.name}::TIMESTAMPTZ AS {f.name}" if pa.types.is_timestamp(f.type) else f.name
        for f in schema
        if f.name != "exchange"  # also the first Hive column: one column, from the file
    ]
    # an hour or day file (receive-time trees only) spans minutes: its rows' own come from their receive time
    derived = {"hour": f"hour({_UTC_RECV})::INTEGER AS hour", "minute": f"minute({_UTC_RECV})::INTEGER AS minute"}
    tail = [k if k in keys else derived[k] for k in ("date", "hour", "minute")]
    return ", ".join(["exchange", *cols, *tail])


def _anchor(anchor_dir: Path, tree: str, schema: pa.Schema, depth: str) -> str:
    """An empty file of ``schema`` in a Hive path of ``depth`` no real partition has (1970-01-01 00:00)."""
    path = anchor_dir / tree / "exchange=_" / _DEPTHS[depth][2] / "empty.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp")  # several threads or processes may race here
        pq.write_table(schema.empty_table(), tmp)
        tmp.replace(path)
    return str(path)


def _has_files(base: Path, depths: list[str]) -> bool:
    return any(next(base.glob(_DEPTHS[d][0]), None) is not None for d in depths)


def lake_view_sql(lake: Path, anchor_dir: Path) -> list[str]:
    """CREATE OR REPLACE statements for the views and macros of the trees of the local ``lake`` that have files."""
    out: list[str] = []
    for tree, (schema, by_recv_ts) in MINUTE_TREES.items():
        base = lake.resolve() / tree
        # only the receive-time trees are compacted (an hour file of a backfill tree could not say its minutes)
        depths = list(_DEPTHS) if by_recv_ts else ["minute"]
        if not _has_files(base, depths):
            continue
        whole, between = [], []
        for depth in depths:
            pattern, keys, _ = _DEPTHS[depth]
            select = _select_list(schema, keys)
            anchor = _literal(_anchor(anchor_dir, tree, schema, depth))
            options = f"allow_empty = true, hive_partitioning = true, hive_types = {_hive_types(keys)}"
            whole.append(f"SELECT {select} FROM read_parquet([{anchor}, {_literal(str(base / pattern))}], {options})")
            # strftime keeps '%' directives only, so the lake path goes in as a separate literal
            if depth == "day":
                step, unit, folder = "INTERVAL 1 DAY", "day", "'/*/date=%Y-%m-%d/*.parquet'"
            else:
                step, unit = "INTERVAL 1 HOUR", "hour"
                folder = (
                    "'/*/date=%Y-%m-%d/hour=%H/*/*.parquet'"
                    if depth == "minute"
                    else "'/*/date=%Y-%m-%d/hour=%H/*.parquet'"
                )
            files = (
                f"list_prepend({anchor}, [{_literal(str(base))} || strftime(h, {folder}) FOR h IN generate_series("
                f"date_trunc('{unit}', timezone('UTC', lo::TIMESTAMPTZ)), "
                f"timezone('UTC', hi::TIMESTAMPTZ) - INTERVAL 1 MICROSECOND, {step})])"
            )
            bounds = []
            if depth == "minute":
                bounds += [
                    f"{_PARTITION_MINUTE} >= date_trunc('minute', timezone('UTC', lo::TIMESTAMPTZ))",
                    f"{_PARTITION_MINUTE} < timezone('UTC', hi::TIMESTAMPTZ)",
                ]
            if by_recv_ts:
                bounds += ["recv_ts::TIMESTAMPTZ >= lo::TIMESTAMPTZ", "recv_ts::TIMESTAMPTZ < hi::TIMESTAMPTZ"]
            between.append(f"SELECT {select} FROM read_parquet({files}, {options}) WHERE {' AND '.join(bounds)}")
        out.append(f"CREATE OR REPLACE VIEW {tree} AS " + "\nUNION ALL ".join(whole))
        out.append(f"CREATE OR REPLACE MACRO {tree}_between(lo, hi) AS TABLE " + "\nUNION ALL ".join(between))
    return out
