"""Dagster sensors: the landed-data sensor (hourly partitions up to date, late data re-aggregated), the gap
sensor (trade gaps healed from REST history) and the failed-hours sensor (failed hours run again, with backoff)."""

from dagster import Definitions

from assets._heal import backfill_job

from ._plan import HourRequest, LandedCursor, plan_hours, plan_landed
from ._retry import FinishedRun, Retry, failed_hours_sensor, plan_retries
from ._sensor import gap_sensor, landed_data_sensor

__all__ = [
    "FinishedRun",
    "HourRequest",
    "LandedCursor",
    "Retry",
    "defs",
    "failed_hours_sensor",
    "gap_sensor",
    "landed_data_sensor",
    "plan_hours",
    "plan_landed",
    "plan_retries",
]

defs = Definitions(sensors=[landed_data_sensor, gap_sensor, failed_hours_sensor], jobs=[backfill_job])
