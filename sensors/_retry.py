"""Failed hours are run again until they succeed: ``failed_hours_sensor`` looks at the newest runs of the hourly
jobs (launched by the sensors, the UI, ``mdp materialize``) and requests a new run of every hour whose newest run
failed, after a backoff that doubles with each failure in a row (``MDP_RETRY_BASE_S``, 60 s, up to
``MDP_RETRY_MAX_S``, an hour). A run that failed because PostgreSQL was down (or a lock timed out, or the process
was killed) is redone once the cause is gone, with no one watching. Each request names the run it retries and the
attempt (tags ``mdp/reason``, ``mdp/retry_of``, ``mdp/attempt``): the UI shows why it ran.

``plan_retries`` is the pure part (no Dagster)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets._jobs import candles_job, hourly_job
from assets._resources import MdpResource
from assets.partitions import hour_key, hour_ns, mdp_start
from mdplatform.transforms import HOUR_NS, floor_ns, to_ns

from ._sensor import INTERVAL_S

__all__ = ["FinishedRun", "Retry", "failed_hours_sensor", "plan_retries"]

#: the jobs whose runs materialize hours; a candles-only run is retried as one, the others as the whole hour
_JOBS = ("mdp_hourly", "mdp_after_trades", "mdp_candles")
#: the newest runs looked at per tick: an hour whose last run is older than these is not retried any more
RECENT_RUNS = 500


@dataclass(frozen=True, slots=True)
class FinishedRun:
    """A run of the hourly jobs as the plan sees it: ``hours`` it covered, its status name, when it ended (s)."""

    run_id: str
    job: str
    hours: tuple[int, ...]
    status: str
    ended_s: float | None


@dataclass(frozen=True, slots=True)
class Retry:
    hour: int
    job: str
    failed_run: str
    attempt: int

    @property
    def run_key(self) -> str:
        # one retry per failed run: the retry is the hour's newest run from then on
        return f"retry:{self.job}:{hour_key(self.hour)}@{self.failed_run}"


def _base_s() -> float:
    return float(os.environ.get("MDP_RETRY_BASE_S") or 60)


def _max_s() -> float:
    return float(os.environ.get("MDP_RETRY_MAX_S") or 3600)


def plan_retries(runs: Iterable[FinishedRun], now_s: float, *, base_s: float, max_s: float) -> list[Retry]:
    """Retries due now for ``runs`` (newest first). For each hour, its runs newest first: when the newest failed,
    the failures in a row at the top are the attempts so far, and the retry is due ``base * 2^(attempts - 1)``
    (at most ``max_s``) after the newest one ended. A run in progress or a success on top: nothing to do."""
    history: dict[int, list[FinishedRun]] = {}
    for run in runs:
        for hour in run.hours:
            history.setdefault(hour, []).append(run)
    due: list[Retry] = []
    for hour, newest_first in sorted(history.items()):
        top = newest_first[0]
        if top.status != "FAILURE":
            continue
        attempts = 0
        for run in newest_first:
            if run.status != "FAILURE":
                break
            attempts += 1
        wait = min(base_s * 2 ** (attempts - 1), max_s)
        if top.ended_s is not None and now_s < top.ended_s + wait:
            continue
        job = candles_job.name if top.job == "mdp_candles" else hourly_job.name
        due.append(Retry(hour, job, top.run_id, attempts))
    return due


def _hours(tags: dict[str, str]) -> tuple[int, ...]:
    if "dagster/partition" in tags:
        return (hour_ns(tags["dagster/partition"]),)
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start is None or end is None:
        return ()
    return tuple(range(hour_ns(start), hour_ns(end) + HOUR_NS, HOUR_NS))


@sensor(
    jobs=[hourly_job, candles_job],
    minimum_interval_seconds=INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Runs again every hour whose newest run failed (PostgreSQL down, a lock timeout, a killed process), until "
        "it succeeds: the wait doubles with each failure in a row, from MDP_RETRY_BASE_S (60 s) up to "
        "MDP_RETRY_MAX_S (1 h). The run's tags name the run it retries and the attempt."
    ),
)
def failed_hours_sensor(context: SensorEvaluationContext, mdp: MdpResource) -> SensorResult | SkipReason:
    records = [
        record
        for job in _JOBS
        for record in context.instance.get_run_records(RunsFilter(job_name=job), limit=RECENT_RUNS)
    ]
    records.sort(key=lambda r: r.create_timestamp, reverse=True)  # newest first, whichever job
    runs = [
        FinishedRun(r.dagster_run.run_id, r.dagster_run.job_name, hours, r.dagster_run.status.value, r.end_time)
        for r in records
        if (hours := _hours(r.dagster_run.tags))
    ]
    # the hours the definitions have partitions for (a run of another MDP_START may have failed outside them)
    first, last = to_ns(mdp_start(mdp.settings().root)), floor_ns(time.time_ns(), HOUR_NS)
    retries = [r for r in plan_retries(runs, time.time(), base_s=_base_s(), max_s=_max_s()) if first <= r.hour <= last]
    if not retries:
        return SkipReason("no failed hour due for a retry")
    requests = []
    for r in retries:
        reason = f"retry {r.attempt} of {hour_key(r.hour)}: run {r.failed_run} failed"
        context.log.info(reason)
        requests.append(
            RunRequest(
                run_key=r.run_key,
                job_name=r.job,
                partition_key=hour_key(r.hour),
                tags={"mdp/reason": reason, "mdp/retry_of": r.failed_run, "mdp/attempt": str(r.attempt)},
            )
        )
    return SensorResult(run_requests=requests)
