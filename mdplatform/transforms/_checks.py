"""Data-quality rules for the trades and candles tables, as pure functions (the asset checks call these)."""

from __future__ import annotations

import polars as pl

from mdplatform.schemas import CANDLES, TIMEFRAMES, TRADES

__all__ = ["validate_candles", "validate_trades"]

#: relative slack for comparisons between float sums computed in different orders
_REL = 1e-9


def _schema_problems(df: pl.DataFrame, expected: dict[str, pl.DataType]) -> list[str]:
    got = dict(df.schema)
    if list(got) != list(expected):
        return [f"columns {list(got)} != {list(expected)}"]
    return [f"column {c}: {got[c]} != {t}" for c, t in expected.items() if got[c] != t]


def _null_problems(df: pl.DataFrame) -> list[str]:
    nulls = df.null_count().row(0, named=True)
    return [f"{n} nulls in {c}" for c, n in nulls.items() if n]


def _count(df: pl.DataFrame, bad: pl.Expr, what: str) -> list[str]:
    n = df.filter(bad.fill_null(True)).height
    return [f"{n} rows with {what}"] if n else []


def validate_trades(df: pl.DataFrame, start_ns: int | None = None, end_ns: int | None = None) -> list[str]:
    """Problems found in a TRADES frame (empty list: valid). With a window, every ts must be inside it."""
    problems = _schema_problems(df, TRADES)
    if problems:
        return problems
    problems += _null_problems(df)
    problems += _count(df, ~(pl.col("price") > 0) | ~pl.col("price").is_finite(), "price not > 0")
    problems += _count(df, ~(pl.col("size") > 0) | ~pl.col("size").is_finite(), "size not > 0")
    problems += _count(df, ~pl.col("side").is_in(["buy", "sell"]), "side not buy/sell")
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
    problems += _count(df, ~(lo > 0), "low not > 0")
    problems += _count(df, ~((lo <= o) & (lo <= c) & (o <= h) & (c <= h)), "OHLC out of order")
    problems += _count(df, ~(pl.col("volume") >= 0), "volume < 0")
    problems += _count(df, ~(pl.col("quote_volume") >= 0), "quote_volume < 0")
    problems += _count(df, ~(pl.col("trade_count") >= 0), "trade_count < 0")
    problems += _count(df, ~(pl.col("taker_buy_volume") >= 0), "taker_buy_volume < 0")
    problems += _count(df, pl.col("taker_buy_volume") > pl.col("volume") * (1 + _REL), "taker_buy_volume > volume")
    problems += _count(
        df,
        pl.col("taker_buy_quote_volume") > pl.col("quote_volume") * (1 + _REL),
        "taker_buy_quote_volume > quote_volume",
    )
    problems += _count(df, (pl.col("trade_count") == 0) != (pl.col("volume") == 0), "volume/trade_count mismatch")
    problems += _count(
        df, (pl.col("trade_count") == 0) & ~((o == c) & (h == c) & (lo == c)), "flat candle that is not flat"
    )
    problems += _count(
        df,
        (pl.col("vwap") < lo * (1 - _REL)) | (pl.col("vwap") > h * (1 + _REL)),
        "vwap outside [low, high]",
    )
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
