"""Trades -> OHLCV candles (Binance kline semantics) that say whether they are complete.

A candle covers open_time <= ts < close_time, aligned to epoch multiples of its timeframe. It is published once its
symbol's trade streams are known to have passed its close (``horizon`` from coverage), and it is ``complete`` only
when its whole span was observed:

- a 1m candle with trades is published when some of its minute was observed, ``complete`` when all of it was;
- a 1m minute without trades is published as a flat candle (previous close, zero volume) only when it was wholly
  observed *and* the price carried into it is known: every minute back to the last complete minute with trades
  (or the last complete candle of the previous hour) was complete. A minute the platform did not see gets no
  candle; a flat candle is never made up over an outage;
- a 5m..1d candle aggregates the stored 1m candles of its span; ``complete`` when every one of its minutes has a
  complete 1m candle. ``coverage`` is the observed share of the span.

Numbers are exact decimals (``mdplatform.schemas.PRICE``/``QUOTE``); ``trade_count`` counts fills.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from mdplatform._time import HOUR_NS, MINUTE_NS, ceil_ns, floor_ns
from mdplatform.schemas import CANDLES, PRICE, QUOTE, TIMEFRAMES, TS

from ._intervals import minute_overlap
from ._window import WINDOW as _W
from ._window import split_windows, stamp_window

__all__ = [
    "build_candles",
    "build_candles_hours",
    "candle_range_start",
    "candles_1m",
    "empty_candles",
    "publishing_hours",
    "resample",
    "sort_candles",
]

_KEYS = ["exchange", "symbol"]
_SUMS = ["volume", "quote_volume", "trade_count", "taker_buy_volume", "taker_buy_quote_volume"]


def empty_candles() -> pl.DataFrame:
    return pl.DataFrame(schema=CANDLES)


def sort_candles(candles: pl.DataFrame) -> pl.DataFrame:
    tf_len = pl.col("timeframe").replace_strict(TIMEFRAMES, default=None, return_dtype=pl.Int64)
    return candles.sort([pl.col("exchange"), pl.col("symbol"), tf_len, pl.col("open_time")])


def _as_ts(ns: pl.Expr) -> pl.Expr:
    return pl.from_epoch(ns, time_unit="ns").dt.replace_time_zone("UTC").cast(TS)


def _finish(frame: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """Internal grid (``_t`` = open time ns, ``complete``, ``coverage``) -> CANDLES."""
    length = TIMEFRAMES[timeframe]
    volume = pl.col("volume").cast(PRICE)
    return frame.select(
        exchange=pl.col("exchange"),
        symbol=pl.col("symbol"),
        timeframe=pl.lit(timeframe, pl.String()),
        open_time=_as_ts(pl.col("_t")),
        close_time=_as_ts(pl.col("_t") + length),
        open=pl.col("open"),
        high=pl.col("high"),
        low=pl.col("low"),
        close=pl.col("close"),
        volume=volume,
        quote_volume=pl.col("quote_volume"),
        trade_count=pl.col("trade_count").cast(pl.Int64),
        taker_buy_volume=pl.col("taker_buy_volume"),
        taker_buy_quote_volume=pl.col("taker_buy_quote_volume"),
        # a quotient: rounded half up to the price scale (exact prices lie on that grid, so it stays in [low, high])
        vwap=pl.when(volume > 0).then((pl.col("quote_volume") / volume).cast(PRICE)).otherwise(pl.col("close")),
        complete=pl.col("complete"),
        coverage=pl.col("coverage"),
    ).cast(CANDLES)  # type: ignore[arg-type]


def candles_1m(
    trades: pl.DataFrame,
    covered: pl.DataFrame,
    horizon: pl.DataFrame,
    *,
    start_ns: int,
    end_ns: int,
    prev: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """1m candles for the minutes in [start_ns, end_ns) that are closed (minute end <= the symbol's horizon).

    ``trades``: TRADES rows (those outside [start, end) are ignored). ``covered``/``horizon``: from
    ``symbol_coverage``. ``prev``: CANDLES 1m rows of the minute before ``start_ns`` (seed of flat minutes).
    """
    window = _Windows(start_ns, end_ns, end_ns - start_ns)
    return _finish(_minutes(trades, window.one(covered), window.one(horizon), window, prev), "1m")


@dataclass(frozen=True, slots=True)
class _Windows:
    """[start, end) cut into consecutive windows of ``length`` (an hour, or one window: the whole span), each
    published on its own: its candles as if the others were computed one at a time, in order (``_w``: a row's
    window start)."""

    start: int
    end: int
    length: int

    def __post_init__(self) -> None:
        if self.start % MINUTE_NS or self.end % MINUTE_NS:
            raise ValueError("start_ns and end_ns must be minute boundaries")
        if self.length <= 0 or (self.end - self.start) % self.length:
            raise ValueError("the span is not a whole number of windows")

    def of(self, ns: pl.Expr) -> pl.Expr:
        """The start of the window holding ``ns``."""
        return ns - (ns - self.start) % self.length

    def one(self, df: pl.DataFrame) -> pl.DataFrame:
        """``symbol_coverage`` frames of a single window, with its ``_w``."""
        return stamp_window(df, self.start)


def _minutes(
    trades: pl.DataFrame, covered: pl.DataFrame, horizon: pl.DataFrame, windows: _Windows, prev: pl.DataFrame | None
) -> pl.DataFrame:
    """The internal 1m grid rows that become candles (``_finish``), with ``_w``. ``covered``/``horizon``: each
    window's own ``symbol_coverage`` with its ``_w``; ``prev``: the 1m candles of the minute before the first."""
    start_ns, end_ns = windows.start, windows.end
    ts_i = pl.col("ts").cast(pl.Int64)
    quote = pl.col("price").cast(QUOTE) * pl.col("size")
    buy = pl.col("side") == "buy"
    agg = (
        trades.filter((ts_i >= start_ns) & (ts_i < end_ns))
        .sort(*_KEYS, "ts", maintain_order=True)
        .with_columns(_t=ts_i - ts_i % MINUTE_NS)
        .group_by([*_KEYS, "_t"], maintain_order=True)
        .agg(
            open=pl.col("price").first(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            close=pl.col("price").last(),
            volume=pl.col("size").sum(),
            quote_volume=quote.sum(),
            trade_count=pl.col("fills").sum().cast(pl.Int64),
            taker_buy_volume=pl.col("size").filter(buy).sum(),
            taker_buy_quote_volume=quote.filter(buy).sum(),
        )
    )
    # each window's minutes up to its own horizon
    stops = horizon.select(
        *_KEYS,
        _W,
        _stop=pl.min_horizontal(pl.col(_W) + windows.length, pl.col("horizon").floordiv(MINUTE_NS) * MINUTE_NS),
    )
    grid = (
        stops.with_columns(_t=pl.int_ranges(_W, "_stop", MINUTE_NS, dtype=pl.Int64))
        .explode("_t")
        .filter(pl.col("_t").is_not_null())
        .select(*_KEYS, _W, "_t")
    )
    cover = minute_overlap(covered, _KEYS).rename({"minute": "_t"})
    rows = (
        grid.join(cover, on=[*_KEYS, "_t"], how="left")
        .join(agg, on=[*_KEYS, "_t"], how="left")
        .with_columns(
            covered_ns=pl.col("covered_ns").fill_null(0),
            _traded=pl.col("open").is_not_null(),
        )
        .with_columns(complete=pl.col("covered_ns") >= MINUTE_NS)
    )
    # the price carried into a minute without trades is only known along an unbroken run of complete minutes
    # from the last complete minute that had trades (or the previous hour's last complete candle)
    seed = (
        (prev if prev is not None else empty_candles())
        .filter((pl.col("timeframe") == "1m") & (pl.col("open_time").cast(pl.Int64) == start_ns - MINUTE_NS))
        .select(*_KEYS, _t=pl.lit(start_ns - MINUTE_NS, pl.Int64), close=pl.col("close"), complete=pl.col("complete"))
        .with_columns(_traded=pl.lit(True), _seed=pl.lit(True))
    )
    chain = pl.concat([rows.with_columns(_seed=pl.lit(False)), seed], how="diagonal_relaxed").sort(*_KEYS, "_t")
    # a minute missing from the grid (a window that ended at its horizon) breaks the chain: the next window starts
    # as if seeded by the candle of the minute before it, which does not exist (nothing is carried over a gap)
    step = pl.col("_t") - pl.col("_t").shift(1).over(_KEYS)
    chain = chain.with_columns(_run=(step != MINUTE_NS).fill_null(True).cum_sum().over(_KEYS))
    # _mark: True at a complete minute with trades (its close is the price from then on), False at any minute not
    # wholly observed (the price after it is unknown); forward-filled, it says whether a price is carried
    anchor = pl.when(pl.col("_traded") & pl.col("complete")).then(pl.col("close"))
    chain = chain.with_columns(
        _mark=pl.when(~pl.col("complete")).then(pl.lit(False)).when(anchor.is_not_null()).then(pl.lit(True)),
        _price=anchor,
    ).with_columns(
        _mark=pl.col("_mark").forward_fill().over([*_KEYS, "_run"]),
        _price=pl.col("_price").forward_fill().over([*_KEYS, "_run"]),
    )
    flat = ~pl.col("_traded") & pl.col("complete") & pl.col("_mark").fill_null(False)
    # a minute nobody observed gets no candle, even with trades in it (one an exchange pushed from before the
    # subscription, say): the trades are kept, the minute's other trades are unknown
    seen = pl.col("_traded") & (pl.col("covered_ns") > 0)
    zero_p, zero_q = pl.lit(0).cast(PRICE), pl.lit(0).cast(QUOTE)
    return (
        chain.filter(~pl.col("_seed") & (seen | flat))
        .with_columns(
            *[
                pl.when(flat).then(pl.col("_price")).otherwise(pl.col(c)).alias(c)
                for c in ("open", "high", "low", "close")
            ],
            pl.col("volume").fill_null(zero_p),
            pl.col("quote_volume").fill_null(zero_q),
            pl.col("trade_count").fill_null(0),
            pl.col("taker_buy_volume").fill_null(zero_p),
            pl.col("taker_buy_quote_volume").fill_null(zero_q),
            coverage=(pl.col("covered_ns") / MINUTE_NS).clip(0.0, 1.0),
        )
        .sort(*_KEYS, "_t")
    )


def resample(
    c1m: pl.DataFrame, timeframe: str, *, publish_start_ns: int, publish_end_ns: int, horizon: pl.DataFrame
) -> pl.DataFrame:
    """``timeframe`` candles closing in (publish_start, publish_end] and by the symbol's horizon, from 1m candles
    (every minute of their spans that has a candle must be in ``c1m``)."""
    window = _Windows(publish_start_ns, publish_end_ns, publish_end_ns - publish_start_ns)
    return _finish(_resampled(c1m, timeframe, window, window.one(horizon)), timeframe)


def _resampled(c1m: pl.DataFrame, timeframe: str, windows: _Windows, horizon: pl.DataFrame) -> pl.DataFrame:
    """The internal rows of ``timeframe`` candles closing in the windows, each by the horizon of the window its
    close is in (a candle closing at a window's end belongs to that window), with ``_w``."""
    length = TIMEFRAMES[timeframe]
    minutes = length // MINUTE_NS
    t = pl.col("open_time").cast(pl.Int64)
    close = pl.col("_t") + length
    return (
        c1m.filter(pl.col("timeframe") == "1m")
        .sort([*_KEYS, "open_time"])
        .with_columns(_t=t - t % length)
        .filter((close > windows.start) & (close <= windows.end))
        .group_by([*_KEYS, "_t"], maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            *[pl.col(c).sum() for c in _SUMS],
            _complete=pl.col("complete").sum(),
            # in ns, exact (a 1m candle's share is its observed ns over a minute's, a float that gives them back):
            # a sum of the shares would depend on the order polars adds them in, which differs with the frame
            _covered=(pl.col("coverage") * MINUTE_NS).round().cast(pl.Int64).sum(),
        )
        .with_columns(windows.of(close - 1).alias(_W))
        .join(horizon, on=[*_KEYS, _W])
        .filter(close <= pl.col("horizon"))
        .with_columns(
            complete=pl.col("_complete") == minutes,
            # a whole span is 1 exactly (polars divides a column by a number through its reciprocal: 3e11 / 3e11
            # came out a hair under 1)
            coverage=pl.when(pl.col("_covered") >= length).then(1.0).otherwise(pl.col("_covered") / length),
        )
    )


def candle_range_start(publish_start_ns: int, publish_end_ns: int, timeframes: Iterable[str]) -> int:
    """Earliest open_time of the candles closing in (publish_start, publish_end]: where 1m candles are needed."""
    start = floor_ns(publish_start_ns, MINUTE_NS)
    for tf in timeframes:
        length = TIMEFRAMES[tf]
        first_open = floor_ns(publish_start_ns, length)
        if first_open + length <= publish_end_ns:
            start = min(start, first_open)
    return start


def publishing_hours(hour_ns: int, timeframes: Iterable[str]) -> list[int]:
    """The hour partitions publishing a candle whose span holds the hour starting at ``hour_ns``: the hour itself
    (up to 1h) and the hours in which its 4h and 1d candles close (a candle is published by the hour holding its
    close_time in (H, H + 1h]). What must be redone when that hour's trades change."""
    out = {hour_ns}
    for tf in timeframes:
        close = ceil_ns(hour_ns + HOUR_NS, TIMEFRAMES[tf])
        out.add(close - HOUR_NS)
    return sorted(out)


def build_candles(
    trades: pl.DataFrame,
    covered: pl.DataFrame,
    horizon: pl.DataFrame,
    *,
    publish_start_ns: int,
    publish_end_ns: int,
    earlier_1m: pl.DataFrame | None = None,
    timeframes: Iterable[str] = tuple(TIMEFRAMES),
) -> pl.DataFrame:
    """Every candle of ``timeframes`` closing in (publish_start, publish_end] that is known closed.

    The 1m candles of [publish_start, publish_end) come from ``trades``; longer ones aggregate them with
    ``earlier_1m``, the stored 1m candles from ``candle_range_start(...)`` up to publish_start (the last of them
    also seeds flat minutes). ``covered``/``horizon``: ``symbol_coverage`` of the publish window.
    """
    window = _Windows(publish_start_ns, publish_end_ns, publish_end_ns - publish_start_ns)
    built = _build(trades, window.one(covered), window.one(horizon), window, earlier_1m, timeframes)
    return sort_candles(built.drop(_W)) if built.height else empty_candles()


def build_candles_hours(
    trades: pl.DataFrame,
    covered: pl.DataFrame,
    horizon: pl.DataFrame,
    *,
    start_ns: int,
    end_ns: int,
    earlier_1m: pl.DataFrame | None = None,
) -> dict[int, pl.DataFrame]:
    """``build_candles`` of each hour of [start_ns, end_ns) in one pass: hour -> its candles, equal to building the
    hours one after the other, each with the 1m candles of those before it (a run over a range: a handful of
    queries for all its hours instead of a hundred per hour). ``covered``/``horizon``: each hour's own
    ``symbol_coverage`` with its start in ``_w``; ``earlier_1m``: as ``build_candles``'s, for the first hour."""
    windows = _Windows(start_ns, end_ns, HOUR_NS)
    built = _build(trades, covered, horizon, windows, earlier_1m, TIMEFRAMES)
    parts = split_windows(built, range(start_ns, end_ns, HOUR_NS))
    return {hour: sort_candles(part) if part.height else empty_candles() for hour, part in parts.items()}


def _build(
    trades: pl.DataFrame,
    covered: pl.DataFrame,
    horizon: pl.DataFrame,
    windows: _Windows,
    earlier_1m: pl.DataFrame | None,
    timeframes: Iterable[str],
) -> pl.DataFrame:
    """CANDLES rows of every window, with ``_w``: the window publishing each (its close is in it)."""
    tfs = list(timeframes)
    none = empty_candles().with_columns(**{_W: pl.lit(None, pl.Int64)})
    if horizon.height == 0:
        return none  # no symbol is known to have reached anywhere: no candle is known closed
    earlier = earlier_1m if earlier_1m is not None else empty_candles()
    earlier = earlier.filter(pl.col("timeframe") == "1m").select(list(CANDLES)).cast(CANDLES)  # type: ignore[arg-type]
    minutes = _minutes(trades, covered, horizon, windows, earlier)
    c1m = _finish(minutes, "1m")
    span = pl.concat([earlier.filter(pl.col("open_time").cast(pl.Int64) < windows.start), c1m])
    parts = [c1m.with_columns(minutes.get_column(_W))] if "1m" in tfs else []
    for tf in tfs:
        # a timeframe none of whose candles closes in the windows (a 4h or 1d candle, most hours) has nothing here
        if tf != "1m" and windows.end // TIMEFRAMES[tf] * TIMEFRAMES[tf] > windows.start:
            rows = _resampled(span, tf, windows, horizon)
            parts.append(_finish(rows, tf).with_columns(rows.get_column(_W)))
    return pl.concat(parts) if parts else none
