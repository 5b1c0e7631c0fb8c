"""Dagster sensors: the raw-minutes sensor that keeps the hourly partitions up to date."""

from dagster import Definitions

from ._plan import HourRequest, SensorCursor, plan_hours
from ._sensor import raw_minutes_sensor

__all__ = ["HourRequest", "SensorCursor", "defs", "plan_hours", "raw_minutes_sensor"]

defs = Definitions(sensors=[raw_minutes_sensor])
