"""Book heatmap buckets, their 1 m roll-up, the consolidated heatmap and the consolidated book, on small books whose
every expected value is worked out by hand (no recording holds two venues' books at the same time)."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
from _book_util import depth, raw_rows

from mdplatform.book import (
    BOOK_HEATMAP,
    BookHeatmapSpec,
    L2Book,
    book_samples,
    bucket_levels,
    consolidate_heatmap,
    rollup_heatmap,
)
from mdplatform.book._consolidated import consolidated_book
from mdplatform.exchanges import get_exchange
from mdplatform.transforms import USD_LIKE

S = 1_000_000_000


def book(bids: list[list[str]], asks: list[list[str]]) -> L2Book:
    b = L2Book("X")
    b.load(bids, asks)
    return b


def test_buckets_are_whole_and_inside_the_range_and_the_snapshot() -> None:
    b = book(
        [["100", "1"], ["99.5", "2"], ["99", "3"], ["95", "4"]],
        [["101", "1"], ["101.5", "2"], ["102", "0.5"], ["110", "1"]],
    )
    assert (b.bid_floor, b.ask_ceiling) == (95.0, 110.0)
    # mid 100.5, 200 bp: [98.49, 102.51] -> bid buckets from 99, ask buckets below 102 ([102, 103) is cut)
    assert bucket_levels(b, BookHeatmapSpec(Decimal(1), 200)) == ([99, 100], [5.0, 1.0], [101], [3.0])
    # a snapshot that reached only down to 99.2: the bucket [99, 100) is partly unknown and left out
    b.bid_floor = 99.2
    assert bucket_levels(b, BookHeatmapSpec(Decimal(1), 200))[:2] == ([100], [1.0])


def test_a_price_on_a_bucket_edge_falls_in_the_bucket_it_starts() -> None:
    # 0.3 / 0.1 is 2.9999999999999996 in floats: the edge must still be bucket 3
    b = book([["0.3", "1"], ["0.2", "2"]], [["0.4", "1"], ["0.7", "1"]])
    bid_k, bid_q, ask_k, ask_q = bucket_levels(b, BookHeatmapSpec(Decimal("0.1"), 10_000))
    assert (bid_k, bid_q) == ([2, 3], [2.0, 1.0])
    assert (ask_k, ask_q) == ([4], [1.0])  # 0.7 is the snapshot's ceiling: [0.7, 0.8) is cut


def test_book_samples_carry_heatmap_rows_with_exact_edges() -> None:
    rows = [
        (S, "depthSnapshot", {"lastUpdateId": 100, "bids": [["100", "2"], ["99", "1"]], "asks": [["101", "1"]]}),
        (2 * S, "depth", depth(101, 101, [["100", "3"]], [])),
    ]
    out = book_samples(
        raw_rows("binance", "BTCUSDT", rows),
        get_exchange("binance"),
        "BTCUSDT",
        end_ns=4 * S,
        clock="receive",
        heatmap=BookHeatmapSpec(Decimal("0.5"), 200),
    )
    hm = out.heatmap.select(pl.col("ts").dt.epoch("ns"), "side", "price", "size", "intensity").rows()
    d = Decimal
    # the snapshot's only ask is 101: above it nothing is known, so the bucket [101, 101.5) is cut and no ask shows
    assert hm == [
        (S, "bid", d("99.000000000000"), 1.0, 0.5),
        (S, "bid", d("100.000000000000"), 2.0, 1.0),
        (2 * S, "bid", d("99.000000000000"), 1.0, 1 / 3),
        (2 * S, "bid", d("100.000000000000"), 3.0, 1.0),
        (3 * S, "bid", d("99.000000000000"), 1.0, 1 / 3),
        (3 * S, "bid", d("100.000000000000"), 3.0, 1.0),
    ]
    assert set(out.heatmap["symbol"]) == {"BTC-USDT"} and set(out.heatmap["step"]) == {"1s"}
    assert out.heatmap["bucket"].unique().to_list() == [d("0.5")]


def hm_rows(rows: list[tuple[int, str, str, str, str, float]], step: str = "1s") -> pl.DataFrame:
    """BOOK_HEATMAP rows from (ts s, exchange, symbol, side, price, size), bucket 10, one book each."""
    return pl.DataFrame(
        {
            "ts": [t * S for t, *_ in rows],
            "step": [step] * len(rows),
            "exchange": [r[1] for r in rows],
            "symbol": [r[2] for r in rows],
            "side": [r[3] for r in rows],
            "price": [Decimal(r[4]) for r in rows],
            "bucket": [Decimal(10)] * len(rows),
            "size": [r[5] for r in rows],
            "intensity": [1.0] * len(rows),
            "exchange_count": [1] * len(rows),
            "samples": [1] * len(rows),
            "complete": [True] * len(rows),
        }
    ).cast(BOOK_HEATMAP)  # type: ignore[arg-type]


def test_minute_rollup_is_the_mean_over_the_valid_samples() -> None:
    heat = hm_rows([(0, "binance", "BTC-USDT", "bid", "60000", 2.0), (1, "binance", "BTC-USDT", "bid", "60000", 4.0),
                    (1, "binance", "BTC-USDT", "ask", "60010", 1.0)])  # fmt: skip
    samples = pl.DataFrame({"ts": [0, S], "exchange": ["binance"] * 2, "symbol": ["BTC-USDT"] * 2}).with_columns(
        pl.col("ts").cast(pl.Datetime("ns", "UTC"))
    )
    up = rollup_heatmap(heat, samples, step_ns=60 * S, step="1m")
    # two valid seconds of 60: bid 60000 (2 + 4) / 2 = 3; ask 60010 seen in one of them: 1 / 2
    assert up.select("side", "price", "size", "samples", "complete", "intensity").rows() == [
        ("ask", Decimal("60010"), 0.5, 2, False, 0.5 / 3),
        ("bid", Decimal("60000"), 3.0, 2, False, 1.0),
    ]
    assert up["step"].unique().to_list() == ["1m"]


def test_consolidated_heatmap_sums_spot_usd_like_books_only() -> None:
    heat = hm_rows(
        [
            (0, "binance", "BTC-USDT", "bid", "60000", 2.0),
            (0, "coinbase", "BTC-USD", "bid", "60000", 1.5),
            (0, "coinbase", "BTC-USD", "ask", "60010", 1.0),
            (0, "binance-usdm", "BTC-USDT-PERP", "bid", "60000", 50.0),  # a perpetual: not summed
            (0, "kraken", "BTC-EUR", "bid", "55000", 9.0),  # not USD-like
            (1, "binance", "BTC-USDT", "bid", "60000", 1.0),
        ]
    )
    out, left_out = consolidate_heatmap(heat, USD_LIKE)
    assert left_out == []
    assert out.select(
        pl.col("ts").dt.epoch("ns"), "exchange", "symbol", "side", "price", "size", "exchange_count"
    ).rows() == [
        (0, "*", "BTC-USD*", "ask", Decimal("60010"), 1.0, 2),
        (0, "*", "BTC-USD*", "bid", Decimal("60000"), 3.5, 2),
        (S, "*", "BTC-USD*", "bid", Decimal("60000"), 1.0, 1),
    ]


def test_a_book_whose_bucket_does_not_nest_is_left_out_of_the_consolidated_heatmap() -> None:
    odd = hm_rows([(0, "coinbase", "BTC-USD", "bid", "60003", 1.0)]).with_columns(
        bucket=pl.lit(Decimal(3)).cast(BOOK_HEATMAP["bucket"])
    )
    out, left_out = consolidate_heatmap(
        hm_rows([(0, "binance", "BTC-USDT", "bid", "60000", 2.0)]).vstack(odd), USD_LIKE
    )
    assert left_out == ["coinbase BTC-USD"]
    assert out.select("price", "size", "exchange_count").rows() == [(Decimal("60000"), 2.0, 1)]


def test_consolidated_book_best_levels_depth_and_staleness() -> None:
    ts = pl.Datetime("ns", "UTC")
    samples = pl.DataFrame(
        {
            "ts": [S, S, S, 2 * S],
            "exchange": ["binance", "coinbase", "binance-usdm", "binance"],
            "symbol": ["BTC-USDT", "BTC-USD", "BTC-USDT-PERP", "BTC-USDT"],
            "book_ts": [S // 2, 9 * S // 10, S, 2 * S],
            "bid_price": [100.0, 100.5, 200.0, 100.0],
            "ask_price": [101.0, 101.5, 201.0, 101.0],
            **{
                f"bid_depth_{x}bps": [1.0, 2.0, 9.0, 1.0] if x == 10 else [1.0, None, 9.0, 1.0]
                for x in (10, 25, 50, 100)
            },
            **{f"ask_depth_{x}bps": [3.0, 1.0, 9.0, 3.0] for x in (10, 25, 50, 100)},
        }
    ).with_columns(pl.col("ts", "book_ts").cast(ts))
    out = consolidated_book(samples, USD_LIKE)
    first = out.row(0, named=True)
    assert (
        first["base"],
        first["best_bid"],
        first["best_bid_exchange"],
        first["best_ask"],
        first["best_ask_exchange"],
    ) == ("BTC", 100.5, "coinbase", 101.0, "binance")
    assert (first["mid"], first["crossed"], first["exchange_count"]) == (100.75, False, 2)
    assert (first["exchanges"], first["symbols"], first["staleness_ms"]) == (
        ["binance", "coinbase"],
        ["BTC-USDT", "BTC-USD"],
        [500.0, 100.0],
    )
    # 10 bp: (1 + 2) bid vs (3 + 1) ask; 25 bp: coinbase's bid band is unknown, so the sum is too
    assert (first["bid_depth_10bps"], first["ask_depth_10bps"], first["imbalance_10bps"]) == (3.0, 4.0, -1 / 7)
    assert (first["bid_depth_25bps"], first["imbalance_25bps"]) == (None, None)
    second = out.row(1, named=True)
    assert (second["exchange_count"], second["exchanges"], second["staleness_ms"]) == (1, ["binance"], [0.0])
