"""Dagster definitions of the materialization layer: the raw layer (an observable source), hourly trades, coverage
and candles, the book assets, their checks, the resource."""

from dagster import Definitions, in_process_executor

from ._assets import POOL, candles, trades_and_coverage
from ._book_assets import books
from ._checks import CHECKS, candles_valid, coverage_valid, trades_valid
from ._compaction import compaction_job, compaction_schedule
from ._jobs import (
    HOURLY_ASSETS,
    candles_job,
    definitions_for,
    hourly_assets,
    hourly_checks,
    hourly_job,
    make_candles_job,
    make_hourly_job,
)
from ._raw import RAW_KEY, raw
from ._rawscan import list_minutes, minute_bounds
from ._resources import MdpResource
from ._retention import retention_job, retention_schedule
from ._schedules import daily_candles_schedule, with_freshness
from ._settings import Settings
from .partitions import HOURLY, hour_key, hour_ns, hourly_partitions, mdp_start, start_ns

__all__ = [
    "CHECKS",
    "HOURLY",
    "HOURLY_ASSETS",
    "POOL",
    "RAW_KEY",
    "MdpResource",
    "Settings",
    "books",
    "candles",
    "candles_job",
    "candles_valid",
    "compaction_job",
    "compaction_schedule",
    "coverage_valid",
    "daily_candles_schedule",
    "definitions_for",
    "defs",
    "hour_key",
    "hour_ns",
    "hourly_assets",
    "hourly_checks",
    "hourly_job",
    "hourly_partitions",
    "list_minutes",
    "make_candles_job",
    "make_hourly_job",
    "mdp_start",
    "minute_bounds",
    "raw",
    "retention_job",
    "retention_schedule",
    "start_ns",
    "trades_and_coverage",
    "trades_valid",
]

defs = Definitions(
    assets=[raw, *with_freshness(HOURLY_ASSETS)],
    asset_checks=CHECKS,
    jobs=[hourly_job, candles_job, compaction_job, retention_job],
    schedules=[compaction_schedule, daily_candles_schedule, retention_schedule],
    resources={"mdp": MdpResource()},
    # the default executor of every job without its own, the UI's implicit asset job included: a run's few steps
    # in one process (a subprocess per step costs more than the work)
    executor=in_process_executor,
)
