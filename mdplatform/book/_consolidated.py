"""The consolidated book: per base asset and time step, the best bid/ask across exchanges, depth and imbalance,
which books contributed and how stale each one was.

Inputs are book samples (``samples_schema``) of any number of (exchange, symbol) on the same grid. Books that
count: spot BASE-QUOTE symbols quoted in a USD-like currency (``spot_base``; USD, USDT, USDC... at par, as the
consolidated heatmap takes them), with a valid sample at the step: a book that was invalid, silent or
disconnected then has no sample and is simply not in ``exchanges``.

- ``best_bid``/``best_ask``: the highest bid and lowest ask over those books, with the exchange that has it (the
  first by name on a tie); ``crossed``: best_bid >= best_ask (one venue's bid above another's ask: a real,
  short-lived arbitrage, or a stale book; ``staleness_ms`` tells which);
- ``bid_depth_{X}bps``/``ask_depth_{X}bps``: the sum of each book's own band (within X bp of its own mid), null
  when any contributing book's band is null (beyond what its snapshot covered: the sum would understate it);
  ``imbalance_{X}bps`` from those sums;
- ``exchanges``, ``symbols``, ``staleness_ms``: the contributing books, in the same order (by exchange, symbol),
  and the age of each book at the step (step time minus the time of the last frame it reflects).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from ..schemas import TS
from ._heatmap import spot_base
from ._metrics import DEPTH_BPS

__all__ = ["CONSOLIDATED_BOOK", "consolidated_book", "consolidated_schema"]


def consolidated_schema(depth_bps: Sequence[int] = DEPTH_BPS) -> dict[str, pl.DataType]:
    f = pl.Float64()
    schema: dict[str, pl.DataType] = {
        "ts": TS,
        "base": pl.String(),
        "best_bid": f,
        "best_bid_exchange": pl.String(),
        "best_ask": f,
        "best_ask_exchange": pl.String(),
        "mid": f,
        "crossed": pl.Boolean(),
    }
    for x in depth_bps:
        schema[f"bid_depth_{x}bps"] = f
        schema[f"ask_depth_{x}bps"] = f
        schema[f"imbalance_{x}bps"] = f
    schema["exchange_count"] = pl.Int32()
    schema["exchanges"] = pl.List(pl.String())
    schema["symbols"] = pl.List(pl.String())
    schema["staleness_ms"] = pl.List(f)
    return schema


CONSOLIDATED_BOOK = consolidated_schema()


def consolidated_book(
    samples: pl.DataFrame, usd_like: frozenset[str], depth_bps: Sequence[int] = DEPTH_BPS
) -> pl.DataFrame:
    """``consolidated_schema`` rows of book samples (module doc), sorted by base and time."""
    schema = consolidated_schema(depth_bps)
    keyed = samples.with_columns(
        base=pl.col("symbol").map_elements(lambda s: spot_base(s, usd_like), return_dtype=pl.String())
    ).filter(pl.col("base").is_not_null())
    if keyed.is_empty():
        return pl.DataFrame(schema=schema)
    keyed = keyed.sort("base", "ts", "exchange", "symbol")
    age_ms = (pl.col("ts") - pl.col("book_ts")).dt.total_microseconds() / 1e3
    aggs: list[pl.Expr] = [
        pl.col("bid_price").max().alias("best_bid"),
        pl.col("exchange")
        .sort_by("bid_price", descending=True, maintain_order=True)
        .first()
        .alias("best_bid_exchange"),
        pl.col("ask_price").min().alias("best_ask"),
        pl.col("exchange").sort_by("ask_price", maintain_order=True).first().alias("best_ask_exchange"),
        pl.len().cast(pl.Int32()).alias("exchange_count"),
        pl.col("exchange").alias("exchanges"),
        pl.col("symbol").alias("symbols"),
        age_ms.alias("staleness_ms"),
    ]
    for x in depth_bps:
        for side in ("bid", "ask"):
            col = pl.col(f"{side}_depth_{x}bps")
            aggs.append(pl.when(col.null_count() == 0).then(col.sum()).alias(f"{side}_depth_{x}bps"))
    out = keyed.group_by("base", "ts", maintain_order=True).agg(aggs)
    bands = []
    for x in depth_bps:
        bid, ask = pl.col(f"bid_depth_{x}bps"), pl.col(f"ask_depth_{x}bps")
        bands.append(pl.when(bid + ask > 0).then((bid - ask) / (bid + ask)).alias(f"imbalance_{x}bps"))
    return (
        out.with_columns(
            *bands,
            mid=(pl.col("best_bid") + pl.col("best_ask")) / 2.0,
            crossed=pl.col("best_bid") >= pl.col("best_ask"),
        )
        .select(list(schema))
        .cast(schema)  # type: ignore[arg-type]
    )
