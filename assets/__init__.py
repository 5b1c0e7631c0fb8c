"""Dagster definitions of the materialization layer: hourly trades, coverage and candles, their checks, the
resource."""

from dagster import Definitions

from ._assets import candles, trades_and_coverage
from ._checks import candles_valid, coverage_valid, trades_valid
from ._jobs import hourly_job
from ._rawscan import list_minutes, minute_bounds
from ._resources import MdpResource
from ._settings import Settings
from .partitions import HOURLY, hour_key, hour_ns

__all__ = [
    "HOURLY",
    "MdpResource",
    "Settings",
    "candles",
    "candles_valid",
    "coverage_valid",
    "defs",
    "hour_key",
    "hour_ns",
    "hourly_job",
    "list_minutes",
    "minute_bounds",
    "trades_and_coverage",
    "trades_valid",
]

defs = Definitions(
    assets=[trades_and_coverage, candles],
    asset_checks=[trades_valid, coverage_valid, candles_valid],
    jobs=[hourly_job],
    resources={"mdp": MdpResource()},
)
