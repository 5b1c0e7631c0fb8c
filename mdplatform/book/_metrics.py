"""Metrics of one order-book state: what a ``book_snapshots`` sample holds.

``L2Book`` keeps prices and sizes as floats (parsed from the exchange's decimal strings; a string with at most 15
significant digits round-trips exactly), so every metric here is a float64 computed from those floats: top levels,
best bid/ask and sizes are the exchange's values; mid, spread, microprice, depths and imbalances are float
arithmetic on them (not the exact ``Decimal(38, 12)`` of the trade tables).

Definitions (``bb``/``ba`` best bid/ask price, ``bq``/``aq`` their sizes):
- ``mid = (bb + ba) / 2``; ``spread = ba - bb``; ``spread_bps = spread / mid * 1e4``;
- ``microprice = (bb * aq + ba * bq) / (bq + aq)`` (the size-weighted mid leaning to the thinner side's price);
- ``bid_depth_{X}bps``: summed size of the bid levels with price ``>= mid * (1 - X / 1e4)``; ``ask_depth_{X}bps``:
  the ask levels with price ``<= mid * (1 + X / 1e4)`` (base-asset units, bounds inclusive);
- ``imbalance_{X}bps = (bid_depth - ask_depth) / (bid_depth + ask_depth)`` in [-1, 1], null when both are 0.

A band that reaches past the range the book's snapshot covered (``bid_floor``/``ask_ceiling``, see ``L2Book``) is
null, and so is its imbalance: beyond that range the book is partial and a sum there would understate the depth.
``bid_floor``/``ask_ceiling`` are columns of their own, so a reader sees how far the book is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import polars as pl

from ._l2 import L2Book

__all__ = ["DEPTH_BPS", "TOP_N", "book_metrics", "samples_schema"]

#: depth bands (basis points around mid)
DEPTH_BPS: tuple[int, ...] = (10, 25, 50, 100)
#: levels per side kept in a sample
TOP_N = 25


def samples_schema(depth_bps: Sequence[int] = DEPTH_BPS) -> dict[str, pl.DataType]:
    """Columns of ``book_samples``: identity, best levels and metrics, depth bands, then the top levels per side."""
    f = pl.Float64()
    schema: dict[str, pl.DataType] = {
        "ts": pl.Datetime("ns", "UTC"),
        "exchange": pl.String(),
        "symbol": pl.String(),
        "update_id": pl.Int64(),
        "book_ts": pl.Datetime("ns", "UTC"),  # the time of the last frame the book reflects (its staleness)
        "bid_price": f,
        "bid_size": f,
        "ask_price": f,
        "ask_size": f,
        "mid": f,
        "spread": f,
        "spread_bps": f,
        "microprice": f,
        "bid_floor": f,
        "ask_ceiling": f,
    }
    for x in depth_bps:
        schema[f"bid_depth_{x}bps"] = f
        schema[f"ask_depth_{x}bps"] = f
        schema[f"imbalance_{x}bps"] = f
    for name in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
        schema[name] = pl.List(pl.Float64())
    return schema


@cache
def _band_names(depth_bps: tuple[int, ...]) -> list[tuple[str, str, str]]:
    return [(f"bid_depth_{x}bps", f"ask_depth_{x}bps", f"imbalance_{x}bps") for x in depth_bps]


def book_metrics(
    book: L2Book,
    *,
    top_n: int = TOP_N,
    depth_bps: Sequence[int] = DEPTH_BPS,
) -> dict[str, Any] | None:
    """The metric columns of ``samples_schema`` (all but ts/exchange/symbol) for a book; None when a side is empty.
    Read from the best level outwards, never from the whole book."""
    best_bid, best_ask = book.best_bid(), book.best_ask()
    if best_bid is None or best_ask is None:
        return None
    (bb, bsz), (ba, asz) = best_bid, best_ask
    mid = (bb + ba) / 2.0
    spread = ba - bb
    out: dict[str, Any] = {
        "update_id": book.update_id,
        "bid_price": bb,
        "bid_size": bsz,
        "ask_price": ba,
        "ask_size": asz,
        "mid": mid,
        "spread": spread,
        "spread_bps": spread / mid * 1e4,
        "microprice": (bb * asz + ba * bsz) / (bsz + asz),
    }
    floor = book.bid_floor if book.bid_floor is not None else 0.0
    ceiling = book.ask_ceiling if book.ask_ceiling is not None else float("inf")
    out["bid_floor"] = book.bid_floor
    out["ask_ceiling"] = book.ask_ceiling
    los = [mid * (1.0 - x / 1e4) for x in depth_bps]
    his = [mid * (1.0 + x / 1e4) for x in depth_bps]
    # sizes summed best first (the same additions whatever the book's history): bids priced >= lo, asks <= hi
    bid_depths, ask_depths = book.depth_sums("bid", los), book.depth_sums("ask", his)
    for (bid_name, ask_name, imbalance_name), lo, hi, bd, ad in zip(
        _band_names(tuple(depth_bps)), los, his, bid_depths, ask_depths, strict=True
    ):
        known_bid, known_ask = lo >= floor, hi <= ceiling
        out[bid_name] = bd if known_bid else None
        out[ask_name] = ad if known_ask else None
        out[imbalance_name] = (bd - ad) / (bd + ad) if known_bid and known_ask and bd + ad > 0.0 else None
    out["bid_px"], out["bid_sz"] = book.columns("bid", top_n)
    out["ask_px"], out["ask_sz"] = book.columns("ask", top_n)
    return out
