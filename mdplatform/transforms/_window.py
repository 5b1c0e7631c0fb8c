"""The column that keeps several windows apart when they are computed at once (a range run's hours): every row
carries the start of the window it was read for, and each sort, grouping and join of such a computation is keyed
by it, so each window gets exactly what it gets alone (``window_trades_many``, ``compute_coverage_windows``,
``build_candles_hours``)."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

__all__ = ["WINDOW", "split_windows", "stamp_window"]

#: the window's start, ns (Int64)
WINDOW = "_w"


def stamp_window(df: pl.DataFrame, start: int) -> pl.DataFrame:
    """``df``'s rows as read for the window starting at ``start``."""
    return df.with_columns(pl.lit(start, pl.Int64).alias(WINDOW))


def split_windows(df: pl.DataFrame, starts: Iterable[int]) -> dict[int, pl.DataFrame]:
    """start -> the rows of ``df`` stamped with it, in their order, without the window column (a window without
    rows: an empty frame of the same columns)."""
    parts = df.partition_by(WINDOW, as_dict=True, include_key=False, maintain_order=True)
    empty = df.drop(WINDOW).clear()
    return {start: parts.get((start,), empty) for start in starts}
