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

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

import polars as pl

from ._l2 import L2Book, Level

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


def _band_depths(levels: list[Level], bounds: list[float], bids: bool) -> list[float]:
    """Summed size of the (best-first) levels at each bound or better, in one pass over the sizes."""
    keys = [-p for p, _ in levels] if bids else [p for p, _ in levels]
    cum = list(accumulate(q for _, q in levels))
    out: list[float] = []
    for bound in bounds:
        n = bisect_right(keys, -bound if bids else bound)
        out.append(cum[n - 1] if n else 0.0)
    return out


def book_metrics(book: L2Book, *, top_n: int = TOP_N, depth_bps: Sequence[int] = DEPTH_BPS) -> dict[str, Any] | None:
    """The metric columns of ``samples_schema`` (all but ts/exchange/symbol) for a book; None when a side is empty."""
    best_bid, best_ask = book.best_bid(), book.best_ask()
    if best_bid is None or best_ask is None:
        return None
    bb, bq = best_bid
    ba, aq = best_ask
    mid = (bb + ba) / 2.0
    spread = ba - bb
    out: dict[str, Any] = {
        "update_id": book.update_id,
        "bid_price": bb,
        "bid_size": bq,
        "ask_price": ba,
        "ask_size": aq,
        "mid": mid,
        "spread": spread,
        "spread_bps": spread / mid * 1e4,
        "microprice": (bb * aq + ba * bq) / (bq + aq),
    }
    widest = max(depth_bps, default=0)
    bids = book.within("bid", mid * (1.0 - widest / 1e4)) if depth_bps else []
    asks = book.within("ask", mid * (1.0 + widest / 1e4)) if depth_bps else []
    bid_bounds = [mid * (1.0 - x / 1e4) for x in depth_bps]
    ask_bounds = [mid * (1.0 + x / 1e4) for x in depth_bps]
    bid_depths = _band_depths(bids, bid_bounds, True)
    ask_depths = _band_depths(asks, ask_bounds, False)
    floor = book.bid_floor if book.bid_floor is not None else 0.0
    ceiling = book.ask_ceiling if book.ask_ceiling is not None else float("inf")
    out["bid_floor"] = book.bid_floor
    out["ask_ceiling"] = book.ask_ceiling
    for x, bd, ad, lo, hi in zip(depth_bps, bid_depths, ask_depths, bid_bounds, ask_bounds, strict=True):
        known_bid, known_ask = lo >= floor, hi <= ceiling
        out[f"bid_depth_{x}bps"] = bd if known_bid else None
        out[f"ask_depth_{x}bps"] = ad if known_ask else None
        out[f"imbalance_{x}bps"] = (bd - ad) / (bd + ad) if known_bid and known_ask and bd + ad > 0.0 else None
    top_bids, top_asks = book.bids(top_n), book.asks(top_n)
    out["bid_px"] = [p for p, _ in top_bids]
    out["bid_sz"] = [q for _, q in top_bids]
    out["ask_px"] = [p for p, _ in top_asks]
    out["ask_sz"] = [q for _, q in top_asks]
    return out
