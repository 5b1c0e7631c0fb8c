"""The sensors that keep the lake's derived tables true without a person watching.

- ``landed_data_sensor`` reads the landing log (``mdplatform.lake.list_manifests``): every file committed to the
  raw, events or backfill tables, by any writer (collector, import, backfill, a restarted collector), whatever its
  minute. It requests the hours those minutes belong to (the open hour as it fills, a closed hour once its window
  is complete or at once when it is already complete: late data, imports, backfills) and, for a closed hour that
  runs again, the candles of the later hours that hold its 4h and 1d candles. An hour whose assets were all
  materialized after its data landed (by `mdp materialize`, the demo, a UI run) is not run again: the first start
  of `dagster dev` on the demo's lake and instance finds nothing to redo.
- ``gap_sensor`` reads new ``coverage`` materializations and requests a backfill run per trade gap found in them.
"""

import os
import time
import warnings

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInvariantViolationError,
    DefaultSensorStatus,
    RunConfig,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets._assets import CANDLES_KEY, COVERAGE_KEY, TRADES_KEY
from assets._book_assets import BOOK_HEATMAP_KEY, BOOK_SNAPSHOTS_KEY, CONSOLIDATED_BOOK_KEY, TRADE_HEATMAP_KEY
from assets._heal import NO_REST, BackfillConfig, backfill_job, healing_off
from assets._jobs import books_on, candles_job, hourly_job
from assets._resources import MdpResource
from assets.partitions import hour_key, hour_ns, mdp_start
from mdplatform.backfill import find_gaps
from mdplatform.lake import list_manifests, read_manifest
from mdplatform.transforms import HOUR_NS, SECOND_NS, floor_ns, from_ns, to_ns
from mdplatform.warehouse import partition_exists

from ._plan import HourRequest, LandedCursor, plan_landed

__all__ = ["gap_sensor", "landed_data_sensor"]

# Dagster 1.13's @sensor passes its (beta) `owners` parameter on, set or not: a warning at every start of the code
# location about a parameter these sensors do not use
warnings.filterwarnings("ignore", message=".*`owners`.*SensorDefinition.*")

#: manifests are re-listed this far back (a writer names its manifest before the write completes)
OVERLAP_NS = 120 * SECOND_NS
#: manifests read per tick at most (an import of a month lands thousands): the rest wait for the next tick
MAX_MANIFESTS = 2_000
#: coverage materializations read per tick at most
MAX_COVERAGE = 200
#: a gap is looked for this far before each new coverage hour, so one that began in an earlier hour is seen whole
#: (and keeps the same identity however many of its hours are re-materialized)
GAP_LOOKBACK_NS = 24 * HOUR_NS


def _start_hours() -> float:
    return float(os.environ.get("MDP_SENSOR_START_H") or 24)


#: seconds between evaluations (``MDP_SENSOR_INTERVAL_S``, read when the definitions load; default 30)
INTERVAL_S = int(os.environ.get("MDP_SENSOR_INTERVAL_S") or 30)


def _run_assets(request: HourRequest) -> list[AssetKey]:
    """The assets the request's run would materialize."""
    if request.candles_only:
        return [CANDLES_KEY]
    books = [BOOK_SNAPSHOTS_KEY, BOOK_HEATMAP_KEY, TRADE_HEATMAP_KEY, CONSOLIDATED_BOOK_KEY] if books_on() else []
    return [TRADES_KEY, COVERAGE_KEY, CANDLES_KEY, *books]


def _done_since_landed(context: SensorEvaluationContext, request: HourRequest) -> bool:
    """Every asset of the request's run has a materialization of its hour recorded after the data that asked for
    it landed: someone else (`mdp materialize`, the demo, a UI run) already did the work."""
    try:
        instance = context.instance
    except DagsterInvariantViolationError:  # evaluated without an instance (a test's context): no record to read
        return False
    partition = hour_key(request.hour)
    for key in _run_assets(request):
        latest = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        if not latest or round(latest[0].timestamp * SECOND_NS) < request.landed:
            return False
    return True


@sensor(
    jobs=[hourly_job, candles_job],
    minimum_interval_seconds=INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Reads the lake's landing log and requests the hours whose data changed: the open hour as it fills, a "
        "closed hour when its window completes or when data lands for it later (imports, backfills, late files), "
        "and then the 4h/1d candles holding it. Without a cursor it starts MDP_SENSOR_START_H (24) hours back."
    ),
)
def landed_data_sensor(context: SensorEvaluationContext, mdp: MdpResource) -> SensorResult | SkipReason:
    settings = mdp.settings()
    root = settings.root
    now = time.time_ns()
    cursor = LandedCursor.loads(context.cursor)
    since = cursor.since if cursor.since is not None else now - round(_start_hours() * HOUR_NS)
    fresh = [m for m in list_manifests(root, since - OVERLAP_NS, now + 1) if m.name not in cursor.seen]
    fresh = fresh[:MAX_MANIFESTS]
    files = [(f, m.landed_ns) for m in fresh for f in read_manifest(root, m)]
    requests, pending = plan_landed(
        files,
        cursor.pending,
        now,
        head_ns=settings.lateness_ns,
        lateness_ns=settings.lateness_ns,
        candles_exist=lambda h: partition_exists(root, "candles", h),
    )
    # done up to the newest manifest read (all of them when under the cap); names read are kept in ``seen``, so one
    # landed in the same nanosecond as the last one read but past the cap is still read next time
    new_since = max([since, *(m.landed_ns for m in fresh)]) if len(fresh) == MAX_MANIFESTS else now
    seen = {n: t for n, t in cursor.seen.items() if t >= new_since - OVERLAP_NS}
    seen.update({m.name: m.landed_ns for m in fresh if m.landed_ns >= new_since - OVERLAP_NS})
    nxt = LandedCursor(new_since, seen, pending)
    # partitions run from the lake's start (MDP_START, else its first hour: what the definitions were loaded with)
    # through the open hour: a minute outside them (data older than MDP_START, a clock far ahead) has no partition
    first, last = to_ns(mdp_start(root)), floor_ns(now, HOUR_NS)
    outside = [r for r in requests if not first <= r.hour <= last]
    for r in outside:
        context.log.warning(
            f"no partition for {from_ns(r.hour):%Y-%m-%d %H:00} UTC (partitions start {from_ns(first)})"
        )
    inside = [r for r in requests if first <= r.hour <= last]
    done = [r for r in inside if _done_since_landed(context, r)]
    if done:
        context.log.info(
            f"{len(done)} of {len(inside)} hour run(s) left out: materialized after their data landed ("
            + ", ".join(f"{from_ns(r.hour):%Y-%m-%d %H:00}" for r in done)
            + ")"
        )
    runs = [
        RunRequest(
            run_key=r.run_key,
            job_name=(candles_job if r.candles_only else hourly_job).name,
            partition_key=hour_key(r.hour),
            tags={
                "mdp/landed": from_ns(r.landed).isoformat(),
                "mdp/complete": str(r.complete),
                "mdp/reason": "4h/1d candles holding a changed hour" if r.candles_only else "data landed",
            },
        )
        for r in inside
        if r not in done
    ]
    if not runs and not fresh and nxt.pending == cursor.pending:
        return SkipReason("nothing landed")
    return SensorResult(run_requests=runs, cursor=nxt.dumps())


@sensor(
    job=backfill_job,
    minimum_interval_seconds=INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Reads new coverage partitions and requests a backfill run (REST history) for each trade gap in them that "
        "is over (the stream was covered again after it); "
        "the landed-data sensor then re-materializes what the backfill lands. Gaps that REST history cannot fill "
        "stay in coverage. MDP_REST_URL points every exchange at another REST host (a replay); "
        f"MDP_REST_URL={NO_REST} turns it off."
    ),
)
def gap_sensor(context: SensorEvaluationContext, mdp: MdpResource) -> SensorResult | SkipReason:
    if healing_off():
        return SkipReason(f"MDP_REST_URL={NO_REST}: gaps are not fetched from REST history")
    root = mdp.settings().root
    after = int(context.cursor) if context.cursor else None
    result = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=COVERAGE_KEY, after_storage_id=after), limit=MAX_COVERAGE, ascending=True
    )
    if not result.records:
        return SkipReason("no new coverage partitions")
    hours = sorted({hour_ns(r.partition_key) for r in result.records if r.partition_key})
    runs: list[RunRequest] = []
    if hours:
        for gap in find_gaps(root, hours[0] - GAP_LOOKBACK_NS, hours[-1] + HOUR_NS):
            if not gap.closed:
                continue  # still open: it may grow; it is fetched once the stream is back
            span = f"{from_ns(gap.start_ns):%Y-%m-%d %H:%M:%S}..{from_ns(gap.end_ns):%H:%M:%S} UTC"
            config = BackfillConfig(start_ns=gap.start_ns, end_ns=gap.end_ns, exchange=gap.exchange, symbol=gap.symbol)
            runs.append(
                RunRequest(
                    # the gap's identity: seen again (its hour re-materialized), it is not fetched twice
                    run_key=f"{gap.exchange}/{gap.symbol}/{gap.start_ns}-{gap.end_ns}",
                    run_config=RunConfig(ops={"heal_span": config}),
                    tags={"mdp/gap": f"{gap.exchange} {gap.symbol} {span}"},
                )
            )
    return SensorResult(run_requests=runs, cursor=str(result.records[-1].storage_id))
