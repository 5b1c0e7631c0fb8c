"""Trades -> OHLCV candles (Binance kline semantics), 1m first, every other timeframe from the 1m grid.

A candle covers open_time <= ts < close_time, aligned to epoch multiples of its timeframe. A minute without
trades after a symbol's first trade is a flat candle at the previous close with zero volume and zero
trade count (vwap = that close), like Binance. Only candles that are closed (close_time <= the exchange's
watermark) are produced, and a higher-timeframe candle only when every one of its minutes is in the 1m
grid, so a candle is never built from part of its span (the start of a recording, a missing lookback).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import polars as pl

from mdplatform._time import MINUTE_NS, floor_ns
from mdplatform.schemas import CANDLES, TIMEFRAMES, TS

__all__ = [
    "PREV_CLOSE",
    "build_candles",
    "candle_range_start",
    "candles_1m",
    "empty_candles",
    "last_close",
    "resample",
    "sort_candles",
]

#: the last traded price of a symbol before some time: seeds flat candles across partition boundaries
PREV_CLOSE: dict[str, pl.DataType] = {"exchange": pl.String(), "symbol": pl.String(), "close": pl.Float64()}

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
    """Internal grid (``_t`` = open time ns) -> CANDLES."""
    length = TIMEFRAMES[timeframe]
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
        volume=pl.col("volume"),
        quote_volume=pl.col("quote_volume"),
        trade_count=pl.col("trade_count").cast(pl.Int64),
        taker_buy_volume=pl.col("taker_buy_volume"),
        taker_buy_quote_volume=pl.col("taker_buy_quote_volume"),
        vwap=pl.when(pl.col("volume") > 0).then(pl.col("quote_volume") / pl.col("volume")).otherwise(pl.col("close")),
    ).cast(CANDLES)  # type: ignore[arg-type]


def last_close(trades: pl.DataFrame, before_ns: int) -> pl.DataFrame:
    """Per (exchange, symbol), the price of the last trade with ts < before_ns (``trades`` sorted as by
    ``sort_trades``)."""
    return (
        trades.filter(pl.col("ts").cast(pl.Int64) < before_ns)
        .group_by(_KEYS, maintain_order=True)
        .agg(close=pl.col("price").last())
        .select([pl.col(c).cast(t) for c, t in PREV_CLOSE.items()])
    )


def candles_1m(
    trades: pl.DataFrame,
    *,
    start_ns: int,
    limits: Mapping[str, int],
    prev_close: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """1m candles from ``start_ns`` (a minute boundary) up to each exchange's limit (close_time <= limit).

    ``trades``: TRADES rows sorted by ``sort_trades`` (rows before ``start_ns`` are ignored).
    ``limits``: exchange -> watermark in ns; exchanges without one get no candles (nothing is known closed).
    ``prev_close``: PREV_CLOSE rows, the last price before ``start_ns``; those symbols are flat from
    ``start_ns``, the others from their first trade's minute.
    """
    if start_ns % MINUTE_NS:
        raise ValueError("start_ns must be a minute boundary")
    ts_i = pl.col("ts").cast(pl.Int64)
    quote = pl.col("price") * pl.col("size")
    buy = pl.col("side") == "buy"
    agg = (
        trades.filter(ts_i >= start_ns)
        .with_columns(_t=ts_i - ts_i % MINUTE_NS)
        .group_by([*_KEYS, "_t"], maintain_order=True)
        .agg(
            open=pl.col("price").first(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            close=pl.col("price").last(),
            volume=pl.col("size").sum(),
            quote_volume=quote.sum(),
            trade_count=pl.len().cast(pl.Int64),
            taker_buy_volume=pl.col("size").filter(buy).sum(),
            taker_buy_quote_volume=quote.filter(buy).sum(),
        )
    )
    seeds = (prev_close if prev_close is not None else pl.DataFrame(schema=PREV_CLOSE)).select(
        *_KEYS, _seed=pl.col("close").cast(pl.Float64)
    )
    limit_frame = pl.DataFrame(
        {"exchange": list(limits), "_stop": [floor_ns(v, MINUTE_NS) for v in limits.values()]},
        schema={"exchange": pl.String(), "_stop": pl.Int64()},
    )
    first_trade = agg.group_by(_KEYS).agg(_first=pl.col("_t").min())
    keys = (
        first_trade.join(seeds, on=_KEYS, how="full", coalesce=True)
        .join(limit_frame, on="exchange", how="inner")
        .with_columns(_from=pl.when(pl.col("_seed").is_not_null()).then(start_ns).otherwise(pl.col("_first")))
    )
    grid = (
        keys.with_columns(_t=pl.int_ranges("_from", "_stop", MINUTE_NS, dtype=pl.Int64))
        .explode("_t")
        .filter(pl.col("_t").is_not_null())
        .select(*_KEYS, "_t", "_seed")
    )
    filled = (
        grid.join(agg, on=[*_KEYS, "_t"], how="left")
        .sort([*_KEYS, "_t"])
        .with_columns(
            _prev=pl.col("close").forward_fill().over(_KEYS).fill_null(pl.col("_seed")),
        )
    )
    flat = pl.col("open").is_null()
    filled = filled.with_columns(
        [pl.when(flat).then(pl.col("_prev")).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low")]
        + [pl.col("_prev").alias("close")]
        + [pl.col(c).fill_null(0) for c in _SUMS]
    )
    return _finish(filled, "1m")


def resample(c1m: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """1m candles (incl. flats, as from ``candles_1m``) -> ``timeframe`` candles with every minute present."""
    if timeframe == "1m":
        return c1m
    length = TIMEFRAMES[timeframe]
    t = pl.col("open_time").cast(pl.Int64)
    return _finish(
        c1m.sort([*_KEYS, "open_time"])
        .with_columns(_t=t - t % length)
        .group_by([*_KEYS, "_t"], maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            *[pl.col(c).sum() for c in _SUMS],
            pl.len().alias("_n"),
        )
        .filter(pl.col("_n") == length // MINUTE_NS),
        timeframe,
    )


def candle_range_start(publish_start_ns: int, publish_end_ns: int, timeframes: Iterable[str]) -> int:
    """Earliest open_time of the candles closing in (publish_start, publish_end]: where trades are needed."""
    start = floor_ns(publish_start_ns, MINUTE_NS)
    for tf in timeframes:
        length = TIMEFRAMES[tf]
        first_open = floor_ns(publish_start_ns, length)
        if first_open + length <= publish_end_ns:
            start = min(start, first_open)
    return start


def build_candles(
    trades: pl.DataFrame,
    *,
    publish_start_ns: int,
    publish_end_ns: int,
    limits: Mapping[str, int],
    prev_close: pl.DataFrame | None = None,
    timeframes: Iterable[str] = tuple(TIMEFRAMES),
) -> pl.DataFrame:
    """Each candle of ``timeframes`` with close_time in (publish_start, publish_end], <= its exchange limit.

    ``trades`` must hold the trades from ``candle_range_start(...)`` on (earlier ones are ignored);
    ``prev_close`` the last price per symbol before that start (``last_close`` over earlier trades).
    """
    tfs = list(timeframes)
    start = candle_range_start(publish_start_ns, publish_end_ns, tfs)
    capped = {ex: min(limit, publish_end_ns) for ex, limit in limits.items()}
    c1m = candles_1m(trades, start_ns=start, limits=capped, prev_close=prev_close)
    close_i = pl.col("close_time").cast(pl.Int64)
    parts = [resample(c1m, tf).filter((close_i > publish_start_ns) & (close_i <= publish_end_ns)) for tf in tfs]
    return sort_candles(pl.concat(parts)) if parts else empty_candles()
