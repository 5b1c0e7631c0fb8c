"""Candles from the real Binance spot recording (2024-08-08 23:54 .. 08-09 00:05) against an independent
plain-Python computation (candle_reference), through both hour partitions and the hour boundary."""

from __future__ import annotations

import polars as pl
import pytest
from candle_reference import (
    H00,
    H23,
    HOUR,
    MIN,
    Recording,
    Trade,
    assert_candles_match,
    raw_frame,
    reference_candles,
)

from mdplatform.transforms import (
    build_candles,
    candle_range_start,
    candles_1m,
    last_close,
    registry_normalizer,
    resample,
    trades_for_window,
)

SKEW, LATENESS, GRACE = 2 * MIN, 15 * MIN, 1 * 10**9


def _window_trades(rec: Recording) -> dict[int, pl.DataFrame]:
    raw = raw_frame(rec)
    return {
        h: trades_for_window(raw, h, h + HOUR, LATENESS, normalize=registry_normalizer, skew_ns=SKEW).trades
        for h in (H23, H00)
    }


def _watermark(rec: Recording, hour: int) -> int:
    """As the assets do: the newest trade (exchange time) among those the hour's raw window read, less the grace."""
    seen = [t.ts for t in rec.trades if hour - SKEW <= t.recv - t.recv % MIN < hour + HOUR + LATENESS]
    return min(hour + HOUR, max(seen) - GRACE)


def _candles(rec: Recording, hour: int, seed: pl.DataFrame | None = None) -> pl.DataFrame:
    """What the candles partition computes: trades of [range start, hour end) as the lake holds them."""
    windows = _window_trades(rec)
    lake = pl.concat([windows[H23], windows[H00]])
    start = candle_range_start(hour, hour + HOUR, ["1m", "5m", "15m", "1h", "4h", "1d"])
    ts = pl.col("ts").cast(pl.Int64)
    prev = seed if seed is not None else last_close(lake.filter(ts < start), start)
    return build_candles(
        lake.filter((ts >= start) & (ts < hour + HOUR)),
        publish_start_ns=hour,
        publish_end_ns=hour + HOUR,
        limits={"binance": _watermark(rec, hour)},
        prev_close=prev,
    )


def _rows(df: pl.DataFrame) -> list[dict[str, object]]:
    return df.with_columns(pl.col("open_time", "close_time").cast(pl.Int64)).to_dicts()


def test_window_trades_cover_the_recording(spot: Recording) -> None:
    windows = _window_trades(spot)
    assert windows[H23].height == 9738
    assert windows[H00].height == 10166
    both = pl.concat([windows[H23], windows[H00]])
    assert both.height == len(spot.trades) == 19_904
    ids = both.get_column("trade_id").cast(pl.Int64)
    assert ids.to_list() == [t.trade_id for t in spot.trades]  # sorted, contiguous, nothing lost
    assert set(both.get_column("symbol")) == {"BTC-USDT"}


@pytest.mark.parametrize("hour", [H23, H00], ids=["23h", "00h"])
def test_candles_equal_reference(spot: Recording, hour: int) -> None:
    got = _candles(spot, hour)
    expected = reference_candles(spot.trades, hour, _watermark(spot, hour))
    assert_candles_match(_rows(got), expected)
    assert set(got.get_column("exchange")) == {"binance"} and set(got.get_column("symbol")) == {"BTC-USDT"}
    by_tf = dict(got.group_by("timeframe").len().iter_rows())
    if hour == H23:
        # 23:54 .. 23:59, and the one 5m candle that lies wholly in the data (23:55 - 00:00)
        assert by_tf == {"1m": 6, "5m": 1}
    else:
        # the last trade is at 00:05:04.9 (exchange clock): closed up to 00:05:03.9, so 00:00 .. 00:04 and the
        # 5m candle 00:00 - 00:05; 00:05 itself is not known closed
        assert by_tf == {"1m": 5, "5m": 1}


@pytest.mark.parametrize("hour", [H23, H00], ids=["23h", "00h"])
def test_flat_minutes_equal_reference(spot_sparse: Recording, hour: int) -> None:
    got = _candles(spot_sparse, hour)
    expected = reference_candles(spot_sparse.trades, hour, _watermark(spot_sparse, hour))
    assert_candles_match(_rows(got), expected)
    one = got.filter(pl.col("timeframe") == "1m")
    flats = one.filter(pl.col("trade_count") == 0)
    flat_minutes = [t.strftime("%H:%M") for t in flats.get_column("open_time").to_list()]
    # the last trade >= 0.8 is at 00:01:41, so hour 00 is known closed only through 00:01:40: one flat minute
    assert flat_minutes == (["23:59"] if hour == H23 else ["00:00"])
    if hour == H00:
        assert one.height == 1
    assert (flats.get_column("volume") == 0).all() and (flats.get_column("vwap") == flats.get_column("close")).all()
    if hour == H00:
        # 00:00 has no trade >= 0.8: flat at the last such trade before the hour (23:58), found in hour 23
        last_before = [t for t in spot_sparse.trades if t.ts < H00][-1]
        first = one.row(0, named=True)
        assert first["open"] == first["close"] == last_before.price


def test_higher_timeframes_with_a_previous_close(spot: Recording) -> None:
    """With a close known from before the day (lookback), the whole day is one grid: 1h, 4h and 1d candles."""
    first = spot.trades[0]
    seed_trade = Trade(H23 - 23 * HOUR - 1, 0, first.price, first.size, first.buy, first.recv)  # day start - 1 ns
    seed = pl.DataFrame({"exchange": ["binance"], "symbol": ["BTC-USDT"], "close": [first.price]})
    got = _candles(spot, H23, seed=seed)
    expected = reference_candles([seed_trade, *spot.trades], H23, _watermark(spot, H23))
    assert_candles_match(_rows(got), expected)
    by_tf = dict(got.group_by("timeframe").len().iter_rows())
    assert by_tf == {"1m": 60, "5m": 12, "15m": 4, "1h": 1, "4h": 1, "1d": 1}
    day = got.filter(pl.col("timeframe") == "1d").row(0, named=True)
    assert day["trade_count"] == 9738 and day["open"] == first.price


def test_higher_timeframes_aggregate_the_1m_grid(spot_sparse: Recording) -> None:
    windows = _window_trades(spot_sparse)
    trades = pl.concat([windows[H23], windows[H00]])
    c1m = candles_1m(trades, start_ns=H23, limits={"binance": H00 + 5 * MIN})
    five = resample(c1m, "5m")
    assert five.get_column("open_time").dt.strftime("%H:%M").to_list() == ["00:00"]  # 23:55 lacks 23:55, 23:56
    row = five.row(0, named=True)
    minutes = c1m.filter(pl.col("open_time").cast(pl.Int64) >= H00)
    assert row["open"] == minutes.get_column("open")[0] and row["close"] == minutes.get_column("close")[-1]
    assert row["trade_count"] == minutes.get_column("trade_count").sum()
    assert row["volume"] == pytest.approx(minutes.get_column("volume").sum(), rel=1e-12)


def test_range_start_reaches_back_to_the_longest_closing_candle() -> None:
    day = H23 - 23 * HOUR
    tfs = ["1m", "5m", "15m", "1h", "4h", "1d"]
    assert candle_range_start(H23, H23 + HOUR, tfs) == day  # 1d closes at 00:00
    assert candle_range_start(day + 3 * HOUR, day + 4 * HOUR, tfs) == day  # 4h closes at 04:00
    assert candle_range_start(day + 5 * HOUR, day + 6 * HOUR, tfs) == day + 5 * HOUR


def test_no_watermark_no_candles(spot: Recording) -> None:
    windows = _window_trades(spot)
    got = build_candles(windows[H23], publish_start_ns=H23, publish_end_ns=H00, limits={})
    assert got.height == 0
