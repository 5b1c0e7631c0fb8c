"""Dagster sensors: the landed-data sensor (hourly partitions up to date, late data re-aggregated) and the gap
sensor (trade gaps healed from REST history)."""

from dagster import Definitions

from assets._heal import backfill_job

from ._plan import HourRequest, LandedCursor, plan_hours, plan_landed
from ._sensor import gap_sensor, landed_data_sensor

__all__ = [
    "HourRequest",
    "LandedCursor",
    "defs",
    "gap_sensor",
    "landed_data_sensor",
    "plan_hours",
    "plan_landed",
]

defs = Definitions(sensors=[landed_data_sensor, gap_sensor], jobs=[backfill_job])
