"""Data-quality rules for the trades, candles and coverage tables, as pure functions (the asset checks call these).

Numbers are exact decimals, so the rules compare exactly: no tolerance anywhere.
"""

from __future__ import annotations

import polars as pl

from mdplatform.schemas import CANDLES, COVERAGE, TIMEFRAMES, TRADES

from ._coverage import COVERED, GAP_STATUS

__all__ = [
    "validate_book_heatmap",
    "validate_book_snapshots",
    "validate_candles",
    "validate_coverage",
    "validate_trades",
]


def _schema_problems(df: pl.DataFrame, expected: dict[str, pl.DataType]) -> list[str]:
    got = dict(df.schema)
    if list(got) != list(expected):
        return [f"columns {list(got)} != {list(expected)}"]
    return [f"column {c}: {got[c]} != {t}" for c, t in expected.items() if got[c] != t]


def _null_problems(df: pl.DataFrame, nullable: tuple[str, ...] = ()) -> list[str]:
    nulls = df.null_count().row(0, named=True)
    return [f"{n} nulls in {c}" for c, n in nulls.items() if n and c not in nullable]


def _count(df: pl.DataFrame, bad: pl.Expr, what: str) -> list[str]:
    if df.height == 0:
        return []  # no row breaks a rule (an hour nothing was observed in has a dozen to check)
    n = df.select(bad.fill_null(True).sum()).item()
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


def _in_window(df: pl.DataFrame, col: str, start_ns: int | None, end_ns: int | None) -> list[str]:
    t = pl.col(col).dt.epoch("ns")
    problems: list[str] = []
    if start_ns is not None:
        problems += _count(df, t < start_ns, f"{col} before the window")
    if end_ns is not None:
        problems += _count(df, t >= end_ns, f"{col} at or after the window's end")
    return problems


def validate_book_snapshots(
    df: pl.DataFrame, start_ns: int | None = None, end_ns: int | None = None, invalid: pl.DataFrame | None = None
) -> list[str]:
    """Problems found in book samples (``samples_schema``): a valid book is never crossed or empty at the top,
    metrics are consistent with its levels, one sample per book and step, the book's last frame is not after
    the sample, imbalances are in [-1, 1]; with ``invalid`` (``book_invalid`` rows) no sample lies in one of
    its spans."""
    from mdplatform.book import samples_schema

    problems = _schema_problems(df, samples_schema())
    if problems:
        return problems
    nullable = tuple(
        c for c in df.columns if "depth" in c or "imbalance" in c or c in ("update_id", "bid_floor", "ask_ceiling")
    )
    problems += _null_problems(df, nullable)
    problems += _in_window(df, "ts", start_ns, end_ns)
    problems += _count(df, ~(pl.col("bid_price") < pl.col("ask_price")), "a crossed or locked book (bid >= ask)")
    problems += _count(df, ~((pl.col("bid_size") > 0) & (pl.col("ask_size") > 0)), "a best level of size 0")
    problems += _count(df, pl.col("book_ts") > pl.col("ts"), "book_ts after the sample")
    problems += _count(
        df, pl.col("bid_px").list.first() != pl.col("bid_price"), "a top bid level other than the best bid"
    )
    for c in (c for c in df.columns if c.startswith("imbalance_")):
        problems += _count(df.filter(pl.col(c).is_not_null()), ~pl.col(c).is_between(-1.0, 1.0), f"{c} outside [-1, 1]")
    dup = df.height - df.select("exchange", "symbol", "ts").unique().height
    if dup:
        problems.append(f"{dup} duplicate (exchange, symbol, ts)")
    if invalid is not None and invalid.height and df.height:
        inside = df.join(invalid, on=["exchange", "symbol"]).filter(
            (pl.col("ts") >= pl.col("start")) & (pl.col("ts") < pl.col("end"))
        )
        if inside.height:
            problems.append(f"{inside.height} samples inside an invalid span")
    return problems


def validate_book_heatmap(df: pl.DataFrame, start_ns: int | None = None, end_ns: int | None = None) -> list[str]:
    """Problems found in book heatmap rows (``BOOK_HEATMAP``): sizes > 0, intensity in (0, 1] with a 1 per step,
    edges exact multiples of the bucket, steps 1s/1m, counts >= 1, ``complete`` only with every sample."""
    from mdplatform.book import BOOK_HEATMAP

    problems = _schema_problems(df, BOOK_HEATMAP)
    if problems:
        return problems
    problems += _null_problems(df)
    problems += _in_window(df, "ts", start_ns, end_ns)
    problems += _count(df, ~(pl.col("size") > 0), "size not > 0")
    problems += _count(df, ~((pl.col("intensity") > 0) & (pl.col("intensity") <= 1)), "intensity outside (0, 1]")
    problems += _count(df, (pl.col("price") % pl.col("bucket")) != 0, "a price that is not a bucket edge")
    problems += _count(df, ~pl.col("side").is_in(["bid", "ask"]), "a side other than bid/ask")
    problems += _count(df, (pl.col("exchange_count") < 1) | (pl.col("samples") < 1), "a count < 1")
    problems += _count(df, (pl.col("step") == "1s") & (pl.col("samples") != 1), "a 1 s step of more than one sample")
    peaks = df.group_by("exchange", "symbol", "step", "ts").agg(pl.col("intensity").max())
    problems += _count(peaks, pl.col("intensity") != 1.0, "a step whose largest bucket's intensity is not 1")
    return problems
