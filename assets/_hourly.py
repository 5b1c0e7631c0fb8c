"""The work of one hour partition, as plain functions (the Dagster assets are thin wrappers around these)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import polars as pl

from mdplatform.lake import read_backfill, read_backfill_events
from mdplatform.quality import quarantine_rows
from mdplatform.schemas import CANDLES, COVERAGE, TIMEFRAMES, TRADES
from mdplatform.transforms import (
    GAP_STATUS,
    HOUR_NS,
    WINDOW,
    NormalizedRaw,
    TradesReads,
    TradesWindow,
    build_candles_hours,
    candle_range_start,
    compute_coverage_windows,
    from_ns,
    received_rows,
    registry_stream_kinds,
    registry_trade_channels,
    stamp_window,
    symbol_coverage,
    to_ns,
    window_trades_many,
)
from mdplatform.warehouse import (
    hour_window,
    partition_path,
    quarantine_path,
    read_partition,
    remove_file,
    write_partition,
)

from ._range import HourRange
from ._settings import Settings
from ._sinks import load_sinks

__all__ = [
    "QUARANTINE_TABLE",
    "CandlesHour",
    "MissingUpstreamError",
    "TradesHour",
    "TradesInputs",
    "by_symbol",
    "compute_trades_hour",
    "hour_range_text",
    "hour_text",
    "hours_between",
    "materialize_candles_hour",
    "materialize_trades_hour",
    "read_trades_hour",
]


T = TypeVar("T")

#: the lake table (and DuckDB view) of the hour's quarantined rows; ``quarantine/trades/`` holds the rejects alone
QUARANTINE_TABLE = "quarantine_rows"


class MissingUpstreamError(RuntimeError):
    """An upstream partition file (trades, coverage) of the hour is missing; the message names the hour."""


def hour_text(hour: int) -> str:
    """An hour start (UTC ns) as people read it: ``2024-08-09 00:00 UTC``."""
    return f"{from_ns(hour):%Y-%m-%d %H:%M} UTC"


def hour_range_text(hours: list[int]) -> str:
    """``2024-08-08 23:00 UTC`` for one hour, ``2024-08-08 23:00 .. 2024-08-09 01:00 UTC (2 hours)`` for more (end
    exclusive)."""
    if len(hours) == 1:
        return hour_text(hours[0])
    return f"{from_ns(hours[0]):%Y-%m-%d %H:%M} .. {hour_text(hours[-1] + HOUR_NS)} ({len(hours)} hours)"


def hours_between(start: datetime, end: datetime) -> list[int]:
    """The hour starts (UTC ns) of [start, end), in order: the hours of a run's partition time window."""
    lo, hi = to_ns(start), to_ns(end)
    if lo % HOUR_NS or hi % HOUR_NS:
        raise ValueError(f"not whole hours: {start.isoformat()} .. {end.isoformat()}")
    return list(range(lo, hi, HOUR_NS))


def by_symbol(df: pl.DataFrame) -> dict[str, int]:
    """ "exchange/symbol" -> rows."""
    if not df.height:
        return {}
    counts = df.group_by("exchange", "symbol").len().sort("exchange", "symbol")
    return {f"{ex}/{sym}": int(n) for ex, sym, n in counts.iter_rows()}


@dataclass(frozen=True, slots=True)
class TradesHour:
    hour: int
    window: TradesWindow
    coverage: pl.DataFrame
    path: str
    coverage_path: str
    quarantine: str | None
    sink_rows_replaced: int
    #: the hour's quarantine rows (rejects and frames the collector could not read) and their partition file
    quarantined: pl.DataFrame
    quarantined_path: str

    @property
    def rows_by_symbol(self) -> dict[str, int]:
        return by_symbol(self.window.trades)

    @property
    def rejects_by_reason(self) -> dict[str, int]:
        return dict(Counter(self.window.rejects.get_column("reason").to_list()))

    @property
    def gaps_by_reason(self) -> dict[str, float]:
        """reason -> seconds of stream time not observed in the hour (summed over streams)."""
        gaps = self.coverage.filter(pl.col("status") == GAP_STATUS)
        if not gaps.height:
            return {}
        seconds = gaps.group_by("reason").agg(
            ((pl.col("end_time") - pl.col("start_time")).dt.total_nanoseconds().sum() / 1e9).round(3)
        )
        return {str(r): float(s) for r, s in seconds.sort("reason").iter_rows()}


@dataclass(frozen=True, slots=True)
class TradesInputs:
    """What an hour's trades and coverage are computed from (``read_trades_hour``)."""

    hour: int
    parts: list[NormalizedRaw]
    events: pl.DataFrame
    backfill: pl.DataFrame
    #: the collector's events received in the hour itself (its quarantine rows: frames it could not read)
    received: pl.DataFrame


def read_trades_hour(settings: Settings, hour: int, lake: HourRange) -> TradesInputs:
    """The reads of an hour: raw trade frames and collector events received in [hour - lateness, hour + 1h +
    lateness), and the REST history backfilled for those exchange-time minutes. Hours of one ``lake`` are read in
    order (it reads each raw file once); what comes after (``compute_trades_hour``) may run beside the next read."""
    root = settings.root
    read_start, read_end = hour - settings.lateness_ns, hour + HOUR_NS + settings.lateness_ns
    # REST history fetched for these exchange-time minutes, whenever it was fetched
    backfill = read_backfill(root, read_start, read_end)
    events = pl.concat([lake.events(read_start, read_end), read_backfill_events(root, read_start, read_end)])
    received = lake.events(hour, hour + HOUR_NS)
    return TradesInputs(hour, lake.trades(read_start, read_end), events, backfill, received)


def _windows(settings: Settings, reads: Sequence[TradesInputs], lake: HourRange) -> dict[int, TradesWindow]:
    """hour -> its trades window, for consecutive hours at once (``window_trades_many``: each hour gets what it
    would get alone)."""
    return window_trades_many(
        [TradesReads(inputs.hour, inputs.parts, inputs.backfill) for inputs in reads],
        HOUR_NS,
        settings.lateness_ns,
        normalize=lake.normalize,
        skew_ns=settings.skew_ns,
    )


def _coverages(settings: Settings, hours: Sequence[tuple[TradesInputs, TradesWindow]]) -> dict[int, pl.DataFrame]:
    """hour -> its coverage, for consecutive hours at once: each hour's events and observed trades stamped with it
    (``compute_coverage_windows``: each hour gets what it would get alone)."""
    return compute_coverage_windows(
        pl.concat([stamp_window(inputs.events, inputs.hour) for inputs, _ in hours]),
        pl.concat([stamp_window(window.observed, inputs.hour) for inputs, window in hours]),
        [inputs.hour for inputs, _ in hours],
        HOUR_NS,
        kinds=registry_stream_kinds(),
        rules=settings.coverage_rules,
    )


def compute_trades_hour(settings: Settings, inputs: TradesInputs, lake: HourRange) -> TradesHour:
    """Trades with exchange ts in the hour and the coverage of every stream over it, from its reads, written
    (``_write_trades_hour``)."""
    window = _windows(settings, [inputs], lake)[inputs.hour]
    return _write_trades_hour(settings, inputs, window, _coverages(settings, [(inputs, window)])[inputs.hour], lake)


def _write_trades_hour(
    settings: Settings, inputs: TradesInputs, window: TradesWindow, coverage: pl.DataFrame, lake: HourRange
) -> TradesHour:
    """An hour's trades and coverage loaded into PostgreSQL if configured, then written to the lake (rejects,
    quarantine rows, trades, coverage: replacing the hour)."""
    root, hour = settings.root, inputs.hour
    # the sinks first, the lake files last: the hour counts as materialized once its lake files exist, so a failed
    # load fails the hour before anything marks it done, and a retry or the sensor redoes it
    replaced = load_sinks([hour_window("trades", window.trades, hour), hour_window("coverage", coverage, hour)])
    qpath: str | None = quarantine_path(root, "trades", hour)
    assert qpath is not None
    if window.rejects.height:
        write_partition(qpath, window.rejects)
    else:
        remove_file(qpath)
        qpath = None
    quarantined = quarantine_rows(hour, window.rejects, inputs.received)
    quarantined_path = partition_path(root, QUARANTINE_TABLE, hour)
    write_partition(quarantined_path, quarantined)
    path = partition_path(root, "trades", hour)
    write_partition(path, window.trades)
    coverage_path = partition_path(root, "coverage", hour)
    write_partition(coverage_path, coverage)
    lake.published(hour)
    return TradesHour(hour, window, coverage, path, coverage_path, qpath, replaced, quarantined, quarantined_path)


def materialize_trades_hour(
    settings: Settings, hour: int, lake: HourRange | None = None, ahead: Sequence[int] = ()
) -> TradesHour:
    """Trades with exchange ts in [hour, hour + 1h) and the coverage of every stream over the hour, written
    (``_write_trades_hour``). ``lake``: the reader of a range of hours (each raw file read and each frame
    normalized once for all of them); a fresh one reads just this hour's span. ``ahead``: the hours the run does
    after this one, in order: the consecutive ones are computed with it (``_compute_trades``) and kept in ``lake``
    until their turn."""
    lake = lake or HourRange(settings)
    built = lake.trades_built.pop(hour, None)
    if built is None:
        lake.trades_built = _compute_trades(settings, lake, [hour, *(h for h in ahead if h > hour)])
        built = lake.trades_built.pop(hour)
    return _write_trades_hour(settings, *built, lake)


#: raw rows (each hour's window of received ones) whose trades and coverage are computed at once: about six busy
#: hours, or a quiet week
TRADES_ROWS = 1_000_000


def _compute_trades(
    settings: Settings, lake: HourRange, hours: list[int]
) -> dict[int, tuple[TradesInputs, TradesWindow, pl.DataFrame]]:
    """hour -> (reads, trades window, coverage) of ``hours[0]`` and the consecutive hours after it, as many as
    about ``TRADES_ROWS`` raw rows read (``_consecutive``), computed in one pass (``_windows``, ``_coverages``);
    a pass that fails leaves ``hours[0]`` alone: a later hour that broke it fails on its own turn."""
    lateness = settings.lateness_ns
    reads = _consecutive(
        hours,
        lambda hour: read_trades_hour(settings, hour, lake),
        lambda inputs: received_rows(inputs.parts, inputs.hour - lateness, inputs.hour + HOUR_NS + lateness),
        TRADES_ROWS,
        Exception,
    )
    try:
        return _computed(settings, lake, reads)
    except Exception:
        if len(reads) == 1:
            raise
        return _computed(settings, lake, reads[:1])


def _consecutive(
    hours: list[int], read: Callable[[int], T], rows: Callable[[T], int], budget: int, failure: type[Exception]
) -> list[T]:
    """``read(hour)`` of ``hours[0]`` and the consecutive hours after it, until they hold about ``budget`` rows
    (``rows``). A later hour whose read raises ``failure`` ends them: it fails on its own turn, after the hours
    before it are written, naming itself."""
    got: list[T] = []
    total = 0
    for hour in hours:
        if got and (hour != hours[0] + len(got) * HOUR_NS or total >= budget):
            break
        try:
            item = read(hour)
        except failure:
            if not got:
                raise
            break
        got.append(item)
        total += rows(item)
    return got


def _computed(
    settings: Settings, lake: HourRange, reads: list[TradesInputs]
) -> dict[int, tuple[TradesInputs, TradesWindow, pl.DataFrame]]:
    windows = _windows(settings, reads, lake)
    coverage = _coverages(settings, [(inputs, windows[inputs.hour]) for inputs in reads])
    return {inputs.hour: (inputs, windows[inputs.hour], coverage[inputs.hour]) for inputs in reads}


@dataclass(frozen=True, slots=True)
class CandlesHour:
    hour: int
    candles: pl.DataFrame
    path: str
    trades_read: int
    sink_rows_replaced: int
    by_timeframe: dict[str, int] = field(default_factory=dict)

    @property
    def rows_by_symbol(self) -> dict[str, int]:
        return by_symbol(self.candles)

    @property
    def incomplete_by_timeframe(self) -> dict[str, int]:
        counts = self.candles.filter(~pl.col("complete")).group_by("timeframe").len()
        return {str(tf): int(n) for tf, n in counts.iter_rows()}


def _upstream(settings: Settings, table: str, hour: int, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    df = read_partition(partition_path(settings.root, table, hour), schema)
    if df is None:
        raise MissingUpstreamError(f"the {table} partition for {hour_text(hour)} is not materialized")
    return df


def materialize_candles_hour(
    settings: Settings, hour: int, lake: HourRange | None = None, ahead: Sequence[int] = ()
) -> CandlesHour:
    """Candles with close_time in (hour, hour + 1h] that are known closed, from the hour's trades and coverage
    partitions and the stored 1m candles of the hours before (longer timeframes, the price carried into flat
    minutes); loaded into PostgreSQL if configured, then written to the lake partition. ``lake``: the reader of
    a range of hours, which keeps the 1m candles it made for the next hours. ``ahead``: the hours the run does
    after this one, in order: the consecutive ones are built with it in one pass (``_build_candles``) and kept
    in ``lake`` until their turn."""
    lake = lake or HourRange(settings)
    built = lake.candles_built.pop(hour, None)
    if built is None:
        lake.candles_built = _build_candles(settings, lake, [hour, *(h for h in ahead if h > hour)])
        built = lake.candles_built.pop(hour)
    candles, trades_read = built
    replaced = load_sinks([hour_window("candles", candles, hour)])
    path = partition_path(settings.root, "candles", hour)  # last, as for trades: the lake file marks the hour done
    stored = candles.select(list(CANDLES))
    write_partition(path, stored)
    lake.candles_written(hour, stored)
    counts = candles.group_by("timeframe").len()
    by_tf = {str(tf): int(n) for tf, n in counts.iter_rows()}
    return CandlesHour(hour, candles, path, trades_read, replaced, {tf: by_tf.get(tf, 0) for tf in TIMEFRAMES})


#: trades the candles of consecutive hours are built from at once (about ten busy hours; a quiet week)
CANDLE_ROWS = 1_000_000


def _build_candles(settings: Settings, lake: HourRange, hours: list[int]) -> dict[int, tuple[pl.DataFrame, int]]:
    """hour -> (candles, trades read) of ``hours[0]`` and the consecutive hours after it, as many as about
    ``CANDLE_ROWS`` trades (``_consecutive``: an hour whose trades or coverage partition is missing ends them),
    built in one pass (``build_candles_hours``)."""
    upstream = _consecutive(
        hours,
        lambda hour: (_upstream(settings, "trades", hour, TRADES), _upstream(settings, "coverage", hour, COVERAGE)),
        lambda pair: pair[0].height,
        CANDLE_ROWS,
        MissingUpstreamError,
    )
    trades = [hour_trades for hour_trades, _ in upstream]
    coverage = [stamp_window(hour_coverage, hour) for hour, (_, hour_coverage) in zip(hours, upstream, strict=False)]
    # each hour's own coverage: its rows stay apart by their hour
    covered, horizon = symbol_coverage(pl.concat(coverage), registry_trade_channels(), by=[WINDOW])
    start, end = hours[0], hours[0] + len(trades) * HOUR_NS
    earlier = lake.candles_1m(min(candle_range_start(start, end, TIMEFRAMES), start - HOUR_NS), start)
    built = build_candles_hours(pl.concat(trades), covered, horizon, start_ns=start, end_ns=end, earlier_1m=earlier)
    return {hour: (built[hour], t.height) for hour, t in zip(built, trades, strict=True)}
