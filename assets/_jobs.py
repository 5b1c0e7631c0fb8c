"""The job the sensor and the CLI launch: one hour partition of trades then candles (checks included)."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job, in_process_executor

from ._assets import candles, trades
from .partitions import HOURLY

__all__ = ["SERIAL_TAG", "hourly_job"]

#: runs with this tag go one at a time (dagster.yaml, tag_concurrency_limits): candles(H) reads
#: trades(H - 1 ...) from the lake, so hours must not overtake each other, and DuckDB has a single writer
SERIAL_TAG = "mdp/serial"

hourly_job = define_asset_job(
    "mdp_hourly",
    selection=AssetSelection.assets(trades, candles),
    partitions_def=HOURLY,
    # one process for the four small steps: a subprocess per step costs more than the work
    executor_def=in_process_executor,
    tags={SERIAL_TAG: "hourly"},
    description="trades then candles for one exchange-time hour",
)
