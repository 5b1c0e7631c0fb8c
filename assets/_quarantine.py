"""The ``quarantine`` asset: per hour, every raw row known to be unusable, why, and from which connection and raw
folder (``mdplatform.quality.quarantine_rows``): the trades the hour's normalization rejected and the frames the
collector could not read. Lake: quarantine_rows/date=/hour=/data.parquet; DuckDB: the ``quarantine_rows`` view."""

# no `from __future__ import annotations`: Dagster inspects the real annotation of `context`
from collections import Counter
from typing import Any

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from mdplatform.lake import read_events
from mdplatform.quality import quarantine_rows
from mdplatform.schemas import REJECTS
from mdplatform.transforms import HOUR_NS, from_ns
from mdplatform.warehouse import Warehouse, partition_path, quarantine_path, read_partition, write_partition

from ._assets import BACKFILL_POLICY, POOL, TRADES_KEY, _each_hour, hour_results
from ._resources import MdpResource
from .partitions import HOURLY

__all__ = ["QUARANTINE_KEY", "QUARANTINE_TABLE", "quarantine"]

QUARANTINE_KEY = AssetKey("quarantine")
#: the lake table (and DuckDB view) the asset writes; ``quarantine/trades/`` holds what the trades asset rejected
QUARANTINE_TABLE = "quarantine_rows"


def _table(counts: Counter[str], what: str) -> MetadataValue:
    lines = [f"| {what} | rows |", "|---|---:|", *(f"| {k} | {n} |" for k, n in counts.most_common())]
    return MetadataValue.md("\n".join(lines) if counts else "nothing quarantined")


@asset(
    key=QUARANTINE_KEY,
    partitions_def=HOURLY,
    backfill_policy=BACKFILL_POLICY,
    pool=POOL,
    group_name="market_data",
    kinds={"polars", "parquet", "duckdb"},
    deps=[TRADES_KEY],
    description=(
        "What was rejected in the hour, why, and from where: raw trade frames the normalization could not use "
        "(with the frame) and frames the collector could not read (collector frame_error events), each with its "
        "reason, stage, exchange, channel, connection, seq and raw folder. Counts per reason in the metadata. "
        "Lake: quarantine_rows/date=/hour=/data.parquet; DuckDB: quarantine_rows."
    ),
)
def quarantine(context: AssetExecutionContext, mdp: MdpResource) -> MaterializeResult[None]:
    settings = mdp.settings()
    root = settings.root

    def hour_done(hour: int) -> dict[str, Any]:
        rejects = read_partition(quarantine_path(root, "trades", hour), REJECTS)
        rows = quarantine_rows(hour, rejects, read_events(root, hour, hour + HOUR_NS))
        path = partition_path(root, QUARANTINE_TABLE, hour)
        write_partition(path, rows)
        by_reason = Counter(rows.get_column("reason").to_list())
        start, end = from_ns(hour).isoformat(), from_ns(hour + HOUR_NS).isoformat()
        return {
            "dagster/row_count": rows.height,
            "by_reason": MetadataValue.json(dict(by_reason.most_common())),
            "by_stage": MetadataValue.json(dict(Counter(rows.get_column("stage").to_list()))),
            "reasons": _table(by_reason, "reason"),
            "path": MetadataValue.path(path),
            "query": MetadataValue.text(
                f"SELECT reason, count(*) FROM {QUARANTINE_TABLE} WHERE hour_start >= '{start}' "
                f"AND hour_start < '{end}' GROUP BY ALL"
            ),
        }

    done = _each_hour(context, "quarantine", hour_done)
    Warehouse(settings.warehouse_path, lake=root).refresh()
    return hour_results(context, QUARANTINE_KEY, done)
