"""Hourly partitions in exchange time (UTC), from a start day up to and including the open hour (end_offset=1),
so the current hour can be materialized while it fills.

The start (``mdp_start``), decided when the definitions load (``dagster dev``, a code-location reload):

- ``MDP_START`` (an ISO date or date-time, UTC when naive) if it is set;
- else the hour holding the lake's first raw or events minute minus the lateness (the earliest hour a trade in
  the lake can belong to: a trade of 23:55 may be received at 00:05), found with
  ``mdplatform.lake.raw_minute_bounds``, which lists only the first and last date folders: the UI's partitions
  start where the data does, not with empty hours before it;
- else, for a lake with no raw data yet (a fresh install), the current hour: data lands from now on.

The lake is ``MDP_LAKE`` (default ``./lake``). ``mdp materialize --lake`` computes the start for its own lake and
clamps its range to it, as the sensor's hours (minutes of the lake) are never before it. A lake that got older data
after the definitions loaded (an imported capture) shows those hours after a reload of the code location.
"""

from __future__ import annotations

import os
import warnings
from datetime import UTC, datetime

from dagster import AssetDep, AssetKey, HourlyPartitionsDefinition, TimeWindowPartitionMapping

from mdplatform.lake import raw_minute_bounds
from mdplatform.transforms import HOUR_NS, floor_ns, from_ns, to_ns

from ._settings import Settings

__all__ = [
    "HOURLY",
    "PARTITION_FMT",
    "hour_key",
    "hour_ns",
    "hourly_partitions",
    "mdp_start",
    "previous_hour",
    "start_ns",
]

PARTITION_FMT = "%Y-%m-%d-%H:%M"


def mdp_start(lake: str | None = None) -> datetime:
    """The first partition's start (UTC): ``MDP_START``, else the lake's first hour, else the current hour."""
    value = os.environ.get("MDP_START")
    if value:
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    settings = Settings(lake=lake)
    try:
        bounds = raw_minute_bounds(settings.root)
    except OSError as exc:  # an unreachable S3 lake must not keep the definitions from loading
        warnings.warn(
            f"cannot list the raw lake {settings.root} ({exc}); partitions start at the current hour",
            stacklevel=2,
        )
        bounds = None
    first = bounds[0] - settings.lateness_ns if bounds is not None else to_ns(datetime.now(UTC))
    return from_ns(floor_ns(first, HOUR_NS))


# allow_nonexistent_upstream_partitions is "beta" in Dagster 1.13; it keeps the first hour after MDP_START valid
warnings.filterwarnings("ignore", message=".*allow_nonexistent_upstream_partitions.*")


def previous_hour(key: AssetKey) -> AssetDep:
    """A dependency on the hour before of ``key`` (its own, for the assets that continue from it); the first hour has
    none, and needs none."""
    return AssetDep(
        key,
        partition_mapping=TimeWindowPartitionMapping(
            start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
        ),
    )


def hourly_partitions(start: datetime) -> HourlyPartitionsDefinition:
    """Hour partitions from ``start`` (floored to the hour) through the open hour."""
    return HourlyPartitionsDefinition(
        start_date=start.astimezone(UTC).strftime(PARTITION_FMT), end_offset=1, timezone="UTC", fmt=PARTITION_FMT
    )


HOURLY = hourly_partitions(mdp_start())


def start_ns(partitions_def: HourlyPartitionsDefinition = HOURLY) -> int:
    """Start (UTC ns) of the first partition: no hour before it can be requested."""
    return to_ns(partitions_def.start)


def hour_key(hour: int) -> str:
    """Partition key of the hour starting at ``hour`` (UTC ns)."""
    if hour % HOUR_NS:
        raise ValueError(f"{from_ns(hour).isoformat()} is not the start of an hour")
    return from_ns(hour).strftime(PARTITION_FMT)


def hour_ns(key: str) -> int:
    return to_ns(datetime.strptime(key, PARTITION_FMT).replace(tzinfo=UTC))
