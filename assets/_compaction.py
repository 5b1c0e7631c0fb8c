"""The compaction job and its hourly schedule: the raw and events minute files of final hours become one file per
exchange and hour, days past ``day_age_s`` one file per day (``mdplatform.lake.compact``; what ``mdp lake compact``
does by hand). An hour is final once the assets' lateness plus ``journal_horizon_s`` have passed since its end; a
minute file landing later is still read, and merged by the next run. Compaction changes no row, so it writes no
landing manifest and no hour runs again because of it.
"""

# no `from __future__ import annotations`: Dagster inspects the real annotation of `context`
from dagster import (
    Config,
    DefaultScheduleStatus,
    MetadataValue,
    OpExecutionContext,
    Output,
    ScheduleDefinition,
    in_process_executor,
    job,
    op,
)

from mdplatform.lake import DEFAULT_DAY_AGE_NS, CompactionBusy, compact

from ._resources import MdpResource

__all__ = ["CompactionConfig", "compaction_job", "compaction_schedule"]


class CompactionConfig(Config):
    """How old an hour (beyond the lateness) and a day must be to be compacted."""

    journal_horizon_s: float = 3600.0
    day_age_s: float = DEFAULT_DAY_AGE_NS / 10**9


@op(description="Compact the final hours (and old days) of the raw and events trees into one file each.")
def compact_lake(context: OpExecutionContext, config: CompactionConfig, mdp: MdpResource) -> Output[int]:
    settings = mdp.settings()
    try:
        stats = compact(
            settings.root,
            min_age_ns=settings.lateness_ns + round(config.journal_horizon_s * 10**9),
            day_age_ns=round(config.day_age_s * 10**9),
            progress=lambda span: context.log.info(span.line()),
        )
    except CompactionBusy as exc:  # a run by hand (mdp lake compact) holds the lake: the next hour's run goes on
        context.log.warning(str(exc))
        return Output(0, metadata={"skipped": str(exc)})
    context.log.info(stats.summary())
    return Output(
        sum(s.written for s in stats.spans),
        metadata={
            "files_before": stats.files_before,
            "files_after": stats.files_after,
            "mb_before": round(stats.bytes_before / 2**20, 1),
            "mb_after": round(stats.bytes_after / 2**20, 1),
            "seconds": round(stats.seconds, 1),
            "left_as_they_were": MetadataValue.json(stats.skipped),
        },
    )


@job(executor_def=in_process_executor, description="Compact the lake's raw and events minute files.")
def compaction_job() -> None:
    compact_lake()


#: every hour at :20: the hour that ended 80 minutes ago is final by then (lateness 15 min + journal horizon 1 h),
#: so a day keeps its minute files for about an hour only (at most 25 raw files per exchange and day)
compaction_schedule = ScheduleDefinition(
    job=compaction_job,
    cron_schedule="20 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
