"""The hourly assets: ``trades``, ``coverage`` and ``quarantine`` (one pass over the raw hour), then ``candles``.

A run covers one hour (the sensor, `mdp materialize`) or a range of hours (a backfill from the UI: a single-run
backfill policy, so a backfill is one run of trades+coverage over the range, then one run of candles over it,
whatever its length). Each asset loops over the hours of its run's partition time window in order, which is what
candles need: candles(H) reads the stored 1m candles of H - 1. Both assets are in the ``mdp_warehouse``
concurrency pool (limit 1 in dagster.yaml): whoever launched the run, one of them at a time writes DuckDB (one
writer process) and the lake partitions the other reads.
"""

# no `from __future__ import annotations`: Dagster inspects the real annotation of `context`
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from mdplatform.lake import unreadable_files
from mdplatform.quality import preload
from mdplatform.transforms import GAP_STATUS

from ._columns import table_metadata
from ._hourly import (
    TradesInputs,
    by_symbol,
    compute_trades_hour,
    hour_range_text,
    hour_text,
    hours_between,
    materialize_candles_hour,
    materialize_trades_hour,
    read_trades_hour,
)
from ._quarantine import QUARANTINE_KEY, QUARANTINE_SPEC, quarantine_metadata
from ._range import HourRange
from ._raw import RAW_KEY
from ._resources import MdpResource
from ._run_hooks import HOOKS, StoppedBetweenHours
from .partitions import HOURLY, hour_key, previous_hour

__all__ = [
    "CANDLES_KEY",
    "COVERAGE_KEY",
    "POOL",
    "TRADES_KEY",
    "candles",
    "hour_results",
    "trades_and_coverage",
]

# so is an asset's backfill_policy (single-run backfills have been stable in use since Dagster 1.5)
warnings.filterwarnings("ignore", message=".*`backfill_policy`.*")

TRADES_KEY = AssetKey("trades")
COVERAGE_KEY = AssetKey("coverage")
CANDLES_KEY = AssetKey("candles")

T = TypeVar("T")

#: the concurrency pool of every asset that writes DuckDB and the lake partitions (dagster.yaml: limit 1)
POOL = "mdp_warehouse"
#: a backfill of N hours is one run per asset, whatever N: the per-run overhead (a process, the imports, the
#: backfill daemon's 30 s ticks between dependent runs) is what dominates an hour's few seconds of work
BACKFILL_POLICY = BackfillPolicy.single_run()


def _hours(context: AssetExecutionContext) -> list[int]:
    """The hours of the run, in order (one for a single-partition run)."""
    window = context.partition_time_window
    return hours_between(window.start, window.end)


def _each_hour(
    context: AssetExecutionContext,
    what: str,
    work: Callable[[int], T],
    *,
    prepare: Callable[[int], Any] | None = None,
    finish: Callable[[int, Any], T] | None = None,
    workers: int = 1,
) -> dict[int, T]:
    """``work(hour)`` for the run's hours in order; a failure is logged naming the hour and what was written. A
    stop asked for between two hours of the run's first step (``HOOKS``: a signal to `mdp materialize`) ends the
    run there, once the hours under way are done.

    With ``prepare``/``finish`` and ``workers`` > 1: ``prepare(hour)`` (the reads, in order) runs here and
    ``finish(hour, prepared)`` on a pool of ``workers`` threads, so consecutive hours are computed side by side
    (each hour's work is independent of the others'; the polars and Parquet work releases the GIL)."""
    hours = _hours(context)
    done: dict[int, T] = {}

    def failed(i: int, hour: int) -> None:
        written = f"; {hour_range_text(hours[:i])} already written" if i else ""
        context.log.error(f"{what} for {hour_text(hour)} failed (hour {i + 1} of {len(hours)}{written})")

    def stopped(i: int, hour: int) -> StoppedBetweenHours:
        written = f"{hour_range_text(hours[:i])} written" if i else "nothing written"
        return StoppedBetweenHours(f"{what}: stopped before {hour_text(hour)}; {written}")

    if prepare is None or finish is None or workers <= 1 or len(hours) == 1:
        for i, hour in enumerate(hours):
            if HOOKS.stopping(what):
                raise stopped(i, hour)
            try:
                done[hour] = work(hour)
            except Exception:
                failed(i, hour)
                raise
            HOOKS.hour_done(what, hour)
        return done

    with ThreadPoolExecutor(workers, thread_name_prefix="mdp-hour") as pool:
        pending: deque[tuple[int, int, Future[T]]] = deque()

        def collect() -> None:
            i, hour, future = pending.popleft()
            try:
                done[hour] = future.result()
            except Exception:
                failed(i, hour)
                raise
            HOOKS.hour_done(what, hour)

        for i, hour in enumerate(hours):
            if HOOKS.stopping(what):
                while pending:
                    collect()
                raise stopped(i, hour)
            try:
                prepared = prepare(hour)
            except Exception:
                failed(i, hour)
                raise
            pending.append((i, hour, pool.submit(finish, hour, prepared)))
            while len(pending) >= workers:
                collect()
        while pending:
            collect()
    return done


def _hour_log(context: AssetExecutionContext) -> Callable[[str], None]:
    """Where an hour's summary line goes: the run's log when it runs one hour; for a range the ``by_hour``
    metadata holds the same numbers (each log line is an event Dagster stores: hundreds slow a long range down)."""
    if len(_hours(context)) == 1:
        return context.log.info
    return lambda _text: None


def hour_results(
    context: AssetExecutionContext,
    key: AssetKey,
    hours: Mapping[int, Mapping[str, Any]],
    run: Mapping[str, Any] | None = None,
) -> MaterializeResult[None]:
    """The asset's materialization by a run of ``hours``: Dagster records one event per hour partition, and each
    carries that hour's own metadata (``hours``: hour -> its numbers and paths), as a run of that hour alone would;
    ``run``: what is the run's, not an hour's (on every hour's event). A range's sums on each hour's event would be
    wrong there (the UI shows a partition's row count and files from its event) and would grow with the range."""
    for hour, metadata in hours.items():
        context.add_asset_metadata(metadata, asset_key=key, partition_key=hour_key(hour))
    return MaterializeResult(asset_key=key, metadata=dict(run or {}))


@multi_asset(
    specs=[
        AssetSpec(
            TRADES_KEY,
            group_name="market_data",
            kinds={"polars", "parquet", "duckdb"},
            description=(
                "Normalized trades with exchange time in the hour (prices and sizes exact, DECIMAL(38,12); "
                "aggregated trades carry their fill count), each fill once across channels. Read from raw receive "
                "minutes [H - lateness, H + 1h + lateness). Lake: trades/date=/hour=/data.parquet; DuckDB: trades."
            ),
            deps=[RAW_KEY],
            metadata=table_metadata("trades"),
        ),
        AssetSpec(
            COVERAGE_KEY,
            group_name="market_data",
            kinds={"polars", "parquet", "duckdb"},
            description=(
                "Per stream (exchange, symbol, channel), the stretches of the hour that were observed and the gaps "
                "with their reason (not connected, lost on crash, silent, id gap, sequence gap...), from the "
                "collector's events and the trades' ids. Lake: coverage/date=/hour=/data.parquet; DuckDB: coverage."
            ),
            deps=[RAW_KEY],
            metadata=table_metadata("coverage"),
        ),
        QUARANTINE_SPEC,
    ],
    partitions_def=HOURLY,
    backfill_policy=BACKFILL_POLICY,
    pool=POOL,
)
def trades_and_coverage(context: AssetExecutionContext, mdp: MdpResource) -> Iterator[MaterializeResult[None]]:
    settings = mdp.settings()
    if context.run.asset_check_selection != frozenset():  # None: every check of the selected assets runs
        preload()  # the checks' GX import goes beside this step's polars work
    hours = _hours(context)
    lake = HourRange(settings, hours=hours)
    log = _hour_log(context)

    def hour_done(hour: int, inputs: TradesInputs | None = None) -> tuple[dict[str, Any], ...]:
        """The hour's trades, coverage and quarantine metadata (the frames themselves are not kept: a range may be
        long)."""
        if inputs is None:
            done = materialize_trades_hour(settings, hour, lake, ahead=hours)
        else:
            done = compute_trades_hour(settings, inputs, lake)
        w, cov = done.window, done.coverage
        gaps = cov.filter(cov["status"] == GAP_STATUS).height
        log(
            f"{hour_text(hour)}: {w.trades.height} trades from {w.raw_rows} raw rows; late {w.late.height}, "
            f"duplicates {w.duplicates}, overlaps {w.overlaps}, rejects {w.rejects.height}; {gaps} coverage gaps"
        )
        trades = {
            "dagster/row_count": w.trades.height,
            "raw_rows_read": w.raw_rows,
            "late_trades": w.late.height,
            "duplicates": w.duplicates,
            "aggregates_dropped_for_their_fills": w.overlaps,
            "rejects": w.rejects.height,
            "pg_rows_replaced": done.sink_rows_replaced,
            "rows_by_symbol": MetadataValue.json(done.rows_by_symbol),
            "late_by_symbol": MetadataValue.json(by_symbol(w.late)),
            "rejects_by_reason": MetadataValue.json(done.rejects_by_reason),
            "path": MetadataValue.path(done.path),
            "quarantine": MetadataValue.path(done.quarantine) if done.quarantine else MetadataValue.text("none"),
        }
        coverage = {
            "dagster/row_count": cov.height,
            "streams": cov.select("exchange", "symbol", "channel").unique().height,
            "gaps": gaps,
            "gap_seconds_by_reason": MetadataValue.json(done.gaps_by_reason),
            "path": MetadataValue.path(done.coverage_path),
        }
        return trades, coverage, quarantine_metadata(hour, done.quarantined, done.quarantined_path)

    with lake:
        done = _each_hour(
            context,
            "trades and coverage",
            hour_done,
            prepare=lambda hour: read_trades_hour(settings, hour, lake),
            finish=hour_done,
            workers=settings.hour_workers,
        )
    # raw files moved aside because they cannot be read (the hours went on without them)
    unreadable = {"unreadable_raw_files": MetadataValue.json(dict(unreadable_files(settings.root)))}
    yield hour_results(context, TRADES_KEY, {h: d[0] for h, d in done.items()}, unreadable)
    yield hour_results(context, COVERAGE_KEY, {h: d[1] for h, d in done.items()})
    yield hour_results(context, QUARANTINE_KEY, {h: d[2] for h, d in done.items()})


@asset(
    key=CANDLES_KEY,
    partitions_def=HOURLY,
    backfill_policy=BACKFILL_POLICY,
    pool=POOL,
    group_name="market_data",
    kinds={"polars", "parquet", "duckdb"},
    metadata=table_metadata("candles"),
    deps=[
        TRADES_KEY,
        COVERAGE_KEY,
        # the previous hour's 1m candles: the price carried into flat minutes, and the minutes of 4h/1d candles
        # (a range run computes its hours in order, so each hour finds the one before it written)
        previous_hour(CANDLES_KEY),
    ],
    description=(
        "OHLCV candles (1m 5m 15m 1h 4h 1d) whose close_time is in (H, H + 1h] and that are known closed, each "
        "saying whether it is complete (its whole span observed) and its observed share; no candle over what was "
        "not observed. Lake: candles/date=/hour=/data.parquet; DuckDB: candles."
    ),
)
def candles(context: AssetExecutionContext, mdp: MdpResource) -> MaterializeResult[None]:
    settings = mdp.settings()
    lake = HourRange(settings)
    log = _hour_log(context)

    hours = _hours(context)

    def hour_done(hour: int) -> dict[str, Any]:
        c = materialize_candles_hour(settings, hour, lake, ahead=hours)
        log(f"{hour_text(hour)}: {c.candles.height} candles {c.by_timeframe} from {c.trades_read} trades")
        return {
            "dagster/row_count": c.candles.height,
            "trades_read": c.trades_read,
            "pg_rows_replaced": c.sink_rows_replaced,
            "rows_by_symbol": MetadataValue.json(c.rows_by_symbol),
            "rows_by_timeframe": MetadataValue.json(c.by_timeframe),
            "incomplete_by_timeframe": MetadataValue.json(c.incomplete_by_timeframe),
            "path": MetadataValue.path(c.path),
        }

    with lake:  # its end publishes what the last hours wrote
        done = _each_hour(context, "candles", hour_done)
    return hour_results(context, CANDLES_KEY, done)
