"""The job the sensor and the CLI launch: one hour partition of trades and coverage, then candles (checks
included)."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job, in_process_executor

from ._assets import candles, trades_and_coverage
from .partitions import HOURLY

__all__ = ["SERIAL_TAG", "hourly_job"]

#: runs with this tag go one at a time (dagster.yaml, tag_concurrency_limits): candles(H) reads
#: the 1m candles of earlier hours from the lake, so hours must not overtake each other, and DuckDB has a single writer
SERIAL_TAG = "mdp/serial"

hourly_job = define_asset_job(
    "mdp_hourly",
    selection=AssetSelection.assets(trades_and_coverage, candles),
    partitions_def=HOURLY,
    # one process for the four small steps: a subprocess per step costs more than the work
    executor_def=in_process_executor,
    tags={SERIAL_TAG: "hourly"},
    description="trades and coverage, then candles, for one exchange-time hour",
)
