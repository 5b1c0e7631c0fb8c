"""Hourly partitions in exchange time (UTC): ``MDP_START`` (a date, default 2020-01-01) up to and including
the open hour (end_offset=1), so the current hour can be materialized while it fills."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from dagster import HourlyPartitionsDefinition

from mdplatform.transforms import HOUR_NS, from_ns, to_ns

__all__ = ["HOURLY", "PARTITION_FMT", "hour_key", "hour_ns", "mdp_start"]

PARTITION_FMT = "%Y-%m-%d-%H:%M"


def mdp_start() -> datetime:
    value = os.environ.get("MDP_START") or "2020-01-01"
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


HOURLY = HourlyPartitionsDefinition(
    start_date=mdp_start().strftime(PARTITION_FMT), end_offset=1, timezone="UTC", fmt=PARTITION_FMT
)


def hour_key(hour: int) -> str:
    """Partition key of the hour starting at ``hour`` (UTC ns)."""
    if hour % HOUR_NS:
        raise ValueError("not an hour boundary")
    return from_ns(hour).strftime(PARTITION_FMT)


def hour_ns(key: str) -> int:
    return to_ns(datetime.strptime(key, PARTITION_FMT).replace(tzinfo=UTC))
