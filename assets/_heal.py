"""The backfill job: fill the trade gaps of a span from the exchange's REST history (what the gap sensor runs).

It only fetches and lands (lake ``backfill/`` and ``backfill_events/``); the landing log then makes the
landed-data sensor re-materialize the hours and the 4h/1d candles the new data belongs to, so the job never
writes DuckDB and needs no place in the warehouse's queue.
"""

# no `from __future__ import annotations`: Dagster inspects the real annotation of `context`
import asyncio
import os

from dagster import Config, Failure, MetadataValue, OpExecutionContext, Output, in_process_executor, job, op

from mdplatform.backfill import find_gaps, heal_gaps

from ._resources import MdpResource

__all__ = ["NO_REST", "BackfillConfig", "backfill_job", "healing_off", "rest_url"]


#: ``MDP_REST_URL`` value that turns healing off (a lake of rebased recordings, like the demo's, must not be
#: mixed with the exchange's real history of those times)
NO_REST = "none"


def rest_url() -> str | None:
    """``MDP_REST_URL``: the REST host asked instead of each exchange's own (a replay in tests; unset live)."""
    return os.environ.get("MDP_REST_URL") or None


def healing_off() -> bool:
    return rest_url() == NO_REST


class BackfillConfig(Config):
    """The span (UTC ns) and the stream whose trade gaps to fill."""

    start_ns: int
    end_ns: int
    exchange: str
    symbol: str


@op(description="Fetch the span's trade gaps from the exchange's REST history and land them in the lake.")
def heal_span(context: OpExecutionContext, config: BackfillConfig, mdp: MdpResource) -> Output[int]:
    root = mdp.settings().root
    gaps = find_gaps(root, config.start_ns, config.end_ns, exchanges={config.exchange}, symbols={config.symbol})
    report = asyncio.run(heal_gaps(root, gaps, rest_url=rest_url()))
    for healed in report.healed:
        context.log.info(healed.describe())
    failed = [h.describe() for h in report.healed if not h.whole]
    metadata = {
        "gaps": len(report.healed),
        "filled": sum(1 for h in report.healed if h.whole),
        "not_filled": MetadataValue.json(failed),
        "requests": report.requests,
        "throttled": report.throttled,
        "waited_s": round(report.waited_s, 3),
    }
    errors = [h.describe() for h in report.healed if h.error]
    if errors:
        # the run fails (what was fetched before the error is landed): never a success over a gap that errored
        raise Failure(f"{len(errors)} gap(s) not filled because of errors: {errors[0]}", metadata=metadata)
    return Output(sum(h.trades for h in report.healed), metadata=metadata)


@job(name="mdp_backfill", executor_def=in_process_executor, description="fill trade gaps from REST history")
def backfill_job() -> None:
    heal_span()
