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
from typing import Any

import numpy as np
import polars as pl

from ._l2 import L2Book

__all__ = ["DEPTH_BPS", "TOP_N", "SideArrays", "book_arrays", "book_metrics", "samples_schema"]

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


#: (bid prices, bid sizes, ask prices, ask sizes) of a book's live levels, best first (``book_arrays``)
SideArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def book_arrays(book: L2Book) -> SideArrays:
    """The book's live levels as arrays, best first: read once per sample, shared by the metrics and the heatmap.
    Sorted, not left in the book's own order, so every sum adds the same numbers in the same order however the
    book was built (a book restored from a checkpoint must give the very same floats as one never cut)."""
    bp, bq = book.arrays("bid")
    ap, aq = book.arrays("ask")
    bi = np.argsort(-bp, kind="stable")
    ai = np.argsort(ap, kind="stable")
    return bp[bi], bq[bi], ap[ai], aq[ai]


def book_metrics(
    book: L2Book,
    *,
    top_n: int = TOP_N,
    depth_bps: Sequence[int] = DEPTH_BPS,
    arrays: SideArrays | None = None,
) -> dict[str, Any] | None:
    """The metric columns of ``samples_schema`` (all but ts/exchange/symbol) for a book; None when a side is empty.
    ``arrays``: ``book_arrays(book)`` when the caller has read them already."""
    bp, bq, ap, aq = arrays if arrays is not None else book_arrays(book)
    if not len(bp) or not len(ap):
        return None
    bb, bsz, ba, asz = float(bp[0]), float(bq[0]), float(ap[0]), float(aq[0])
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
    # sizes summed best first, as a running total (the same additions whatever the book's history)
    bcum, acum = np.cumsum(bq), np.cumsum(aq)
    for x in depth_bps:
        lo, hi = mid * (1.0 - x / 1e4), mid * (1.0 + x / 1e4)
        known_bid, known_ask = lo >= floor, hi <= ceiling
        nb = int(np.searchsorted(-bp, -lo, side="right"))  # bids priced >= lo
        na = int(np.searchsorted(ap, hi, side="right"))  # asks priced <= hi
        bd = float(bcum[nb - 1]) if nb else 0.0
        ad = float(acum[na - 1]) if na else 0.0
        out[f"bid_depth_{x}bps"] = bd if known_bid else None
        out[f"ask_depth_{x}bps"] = ad if known_ask else None
        out[f"imbalance_{x}bps"] = (bd - ad) / (bd + ad) if known_bid and known_ask and bd + ad > 0.0 else None
    out["bid_px"], out["bid_sz"] = bp[:top_n].tolist(), bq[:top_n].tolist()
    out["ask_px"], out["ask_sz"] = ap[:top_n].tolist(), aq[:top_n].tolist()
    return out
