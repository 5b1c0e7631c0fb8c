"""The ``quarantine`` asset: per hour, every raw row known to be unusable, why, and from which connection and raw
folder (``mdplatform.quality.quarantine_rows``): the trades the hour's normalization rejected and the frames the
collector could not read. Lake: quarantine_rows/date=/hour=/data.parquet; DuckDB: the ``quarantine_rows`` view.

It is written by the step of trades and coverage (``compute_trades_hour``), which holds the hour's rejects and
events already: a step of its own read them again (the hour's sixty event files) and cost a Dagster step per run."""

from collections import Counter
from typing import Any

import polars as pl
from dagster import AssetKey, AssetSpec, MetadataValue

from mdplatform.transforms import HOUR_NS, from_ns

from ._hourly import QUARANTINE_TABLE
from ._raw import RAW_KEY

__all__ = ["QUARANTINE_KEY", "QUARANTINE_SPEC", "QUARANTINE_TABLE", "quarantine_metadata"]

QUARANTINE_KEY = AssetKey("quarantine")
QUARANTINE_SPEC = AssetSpec(
    QUARANTINE_KEY,
    group_name="market_data",
    kinds={"polars", "parquet", "duckdb"},
    deps=[RAW_KEY],
    description=(
        "What was rejected in the hour, why, and from where: raw trade frames the normalization could not use "
        "(with the frame) and frames the collector could not read (collector frame_error events), each with its "
        "reason, stage, exchange, channel, connection, seq and raw folder. Counts per reason in the metadata. "
        "Written with the hour's trades and coverage. Lake: quarantine_rows/date=/hour=/data.parquet; DuckDB: "
        "quarantine_rows."
    ),
)


def _table(counts: Counter[str], what: str) -> MetadataValue:
    lines = [f"| {what} | rows |", "|---|---:|", *(f"| {k} | {n} |" for k, n in counts.most_common())]
    return MetadataValue.md("\n".join(lines) if counts else "nothing quarantined")


def quarantine_metadata(hour: int, rows: pl.DataFrame, path: str) -> dict[str, Any]:
    """The metadata of an hour's quarantine rows (written to ``path``): counts per reason and stage, the file, and
    the query that lists them."""
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
