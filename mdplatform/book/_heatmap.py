"""Book heatmaps: resting size per price bucket per side, per time step, from rebuilt books.

A step's row holds the summed size of one side's levels whose price falls in the bucket ``[price, price +
bucket)`` (``price``, the lower edge, is an exact multiple of ``bucket``). Only whole buckets that the book knows are
kept: within ``range_bps`` of the mid, and inside the range the book's last snapshot covered (``L2Book.bid_floor``
/ ``ask_ceiling``): a bucket cut by either bound would understate what rests there. Empty buckets inside the range
have no row (their size is 0); the range itself is in the samples (``bid_floor``/``ask_ceiling``) and the picture
shades what is unknown. ``intensity`` is the size over the largest bucket's of the same step (both sides): 0..1.

Bucket sizes follow the trade heatmap's rules (``mdplatform.transforms.HeatmapBuckets``: configured, 10 USD for
BTC and 1 USD for ETH against USD-like quotes, else about 1 bp of price rounded to the tick).

The 1 m roll-up (``rollup_heatmap``) is the mean resting size per bucket over the minute's valid samples, with
``samples`` (how many) and ``complete`` (every step of the minute was sampled): a minute the book was invalid for
half of is the mean of the half it was known, and says so.

The consolidated heatmap (``consolidate_heatmap``) sums, per base asset, step and bucket, the sizes of the spot
books quoting it in USD-like currencies (USD, USDT, USDC, ...: taken at par, 1:1, no conversion; a stablecoin off
its peg shifts that venue's prices by the discount and the buckets blur accordingly). Perpetuals and futures are
left out: their sizes are contracts on many venues, not base units, and they are other instruments.
``exchange_count`` says how many books had a valid sample at that step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import polars as pl

from ..schemas import PRICE, TS
from ._l2 import L2Book

__all__ = [
    "BOOK_HEATMAP",
    "CONSOLIDATED",
    "BookHeatmapSpec",
    "BucketArrays",
    "SampleBuckets",
    "bucket_arrays",
    "bucket_levels",
    "consolidate_heatmap",
    "heatmap_frame",
    "rollup_heatmap",
    "spot_base",
]

#: ``exchange`` of the consolidated heatmap's rows
CONSOLIDATED = "*"

BOOK_HEATMAP: dict[str, pl.DataType] = {
    "ts": TS,  # the step's start
    "step": pl.String(),  # "1s", "1m"
    "exchange": pl.String(),  # CONSOLIDATED for the cross-exchange one
    "symbol": pl.String(),  # BASE-QUOTE; BASE-USD* for the consolidated one
    "side": pl.String(),  # "bid" | "ask"
    "price": PRICE,  # the bucket's lower edge
    "bucket": PRICE,
    "size": pl.Float64(),  # base units (mean over the step's samples for a roll-up)
    "intensity": pl.Float64(),
    "exchange_count": pl.Int32(),
    "samples": pl.Int32(),
    "complete": pl.Boolean(),
}

# a price on a bucket edge can divide to k - 1e-13 in floats: nudge it up by far less than any tick is of it
_EDGE = 1e-10
_NO_K = np.zeros(0, np.int64)
_NO_SIZE = np.zeros(0, np.float64)

#: (bid bucket indexes, sizes, ask bucket indexes, sizes): int64 and float64 arrays, indexes ascending
BucketArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
#: a sample's time (ns) and buckets
SampleBuckets = tuple[int, BucketArrays]


@dataclass(frozen=True, slots=True)
class BookHeatmapSpec:
    """The bucket size (exact) and how far from the mid the heatmap reaches (basis points)."""

    bucket: Decimal
    range_bps: float = 100.0

    def __post_init__(self) -> None:
        if not self.bucket.is_finite() or self.bucket <= 0:
            raise ValueError(f"a bucket size must be a positive number, not {self.bucket}")
        if not 0 < self.range_bps <= 10_000:
            raise ValueError(f"range_bps must be in (0, 10000], not {self.range_bps}")


def bucket_arrays(book: L2Book, spec: BookHeatmapSpec) -> BucketArrays:
    """The whole buckets the book knows (module doc) that hold a level; bucket ``k`` is ``[k * bucket, (k + 1) *
    bucket)``, each bucket's sizes added best first. Empty when a side is empty."""
    best_bid, best_ask = book.best_bid(), book.best_ask()
    if best_bid is None or best_ask is None:
        return _NO_K, _NO_SIZE, _NO_K, _NO_SIZE
    bucket = float(spec.bucket)
    mid = (best_bid[0] + best_ask[0]) / 2.0
    reach = spec.range_bps / 1e4
    floor = book.bid_floor if book.bid_floor is not None else 0.0
    ceiling = book.ask_ceiling if book.ask_ceiling is not None else math.inf
    # whole buckets only: bids from the first edge at or above the lower bound, asks below the last edge at or
    # under the upper bound (bucket indexes compared, not float prices: k * 0.1 is not an exact float)
    lo = max(mid * (1.0 - reach), floor) / bucket
    hi = min(mid * (1.0 + reach), ceiling) / bucket
    lo_k = math.ceil(lo - lo * _EDGE)
    hi_k = math.floor(hi + hi * _EDGE)
    # a level's index is floor(q + q * _EDGE), q = price / bucket (the nudge as for the bounds)
    bid_k, bid_q = book.bucket_sizes("bid", bucket, _EDGE, lo_k, 1 << 62)
    ask_k, ask_q = book.bucket_sizes("ask", bucket, _EDGE, -(1 << 62), hi_k)
    return bid_k, bid_q, ask_k, ask_q


def bucket_levels(book: L2Book, spec: BookHeatmapSpec) -> tuple[list[int], list[float], list[int], list[float]]:
    """``bucket_arrays`` as lists."""
    bid_k, bid_q, ask_k, ask_q = bucket_arrays(book, spec)
    return bid_k.tolist(), bid_q.tolist(), ask_k.tolist(), ask_q.tolist()


def heatmap_frame(
    samples: Sequence[SampleBuckets], *, exchange: str, symbol: str, bucket: Decimal, step: str
) -> pl.DataFrame:
    """BOOK_HEATMAP rows of one book's samples (ts ascending; exchange_count 1, samples 1, complete); the price is
    ``k * bucket`` exactly; intensity normalized per ts."""
    n = len(samples)
    ts = np.fromiter((at for at, _ in samples), np.int64, n)
    # the table's order as built: per sample its asks, then its bids, each by price
    n_ask = np.fromiter((len(b[2]) for _, b in samples), np.int64, n)
    n_bid = np.fromiter((len(b[0]) for _, b in samples), np.int64, n)
    df = pl.DataFrame(
        {
            "ts": np.repeat(ts, n_ask + n_bid),
            "_bid": np.repeat(np.tile(np.array([False, True]), n), np.column_stack([n_ask, n_bid]).ravel()),
            "_k": np.concatenate([_NO_K, *(k for _, b in samples for k in (b[2], b[0]))]),
            "size": np.concatenate([_NO_SIZE, *(q for _, b in samples for q in (b[3], b[1]))]),
        },
        schema={"ts": pl.Int64(), "_bid": pl.Boolean(), "_k": pl.Int64(), "size": pl.Float64()},
    )
    exact = pl.lit(bucket, PRICE)
    return _finish(
        df.with_columns(
            exchange=pl.lit(exchange, pl.String()),
            symbol=pl.lit(symbol, pl.String()),
            side=pl.when("_bid").then(pl.lit("bid")).otherwise(pl.lit("ask")),
            bucket=exact,
            price=(pl.col("_k").cast(pl.Decimal(38, 0)) * exact).cast(PRICE),
            step=pl.lit(step),
            exchange_count=pl.lit(1, pl.Int32()),
            samples=pl.lit(1, pl.Int32()),
            complete=pl.lit(True),
        ).with_columns(pl.from_epoch("ts", time_unit="ns").dt.replace_time_zone("UTC").cast(TS)),
        one_book=True,
    )


def _finish(df: pl.DataFrame, *, one_book: bool = False) -> pl.DataFrame:
    """Intensity per (exchange, symbol, ts, step), the BOOK_HEATMAP columns in order, sorted by exchange, symbol,
    ts, side and price. ``one_book``: the rows are one book's at one step (exchange, symbol and step the same on
    every row), in that order already (the key is unique per row)."""
    peak = pl.col("size").max().over(*(() if one_book else ("exchange", "symbol", "step")), "ts")
    out = (
        df.with_columns(intensity=pl.when(peak > 0).then(pl.col("size") / peak).otherwise(0.0))
        .select(list(BOOK_HEATMAP))
        .cast(BOOK_HEATMAP)  # type: ignore[arg-type]
    )
    return out if one_book else out.sort("exchange", "symbol", "ts", "side", "price")


def rollup_heatmap(heatmap: pl.DataFrame, samples: pl.DataFrame, *, step_ns: int, step: str) -> pl.DataFrame:
    """Roll ``heatmap`` (one step, e.g. "1s") up to ``step_ns`` (e.g. 1 m): the mean size per bucket over the
    valid samples of each (exchange, symbol) in the step (``samples``: the book samples those rows came from,
    ``ts``/``exchange``/``symbol``). ``complete``: as many samples as the step holds at the samples' interval."""
    if heatmap.is_empty():
        return heatmap.clear()
    fine_ns = _step_ns(heatmap)
    per_step = step_ns // fine_ns
    t = pl.col("ts").dt.epoch("ns")
    start = (t - t % step_ns).alias("_t")
    counts = samples.group_by("exchange", "symbol", start).agg(samples=pl.len().cast(pl.Int32()))
    rolled = (
        heatmap.group_by("exchange", "symbol", start, "side", "price", "bucket")
        .agg(pl.col("size").sum().alias("_sum"))
        .join(counts, on=["exchange", "symbol", "_t"], how="left")
        .with_columns(
            ts=pl.from_epoch("_t", time_unit="ns").dt.replace_time_zone("UTC"),
            step=pl.lit(step),
            size=pl.col("_sum") / pl.col("samples"),
            exchange_count=pl.lit(1, pl.Int32()),
            complete=pl.col("samples") == per_step,
        )
    )
    return _finish(rolled)


def _step_ns(heatmap: pl.DataFrame) -> int:
    steps = heatmap.get_column("step").unique().to_list()
    if len(steps) != 1:
        raise ValueError(f"one step at a time, not {steps}")
    text = str(steps[0])
    units = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
    return int(text[:-1]) * units[text[-1]]


def spot_base(symbol: str, usd_like: frozenset[str]) -> str | None:
    """The base asset of a spot BASE-QUOTE symbol quoted in a USD-like currency; None for anything else (other
    quotes, perpetuals and futures with their suffix)."""
    parts = symbol.split("-")
    if len(parts) == 2 and parts[1] in usd_like:
        return parts[0]
    return None


def consolidate_heatmap(heatmap: pl.DataFrame, usd_like: frozenset[str]) -> tuple[pl.DataFrame, list[str]]:
    """One heatmap per base asset across the spot books quoting it in USD-like currencies (module doc), and the
    books left out of it ("exchange symbol"). Summed size per (ts, step, side, price) over the books with a sample
    at that step; the bucket per base is the coarsest of its books', into which finer buckets are re-cut exactly
    when they divide it; a book whose bucket does not divide it (odd ticks, a configured size) is left out rather
    than smeared across buckets. ``exchange_count``: books summed."""
    empty = heatmap.clear()
    if heatmap.is_empty():
        return empty, []
    keyed = heatmap.with_columns(
        base=pl.col("symbol").map_elements(lambda s: spot_base(s, usd_like), return_dtype=pl.String())
    ).filter(pl.col("base").is_not_null())
    if keyed.is_empty():
        return empty, []
    coarse = keyed.group_by("base").agg(pl.col("bucket").max().alias("_coarse"))
    keyed = keyed.join(coarse, on="base")
    nests = (pl.col("_coarse") % pl.col("bucket")) == 0
    left_out = sorted({f"{e} {s}" for e, s in keyed.filter(~nests).select("exchange", "symbol").iter_rows()})
    keyed = keyed.filter(nests)
    units = (pl.col("price") / pl.col("_coarse")).floor().cast(pl.Decimal(38, 0))
    books = keyed.group_by("base", "ts", "step").agg(
        exchange_count=pl.struct("exchange", "symbol").n_unique().cast(pl.Int32()),
        samples=pl.col("samples").min(),
        complete=pl.col("complete").all(),
    )
    merged = (
        keyed.with_columns(price=(units * pl.col("_coarse")).cast(PRICE), bucket=pl.col("_coarse"))
        .group_by("base", "ts", "step", "side", "price", "bucket")
        .agg(pl.col("size").sum())
        .join(books, on=["base", "ts", "step"])
        .with_columns(exchange=pl.lit(CONSOLIDATED), symbol=pl.col("base") + "-USD*")
    )
    return _finish(merged), left_out
