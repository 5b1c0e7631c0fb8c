"""The raw-minutes sensor: every ~30 s, requests hour runs for raw minutes that closed since its cursor."""

import os
import time

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from assets._jobs import hourly_job
from assets._rawscan import list_minutes
from assets._resources import MdpResource
from assets.partitions import hour_key
from mdplatform.transforms import HOUR_NS, SECOND_NS, from_ns

from ._plan import SensorCursor, plan_hours

__all__ = ["raw_minutes_sensor"]

#: a minute counts as closed this long after its end, so its writer has flushed the last part
SETTLE_NS = 5 * SECOND_NS


def _start_hours() -> float:
    return float(os.environ.get("MDP_SENSOR_START_H") or 24)


@sensor(
    job=hourly_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Requests trades+candles runs for the exchange-time hours whose raw window got newly closed minutes: "
        "the open hour as it fills, a closed hour once more when its window is complete (H + 1h + lateness). "
        "Without a cursor it starts MDP_SENSOR_START_H (24) hours back; older history: `mdp materialize`."
    ),
)
def raw_minutes_sensor(context: SensorEvaluationContext, mdp: MdpResource) -> SensorResult | SkipReason:
    settings = mdp.settings()
    now = time.time_ns()
    cursor = SensorCursor.loads(context.cursor)
    after = cursor.minute
    if after is None:
        after = now - round(_start_hours() * HOUR_NS) - 1
    minutes = list_minutes(settings.root, after, now - SETTLE_NS)
    if cursor.minute is None and not minutes:
        return SkipReason(f"no closed raw minutes under {settings.root} since {from_ns(after):%Y-%m-%d %H:%M}")
    # an hour reads the raw and events minutes of [H - lateness, H + 1h + lateness)
    requests, nxt = plan_hours(
        sorted(minutes), cursor, now, head_ns=settings.lateness_ns, lateness_ns=settings.lateness_ns
    )
    runs = [
        RunRequest(
            run_key=r.run_key,
            partition_key=hour_key(r.hour),
            tags={"mdp/newest_minute": from_ns(r.newest_minute).isoformat(), "mdp/complete": str(r.complete)},
        )
        for r in requests
    ]
    if not runs and nxt.dumps() == cursor.dumps():
        return SkipReason("no newly closed raw minutes")
    return SensorResult(run_requests=runs, cursor=nxt.dumps())
