"""Interval arithmetic on integer nanoseconds, vectorized where the row counts can be large."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import polars as pl

from mdplatform._time import MINUTE_NS

__all__ = ["Span", "covering", "key_ids", "merge_intervals", "minute_overlap", "overlap_ns"]

#: [start, end) in ns
Span = tuple[int, int]


def key_ids(df: pl.DataFrame, keys: Sequence[str], name: str = "_key") -> tuple[pl.DataFrame, pl.DataFrame]:
    """(``df`` with ``name``: a dense integer per distinct ``keys`` value, in the keys' sorted order; the table from
    it back to the keys). Sorting, windows and groups on one integer cost a fraction of what they cost on several
    string columns (streams: exchange, channel, symbol, connection), with the same order and groups.

    The keys come in long runs of one value (a connection's frames, in receive order): the runs are found by
    comparing neighbours, and only each run's first row is matched to its id (matching every row on the string
    columns cost three times as much)."""
    k = list(keys)
    run = df.select(pl.struct(k).rle_id()).to_series()
    heads = df.select(k).with_columns(_run=run).unique(subset="_run", keep="first", maintain_order=True)
    ids = heads.select(k).unique().sort(k).with_row_index(name)
    head_ids = heads.join(ids, on=k, how="left", nulls_equal=True, maintain_order="left").get_column(name)
    return df.drop(k).with_columns(head_ids.gather(run)), ids


#: rows up to which ``merge_intervals`` merges in Python: a dozen polars calls cost about 4 ms whatever the rows, which
#: an hour's few coverage rows (a candles check of every hour of a month) paid each time
_SMALL = 2_000


def merge_intervals(df: pl.DataFrame, keys: Sequence[str], start: str = "start", end: str = "end") -> pl.DataFrame:
    """Per ``keys``, the union of the rows' [start, end] intervals as disjoint sorted rows (touching ones join),
    ordered by the keys, then start."""
    df = df.select(*keys, start, end)
    if df.height == 0:
        return df
    if df.height <= _SMALL and not any(df.get_column(c).has_nulls() for c in df.columns):
        return _merged_rows(df, len(keys))
    keyed, ids = key_ids(df, keys, "_merge_key")
    return (
        keyed.sort(["_merge_key", start])
        .with_columns(_prev_end=pl.col(end).cum_max().shift(1).over("_merge_key"))
        .with_columns(_new=(pl.col(start) > pl.col("_prev_end")).fill_null(True))
        .with_columns(_group=pl.col("_new").cum_sum().over("_merge_key"))
        .group_by(["_merge_key", "_group"], maintain_order=True)
        .agg(pl.col(start).min(), pl.col(end).max())
        .join(ids, on="_merge_key", how="left", maintain_order="left")
        .select(*keys, start, end)
    )


def _merged_rows(df: pl.DataFrame, n_keys: int) -> pl.DataFrame:
    """``merge_intervals`` of a few rows without nulls, in Python (the same order: Python orders strings by
    code point, as polars orders them by their UTF-8 bytes)."""
    out: list[tuple[Any, ...]] = []
    for row in sorted(df.iter_rows()):
        key, s, e = row[:n_keys], row[n_keys], row[n_keys + 1]
        if out and out[-1][:n_keys] == key and s <= out[-1][-1]:
            out[-1] = (*key, out[-1][-2], max(out[-1][-1], e))
        else:
            out.append(row)
    return pl.DataFrame(out, schema=df.schema, orient="row")


def covering(spans: Sequence[Span], lo: int, hi: int) -> int | None:
    """Index of the span in sorted disjoint ``spans`` that contains [lo, hi), or None."""
    i = bisect_right(spans, (lo, 2**63)) - 1
    if i >= 0 and spans[i][0] <= lo and spans[i][1] >= hi:
        return i
    return None


def overlap_ns(spans: Sequence[Span], lo: int, hi: int) -> int:
    """Length of [lo, hi) covered by sorted disjoint ``spans``."""
    total = 0
    i = max(0, bisect_right(spans, (lo, 2**63)) - 1)
    while i < len(spans) and spans[i][0] < hi:
        s, e = spans[i]
        total += max(0, min(e, hi) - max(s, lo))
        i += 1
    return total


def minute_overlap(spans: pl.DataFrame, keys: Sequence[str], start: str = "start", end: str = "end") -> pl.DataFrame:
    """Per ``keys`` and minute (``minute``: start ns), how many ns of it disjoint [start, end) rows cover."""
    k = list(keys)
    if spans.height == 0:
        return pl.DataFrame(schema={**dict(spans.select(k).schema), "minute": pl.Int64, "covered_ns": pl.Int64})
    s, e = pl.col(start), pl.col(end)
    first = s - s % MINUTE_NS
    return (
        spans.filter(e > s)
        .with_columns(minute=pl.int_ranges(first, e, MINUTE_NS, dtype=pl.Int64))
        .explode("minute")
        .with_columns(
            covered_ns=pl.min_horizontal(e, pl.col("minute") + MINUTE_NS) - pl.max_horizontal(s, pl.col("minute"))
        )
        .group_by([*k, "minute"])
        .agg(pl.col("covered_ns").sum())
    )
