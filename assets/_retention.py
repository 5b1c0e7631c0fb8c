"""The retention job and its daily schedule, both off until configured: raw and events day folders older than
``MDP_RAW_RETENTION_DAYS`` days whose hours are materialized (``mdplatform.lake.expire_days``), and the finished
Dagster runs older than ``MDP_RUN_RETENTION_DAYS`` days (their event logs with them: ``instance.delete_run``).
Sensor and schedule ticks are purged by the instance itself (``retention:`` in dagster.yaml).
"""

# no `from __future__ import annotations`: Dagster inspects the real annotation of `context`
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dagster import (
    Config,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    MetadataValue,
    OpExecutionContext,
    Output,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SkipReason,
    in_process_executor,
    job,
    op,
    schedule,
)
from pydantic import Field

from mdplatform.lake import CompactionBusy, expire_days
from mdplatform.warehouse import partition_exists

from ._jobs import books_on
from ._resources import MdpResource

__all__ = ["RetentionConfig", "expire_runs", "retention_days", "retention_job", "retention_schedule"]

RAW_ENV = "MDP_RAW_RETENTION_DAYS"
RUN_ENV = "MDP_RUN_RETENTION_DAYS"
#: only runs that ended: a queued or running run (or one whose process died, left to the run monitor) stays
_FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
#: runs deleted per storage query
_PAGE = 500


def retention_days(name: str, configured: int | None = None) -> int | None:
    """Days kept: ``configured`` if given, else the environment variable ``name``; None (unset, empty, ``off``):
    retention off."""
    if configured is not None:
        return configured
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "off", "none"):
        return None
    days = int(value)
    if days < 1:
        raise ValueError(f"{name} must be a number of days >= 1 (or unset: off), not {value!r}")
    return days


class RetentionConfig(Config):
    """Days kept of each; unset: ``MDP_RAW_RETENTION_DAYS`` / ``MDP_RUN_RETENTION_DAYS`` (unset there too: off)."""

    raw_days: int | None = Field(default=None, ge=1)
    run_days: int | None = Field(default=None, ge=1)


def _hour_materialized(root: str, books: bool) -> Callable[[int], bool]:
    """Whether an hour's assets that read raw and events are materialized: trades and coverage, and the book
    snapshots when the hourly runs build books (``MDP_BOOKS``)."""
    tables = ("trades", "coverage", "book_snapshots") if books else ("trades", "coverage")
    return lambda hour: all(partition_exists(root, table, hour) for table in tables)


@op(description="Delete raw and events day folders older than MDP_RAW_RETENTION_DAYS whose hours are materialized.")
def expire_raw(context: OpExecutionContext, config: RetentionConfig, mdp: MdpResource) -> Output[int]:
    days = retention_days(RAW_ENV, config.raw_days)
    if days is None:
        return Output(0, metadata={"skipped": f"raw retention is off ({RAW_ENV} unset)"})
    settings = mdp.settings()
    try:
        stats = expire_days(
            settings.root,
            keep_days=days,
            lateness_ns=settings.lateness_ns,
            materialized=_hour_materialized(settings.root, books_on()),
            now_ns=time.time_ns(),
        )
    except CompactionBusy as exc:  # a compaction holds the lake: tomorrow's run deletes what is due
        context.log.warning(str(exc))
        return Output(0, metadata={"skipped": str(exc)})
    context.log.info(stats.summary())
    for label, why in stats.kept.items():
        context.log.warning(f"{label} kept: {why}")
    return Output(
        len(stats.deleted),
        metadata={
            "keep_days": days,
            "deleted": MetadataValue.json({d.label: {"files": d.files, "bytes": d.bytes} for d in stats.deleted}),
            "mb_deleted": round(sum(d.bytes for d in stats.deleted) / 2**20, 1),
            "kept_old": MetadataValue.json(stats.kept),
            "kept_recent": stats.recent,
        },
    )


def expire_runs(instance: DagsterInstance, older_than: datetime) -> tuple[Counter[str], int]:
    """Delete the finished runs created before ``older_than`` (with their event logs); (deleted per job, old runs
    kept as not finished)."""
    deleted: Counter[str] = Counter()
    while True:
        records = instance.get_run_records(
            filters=RunsFilter(statuses=_FINISHED, created_before=older_than), limit=_PAGE
        )
        for record in records:
            instance.delete_run(record.dagster_run.run_id)
            deleted[record.dagster_run.job_name] += 1
        if len(records) < _PAGE:
            break
    unfinished = instance.get_runs_count(RunsFilter(created_before=older_than))
    return deleted, unfinished


@op(description="Delete the finished Dagster runs older than MDP_RUN_RETENTION_DAYS, with their event logs.")
def expire_old_runs(context: OpExecutionContext, config: RetentionConfig) -> Output[int]:
    days = retention_days(RUN_ENV, config.run_days)
    if days is None:
        return Output(0, metadata={"skipped": f"run retention is off ({RUN_ENV} unset)"})
    deleted, unfinished = expire_runs(context.instance, datetime.now(UTC) - timedelta(days=days))
    context.log.info(f"deleted {sum(deleted.values())} finished run(s) older than {days} day(s)")
    return Output(
        sum(deleted.values()),
        metadata={
            "keep_days": days,
            "deleted_by_job": MetadataValue.json(dict(deleted)),
            "kept_old_unfinished": unfinished,
        },
    )


@job(executor_def=in_process_executor, description="Delete old raw data and old Dagster runs (off until configured).")
def retention_job() -> None:
    expire_raw()
    expire_old_runs()


@schedule(
    job=retention_job,
    cron_schedule="40 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"daily at 02:40 UTC, when {RAW_ENV} or {RUN_ENV} is set",
)
def retention_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    on = [name for name in (RAW_ENV, RUN_ENV) if retention_days(name) is not None]
    if not on:
        return SkipReason(f"retention is off: set {RAW_ENV} and/or {RUN_ENV} (days kept)")
    day = (context.scheduled_execution_time or datetime.now(UTC)).strftime("%Y-%m-%d")
    return RunRequest(run_key=f"retention/{day}", tags={"mdp/retention": ",".join(on)})
