"""What the per-exchange end-to-end tests (``test_<exchange>_live.py``) share: waiting for the ingestor, and the
candles of a lake as the assets compute them (trades of the hour, coverage, then candles)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import polars as pl

from mdplatform.lake import read_events, read_raw
from mdplatform.transforms import (
    HOUR_NS,
    build_candles,
    compute_coverage,
    registry_normalizer,
    registry_stream_kinds,
    registry_trade_channels,
    symbol_coverage,
    trades_for_window,
)

__all__ = ["lake_candles", "live_candles", "until"]


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in time: {what}")
        await asyncio.sleep(0.02)


def lake_candles(lake: str, hour: int, timeframe: str | None = None) -> pl.DataFrame:
    """The candles of the hour starting at ``hour`` (every timeframe, or only ``timeframe`` sorted by symbol and
    open time), from the lake's raw frames and events."""
    lo, hi = hour - HOUR_NS, hour + 2 * HOUR_NS
    window = trades_for_window(
        read_raw(lake, lo, hi), hour, hour + HOUR_NS, HOUR_NS, normalize=registry_normalizer, skew_ns=10**10
    )
    cov = compute_coverage(
        read_events(lake, lo, hi), window.observed, hour, hour + HOUR_NS, kinds=registry_stream_kinds()
    )
    covered, horizon = symbol_coverage(cov, registry_trade_channels())
    candles = build_candles(window.trades, covered, horizon, publish_start_ns=hour, publish_end_ns=hour + HOUR_NS)
    if timeframe is None:
        return candles
    return candles.filter(pl.col("timeframe") == timeframe).sort("symbol", "open_time")


def live_candles(lake: str, first_hour: int, timeframe: str | None = None) -> pl.DataFrame:
    """``lake_candles`` of every hour from the rebased recording's first one to now: rebased to end just before the
    minute the test runs in, the recording straddles two hours when that is one of an hour's first minutes."""
    hours = range(first_hour, time.time_ns(), HOUR_NS)
    return pl.concat([lake_candles(lake, h, timeframe) for h in hours]).sort("symbol", "timeframe", "open_time")
