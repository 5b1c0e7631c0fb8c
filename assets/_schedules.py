"""The daily candles schedule and the freshness policy of the hourly assets.

Candles of hour H publish the 4h and 1d candles closing in it from the stored 1m candles of the hours before: the
1d candle of a day, in its hour 23:00, is only as right as what its 23 earlier hours held when it ran. The sensor
re-runs those hours' candles when an earlier hour runs again; once a day, yesterday's candles are redone anyway, in
order, from the stored trades and coverage (a run over a range computes its hours in order, each reading the 1m
candles of the one before): what ran out of order (hours launched by hand, a backfill of part of the day) ends up as
a whole day computed in order would be. Only hours whose candles exist are redone (the others were never built, or
were held back by a failed check on their trades, which a candles-only run does not re-evaluate): cheap (no raw
read) and idempotent (each hour's partition is replaced).
"""

# no `from __future__ import annotations`: Dagster inspects the real annotation of `context`
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetsDefinition,
    DefaultScheduleStatus,
    FreshnessPolicy,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    apply_freshness_policy,
    schedule,
)

from mdplatform.transforms import DAY_NS, HOUR_NS, floor_ns, to_ns
from mdplatform.warehouse import partition_exists

from ._book_assets import books
from ._jobs import books_on, candles_job
from ._resources import MdpResource
from .partitions import hour_key, mdp_start

__all__ = ["FRESHNESS", "daily_candles_schedule", "hour_runs", "with_freshness"]

#: an hour's assets are materialized about an hour and a quarter after it starts (its end plus the lateness, then the
#: sensor's run): with none for 90 minutes an hour is late (warn), for 3 hours two are (fail)
FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(minutes=90))


def with_freshness(assets: Sequence[AssetsDefinition]) -> list[AssetsDefinition]:
    """The hourly assets with ``FRESHNESS`` on the ones the hourly runs materialize (the book assets only with
    ``MDP_BOOKS`` on: else nothing is expected of them)."""
    return [
        a if a is books and not books_on() else a.map_asset_specs(lambda s: apply_freshness_policy(s, FRESHNESS))
        for a in assets
    ]


def hour_runs(hours: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted hours as runs of consecutive ones: (first, last) each."""
    runs: list[tuple[int, int]] = []
    for hour in sorted(hours):
        if runs and runs[-1][1] + HOUR_NS == hour:
            runs[-1] = (runs[-1][0], hour)
        else:
            runs.append((hour, hour))
    return runs


@schedule(
    job=candles_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="daily at 02:00 UTC: yesterday's candles again, in order (its 4h and 1d candles from all its hours)",
)
def daily_candles_schedule(context: ScheduleEvaluationContext, mdp: MdpResource) -> list[RunRequest] | SkipReason:
    root = mdp.settings().root
    day = floor_ns(to_ns(context.scheduled_execution_time or datetime.now(UTC)), DAY_NS) - DAY_NS
    first = to_ns(mdp_start(root))  # the partitions' start (no run can ask for an hour before it)
    hours = [h for h in range(max(day, first), day + DAY_NS, HOUR_NS) if partition_exists(root, "candles", h)]
    if not hours:
        return SkipReason(f"no candles materialized on {hour_key(day)[:10]}")
    return [
        RunRequest(
            run_key=f"daily-candles/{hour_key(start)}..{hour_key(end)}",
            tags={
                "dagster/asset_partition_range_start": hour_key(start),
                "dagster/asset_partition_range_end": hour_key(end),
                "mdp/reason": "daily candles",
            },
        )
        for start, end in hour_runs(hours)
    ]
