"""Data-quality rules for the trades, candles and coverage tables, as pure functions (the asset checks call these).

Numbers are exact decimals, so the rules compare exactly: no tolerance anywhere.
"""

from __future__ import annotations

import polars as pl

from mdplatform.schemas import CANDLES, COVERAGE, TIMEFRAMES, TRADES

from ._coverage import COVERED, GAP_STATUS

__all__ = ["validate_candles", "validate_coverage", "validate_trades"]


def _schema_problems(df: pl.DataFrame, expected: dict[str, pl.DataType]) -> list[str]:
    got = dict(df.schema)
    if list(got) != list(expected):
        return [f"columns {list(got)} != {list(expected)}"]
    return [f"column {c}: {got[c]} != {t}" for c, t in expected.items() if got[c] != t]


def _null_problems(df: pl.DataFrame, nullable: tuple[str, ...] = ()) -> list[str]:
    nulls = df.null_count().row(0, named=True)
    return [f"{n} nulls in {c}" for c, n in nulls.items() if n and c not in nullable]


def _count(df: pl.DataFrame, bad: pl.Expr, what: str) -> list[str]:
    n = df.filter(bad.fill_null(True)).height
    return [f"{n} rows with {what}"] if n else []


def validate_trades(df: pl.DataFrame, start_ns: int | None = None, end_ns: int | None = None) -> list[str]:
    """Problems found in a TRADES frame (empty list: valid). With a window, every ts must be inside it."""
    problems = _schema_problems(df, TRADES)
    if problems:
        return problems
    problems += _null_problems(df)
    problems += _count(df, ~(pl.col("price") > 0), "price not > 0")
    problems += _count(df, ~(pl.col("size") > 0), "size not > 0")
    problems += _count(df, ~pl.col("side").is_in(["buy", "sell"]), "side not buy/sell")
    problems += _count(df, ~(pl.col("fills") >= 1), "fills not >= 1")
    dups = df.height - df.select("exchange", "symbol", "trade_id").unique().height
    if dups:
        problems.append(f"{dups} duplicate (exchange, symbol, trade_id)")
    if start_ns is not None and end_ns is not None:
        ts = pl.col("ts").cast(pl.Int64)
        problems += _count(df, (ts < start_ns) | (ts >= end_ns), "ts outside the partition")
    return problems


def validate_candles(df: pl.DataFrame, start_ns: int | None = None, end_ns: int | None = None) -> list[str]:
    """Problems found in a CANDLES frame. With a window, every close_time must be in (start, end]."""
    problems = _schema_problems(df, CANDLES)
    if problems:
        return problems
    problems += _null_problems(df)
    o, h, lo, c = pl.col("open"), pl.col("high"), pl.col("low"), pl.col("close")
    flat = pl.col("trade_count") == 0
    problems += _count(df, ~(lo > 0), "low not > 0")
    problems += _count(df, ~((lo <= o) & (lo <= c) & (o <= h) & (c <= h)), "OHLC out of order")
    for col in ("volume", "quote_volume", "trade_count", "taker_buy_volume", "taker_buy_quote_volume"):
        problems += _count(df, ~(pl.col(col) >= 0), f"{col} < 0")
    problems += _count(df, pl.col("taker_buy_volume") > pl.col("volume"), "taker_buy_volume > volume")
    problems += _count(
        df, pl.col("taker_buy_quote_volume") > pl.col("quote_volume"), "taker_buy_quote_volume > quote_volume"
    )
    problems += _count(df, flat != (pl.col("volume") == 0), "volume/trade_count mismatch")
    problems += _count(df, flat & ~((o == c) & (h == c) & (lo == c)), "flat candle that is not flat")
    problems += _count(df, (pl.col("vwap") < lo) | (pl.col("vwap") > h), "vwap outside [low, high]")
    problems += _count(df, (pl.col("coverage") < 0) | (pl.col("coverage") > 1), "coverage outside [0, 1]")
    problems += _count(df, pl.col("complete") & (pl.col("coverage") < 1), "complete candle not wholly covered")
    # a flat candle claims nobody traded: only an observed span can say that
    problems += _count(df, flat & ~pl.col("complete") & (pl.col("timeframe") == "1m"), "flat 1m candle not complete")
    length = pl.col("timeframe").replace_strict(TIMEFRAMES, default=None, return_dtype=pl.Int64)
    open_i, close_i = pl.col("open_time").cast(pl.Int64), pl.col("close_time").cast(pl.Int64)
    problems += _count(df, length.is_null(), "unknown timeframe")
    problems += _count(df, (close_i - open_i != length) | (open_i % length != 0), "misaligned open/close time")
    dups = df.height - df.select("exchange", "symbol", "timeframe", "open_time").unique().height
    if dups:
        problems.append(f"{dups} duplicate (exchange, symbol, timeframe, open_time)")
    if start_ns is not None and end_ns is not None:
        problems += _count(df, (close_i <= start_ns) | (close_i > end_ns), "close_time outside the partition")
    return problems


def validate_coverage(df: pl.DataFrame, start_ns: int | None = None, end_ns: int | None = None) -> list[str]:
    """Problems found in a COVERAGE frame: per stream, rows must tile one stretch from the window start without
    overlapping; gaps carry a reason, covered rows none."""
    problems = _schema_problems(df, COVERAGE)
    if problems:
        return problems
    problems += _null_problems(df, nullable=("reason", "detail", "missing"))
    s, e = pl.col("start_time").cast(pl.Int64), pl.col("end_time").cast(pl.Int64)
    problems += _count(df, ~(e > s), "end_time not after start_time")
    problems += _count(df, ~pl.col("status").is_in([COVERED, GAP_STATUS]), "unknown status")
    problems += _count(df, (pl.col("status") == GAP_STATUS) & pl.col("reason").is_null(), "gap without a reason")
    problems += _count(df, (pl.col("status") == COVERED) & pl.col("reason").is_not_null(), "covered row with a reason")
    problems += _count(df, (pl.col("filled") < 0) | (pl.col("filled") > 1), "filled outside [0, 1]")
    keys = ["exchange", "symbol", "channel"]
    tiled = df.sort([*keys, "start_time"]).with_columns(_prev_end=e.shift(1).over(keys))
    problems += _count(
        tiled.filter(pl.col("_prev_end").is_not_null()), s != pl.col("_prev_end"), "rows not tiling their stream"
    )
    if start_ns is not None and end_ns is not None:
        problems += _count(df, (s < start_ns) | (e > end_ns), "rows outside the partition")
        first = tiled.filter(pl.col("_prev_end").is_null())
        problems += _count(first, s != start_ns, "streams not starting at the partition start")
    return problems
