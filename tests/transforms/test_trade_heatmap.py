"""trade_heatmap: hand-computed buckets, and on the real Binance recording the per-minute bucket totals equal the
minute's traded volume by taker side, exactly."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from candle_reference import H00, H23, HOUR, MIN, Recording, spot_files

from mdplatform.capture import import_capture
from mdplatform.lake import read_raw
from mdplatform.schemas import TRADES
from mdplatform.transforms import (
    HEATMAP,
    HeatmapBuckets,
    one_bp_bucket,
    registry_normalizer,
    trade_heatmap,
    trades_for_window,
)

D = Decimal
T0 = 1723161600 * 10**9  # 2024-08-09 00:00 UTC


def _trades(rows: list[tuple[str, int, str, str, str, int]]) -> pl.DataFrame:
    """(symbol, ts ns, price, size, side, fills) -> TRADES rows on binance."""
    return pl.DataFrame(
        {
            "exchange": ["binance"] * len(rows),
            "symbol": [r[0] for r in rows],
            "ts": [r[1] for r in rows],
            "recv_ts": [r[1] for r in rows],
            "trade_id": [str(i) for i in range(len(rows))],
            "price": [D(r[2]) for r in rows],
            "size": [D(r[3]) for r in rows],
            "side": [r[4] for r in rows],
            "fills": [r[5] for r in rows],
        }
    ).cast(TRADES)  # type: ignore[arg-type]


def test_hand_computed_btc_and_eth() -> None:
    s = 10**9
    trades = _trades(
        [
            ("BTC-USDT", T0 + 1 * s, "60012.34", "0.5", "buy", 1),
            ("BTC-USDT", T0 + 2 * s, "60019.99", "0.25", "sell", 3),
            ("BTC-USDT", T0 + 3 * s, "60010.00", "0.125", "buy", 1),  # on the edge: its own bucket's lower edge
            ("BTC-USDT", T0 + 4 * s, "60009.99", "1", "sell", 1),  # one cent lower: the bucket below
            ("BTC-USDT", T0 + 61 * s, "60031", "0.001", "buy", 2),  # next minute
            ("ETH-USDT", T0 + 5 * s, "2600.50", "3", "buy", 1),
            ("ETH-USDT", T0 + 6 * s, "2600.99", "1.5", "sell", 1),
        ]
    )
    got = trade_heatmap(trades)
    assert got.schema == pl.Schema(HEATMAP)
    rows = [
        (
            r["minute"].strftime("%H:%M"),
            r["symbol"],
            r["price_bucket"],
            r["bucket_size"],
            r["buy_size"],
            r["sell_size"],
            r["buy_count"],
            r["sell_count"],
            r["intensity"],
        )
        for r in got.iter_rows(named=True)
    ]
    assert rows == [
        # 60000..60010: 1 sold; 60010..60020: 0.625 bought, 0.25 sold (0.875, the minute's largest)
        ("00:00", "BTC-USDT", D("60000"), D(10), D(0), D(1), 0, 1, 1.0),
        ("00:00", "BTC-USDT", D("60010"), D(10), D("0.625"), D("0.25"), 2, 3, 0.875),
        ("00:01", "BTC-USDT", D("60030"), D(10), D("0.001"), D(0), 2, 0, 1.0),
        ("00:00", "ETH-USDT", D("2600"), D(1), D(3), D("1.5"), 1, 1, 1.0),
    ]
    assert got.get_column("minute").to_list()[0] == datetime(2024, 8, 9, tzinfo=UTC)


def test_one_bucket_for_all_and_configured_sizes() -> None:
    trades = _trades(
        [
            ("BTC-USDT", T0, "60012.34", "0.5", "buy", 1),
            ("SOL-USDT", T0, "150.1234", "2", "sell", 1),
            ("SOL-USDT", T0 + 1, "150.0049", "1", "sell", 1),
        ]
    )
    flat = trade_heatmap(trades, D("0.5"))
    assert flat.select("symbol", "price_bucket").rows() == [("BTC-USDT", D("60012.0")), ("SOL-USDT", D("150.0"))]
    assert flat.get_column("sell_size").to_list() == [D(0), D(3)]
    rules = HeatmapBuckets(sizes={"BTC": D(25)}, ticks={"SOL-USDT": D("0.01")})
    got = trade_heatmap(trades, rules)
    # BTC configured 25; SOL: 1 bp of 150.1234 (the first trade) = 0.01501234 -> 2 ticks of 0.01 = 0.02
    assert got.select("symbol", "bucket_size", "price_bucket").rows() == [
        ("BTC-USDT", D(25), D(60000)),
        ("SOL-USDT", D("0.02"), D("150.00")),
        ("SOL-USDT", D("0.02"), D("150.12")),
    ]
    assert got.get_column("intensity").to_list() == [1.0, 0.5, 1.0]


def test_one_bp_rule() -> None:
    assert one_bp_bucket(D("150.1234"), D("0.01")) == D("0.02")
    assert one_bp_bucket(D("150.1234"), D("0.1")) == D("0.1")  # never below one tick
    assert one_bp_bucket(D("60000"), None) == D(10)  # 6 -> 10 (log-nearest power of ten)
    assert one_bp_bucket(D("25000"), None) == D(1)  # 2.5 -> 1
    assert one_bp_bucket(D("0.25"), None) == D("0.00001")  # 0.000025 -> 0.00001
    assert one_bp_bucket(D("0.35"), None) == D("0.0001")  # 0.000035 is above 10 ** -4.5
    # no USD-like quote: no 10 USD default for BTC-ETH
    assert HeatmapBuckets().size_for("BTC-ETH", D("20.5")) == D("0.001")
    assert HeatmapBuckets().size_for("BTC-USD-PERP", D("60000")) == D(10)
    with pytest.raises(ValueError):
        HeatmapBuckets(sizes={"BTC": D("0.0000000000001")}).size_for("BTC-USDT", D(1))


def test_window_and_empty() -> None:
    trades = _trades([("BTC-USDT", T0 + MIN, "1", "1", "buy", 1), ("BTC-USDT", T0, "1", "1", "buy", 1)])
    assert trade_heatmap(trades, start_ns=T0 + MIN).height == 1
    assert trade_heatmap(trades, start_ns=T0, end_ns=T0 + 1).height == 1
    assert trade_heatmap(trades.clear()).schema == pl.Schema(HEATMAP)


@pytest.fixture(scope="module")
def spot_trades(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    root = str(tmp_path_factory.mktemp("heatmap") / "lake")
    import_capture(spot_files(shared_data), "binance", root)
    parts = []
    for hour in (H23, H00):
        lo, hi = hour - 15 * MIN, hour + HOUR + 15 * MIN
        window = trades_for_window(
            read_raw(root, lo, hi), hour, hour + HOUR, 15 * MIN, normalize=registry_normalizer, skew_ns=10**10
        )
        parts.append(window.trades.select(list(TRADES)))
    return pl.concat(parts)


def test_recording_minute_totals_equal_trades(spot_trades: pl.DataFrame, spot: Recording) -> None:
    got = trade_heatmap(spot_trades)
    assert set(got.get_column("symbol")) == {"BTC-USDT"}
    assert set(got.get_column("bucket_size")) == {D(10)}
    # independent: the recording's trade frames summed per minute and side in plain Python
    expected: dict[int, list[Decimal | int]] = defaultdict(lambda: [D(0), D(0), 0, 0])
    for t in spot.trades:
        e = expected[t.ts - t.ts % MIN]
        e[0 if t.buy else 1] += t.size  # type: ignore[operator]
        e[2 if t.buy else 3] += 1  # type: ignore[operator]
    totals = (
        got.group_by("minute")
        .agg(pl.col("buy_size").sum(), pl.col("sell_size").sum(), pl.col("buy_count").sum(), pl.col("sell_count").sum())
        .sort("minute")
    )
    actual = {int(r[0].timestamp()) * 10**9: list(r[1:]) for r in totals.iter_rows()}
    assert actual == dict(expected)
    assert len(actual) == 12  # 23:54 .. 00:05
    assert sum(v[2] + v[3] for v in actual.values()) == len(spot.trades)  # type: ignore[misc]
    # every bucket holds only its own trades: edges are multiples of 10 and each minute's largest has intensity 1
    assert all(b % 10 == 0 for b in got.get_column("price_bucket"))
    assert got.group_by("minute").agg(pl.col("intensity").max()).get_column("intensity").to_list() == [1.0] * 12
    assert got.get_column("intensity").min() > 0  # type: ignore[operator]
    # per bucket, against the trades themselves (prices in [edge, edge + 10))
    one = got.sort("buy_size", descending=True).row(0, named=True)
    t0 = int(one["minute"].timestamp()) * 10**9
    lo = one["price_bucket"]
    mine = [t for t in spot.trades if t0 <= t.ts < t0 + MIN and lo <= t.price < lo + 10 and t.buy]
    assert one["buy_size"] == sum((t.size for t in mine), D(0)) and one["buy_count"] == len(mine)
