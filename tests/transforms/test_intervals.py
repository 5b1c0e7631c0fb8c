"""Interval arithmetic: ``merge_intervals`` merges a few rows in Python and many in polars; both give the same rows,
in the same order, whatever the keys (strings beyond ASCII, integers) and however the intervals touch or nest."""

from __future__ import annotations

import random
from itertools import pairwise

import polars as pl
import pytest

import mdplatform.transforms._intervals as intervals
from mdplatform.transforms._intervals import merge_intervals


def _frame(seed: int, rows: int) -> pl.DataFrame:
    rng = random.Random(seed)
    symbols = ["BTC-USDT", "ETH-USDT", "Äpfel-EUR", "ZZ", "btc-usdt", "€-USD"]
    starts = [rng.randrange(0, 10_000) for _ in range(rows)]
    return pl.DataFrame(
        {
            "exchange": [rng.choice(["binance", "okx", "kraken"]) for _ in range(rows)],
            "symbol": [rng.choice(symbols) for _ in range(rows)],
            "_w": [rng.choice([3_600, 0, 7_200]) for _ in range(rows)],
            # touching (end = next start), nested, zero-length and far apart intervals
            "start": starts,
            "end": [s + rng.choice([0, 1, 5, 50, 500, 3_000]) for s in starts],
        },
        schema={"exchange": pl.String, "symbol": pl.String, "_w": pl.Int64, "start": pl.Int64, "end": pl.Int64},
    )


@pytest.mark.parametrize("seed", range(20))
def test_the_python_merge_of_a_few_rows_equals_the_polars_merge(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    df = _frame(seed, rows=[1, 2, 7, 60, 400][seed % 5])
    for keys in (["exchange", "symbol"], ["exchange", "symbol", "_w"], ["_w"]):
        small = merge_intervals(df, keys)
        with monkeypatch.context() as patch:
            patch.setattr(intervals, "_SMALL", -1)
            large = merge_intervals(df, keys)
        assert small.equals(large), keys
        assert small.schema == pl.Schema({**{k: df.schema[k] for k in keys}, "start": pl.Int64, "end": pl.Int64})
        # disjoint per key, sorted, and covering exactly what the rows covered
        for key, group in small.group_by(keys, maintain_order=True):
            spans = group.select("start", "end").rows()
            assert all(a[1] < b[0] for a, b in pairwise(spans)), key


def test_touching_intervals_join_and_apart_ones_stay_apart() -> None:
    df = pl.DataFrame({"k": ["a", "a", "a", "a", "b"], "start": [10, 0, 5, 20, 0], "end": [15, 5, 10, 30, 1]})
    assert merge_intervals(df, ["k"]).rows() == [("a", 0, 15), ("a", 20, 30), ("b", 0, 1)]
    with_null = df.with_columns(k=pl.when(pl.col("k") == "b").then(None).otherwise("k"))
    assert merge_intervals(with_null, ["k"]).rows() == [(None, 0, 1), ("a", 0, 15), ("a", 20, 30)]  # polars' way
