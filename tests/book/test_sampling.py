"""Samples on a fixed grid (of receive time here: the hand-written frames carry no exchange time), only while the
book is valid; invalid intervals with their reasons.
A small hand-written Binance spot stream: every expected value worked out by hand."""

from __future__ import annotations

import polars as pl
from _book_util import depth, raw_rows

from mdplatform.book import book_samples
from mdplatform.exchanges import get_exchange

S = 1_000_000_000


def stream() -> pl.DataFrame:
    return raw_rows(
        "binance",
        "BTCUSDT",
        [
            (S // 2, "depth", depth(99, 100, [["100", "9"]], [])),  # covered by the snapshot: dropped
            (1_200_000_000, "depth", depth(101, 101, [["100", "3"]], [])),  # buffered, applied after the snapshot
            (
                1_500_000_000,
                "depthSnapshot",
                {"lastUpdateId": 100, "bids": [["100", "2"], ["99", "1"]], "asks": [["101", "1"]]},
            ),
            (2_700_000_000, "depth", depth(102, 103, [], [["101", "0"], ["102", "5"]])),
            (4_200_000_000, "depth", depth(106, 107, [["99.5", "1"]], [])),  # U=106 after u=103: a gap
            (
                5 * S,
                "depthSnapshot",
                {"lastUpdateId": 106, "bids": [["100", "3"], ["99", "1"]], "asks": [["102", "5"]]},
            ),
        ],
    )


def test_samples_on_the_grid_while_valid() -> None:
    out = book_samples(stream(), get_exchange("binance"), "BTCUSDT", end_ns=6_500_000_000, clock="receive")
    s = out.samples
    # t=1 s precedes the snapshot; 3 s and 4 s follow the diff at 2.7 s after which the gap lost frames; t=5 s
    # includes the snapshot received at exactly 5 s
    assert s["ts"].dt.epoch("ns").to_list() == [2 * S, 5 * S, 6 * S]
    assert s["update_id"].to_list() == [101, 107, 107]
    assert s["bid_price"].to_list() == [100.0] * 3
    assert s["bid_size"].to_list() == [3.0, 3.0, 3.0]
    assert s["ask_price"].to_list() == [101.0, 102.0, 102.0]
    assert s["ask_size"].to_list() == [1.0, 5.0, 5.0]
    assert s["mid"].to_list() == [100.5, 101.0, 101.0]
    assert s["microprice"].to_list()[0] == (100.0 * 1.0 + 101.0 * 3.0) / 4.0
    # after the resync the buffered diff 106..107 added 99.5 x1
    assert s["bid_px"].to_list()[-1] == [100.0, 99.5, 99.0]
    assert s["bid_sz"].to_list()[-1] == [3.0, 1.0, 1.0]
    assert (s["exchange"].unique().to_list(), s["symbol"].unique().to_list()) == (
        ["binance"],
        ["BTC-USDT"],
    )  # labelled as trades are


def test_invalid_intervals_before_the_snapshot_and_after_a_gap() -> None:
    # the gap is seen at 4.2 s, but the frames it lost arrived after the diff at 2.7 s: invalid from just after it
    out = book_samples(stream(), get_exchange("binance"), "BTCUSDT", end_ns=6_500_000_000, clock="receive")
    iv = out.invalid.select(pl.col("start", "end").dt.epoch("ns"), "reason").rows()
    assert iv == [
        (S // 2, 1_500_000_000, "no snapshot yet"),
        (2_700_000_001, 5 * S, "gap: U=106 > previous u+1=104 (u=107)"),
    ]


def test_interval_and_window_options() -> None:
    out = book_samples(
        stream(), get_exchange("binance"), "BTCUSDT", interval_ns=S // 2, start_ns=2 * S, end_ns=4 * S, clock="receive"
    )
    assert out.samples["ts"].dt.epoch("ns").to_list() == [2 * S, 2_500_000_000, 3 * S, 3_500_000_000]
    assert out.samples["update_id"].to_list() == [101, 101, 103, 103]
    # the rows from end_ns on are not applied: the gap at 4.2 s lies in the next window
    assert out.invalid.height == 0 and out.checkpoint.valid and out.checkpoint.update_id == 103
    # invalid intervals are clipped to the window
    out = book_samples(stream(), get_exchange("binance"), "BTCUSDT", start_ns=S, end_ns=4_500_000_000, clock="receive")
    assert out.invalid.select(pl.col("start", "end").dt.epoch("ns"), "reason").rows() == [
        (S, 1_500_000_000, "no snapshot yet"),
        (2_700_000_001, 4_500_000_000, "gap: U=106 > previous u+1=104 (u=107)"),
    ]


def test_still_invalid_at_the_end_of_the_window() -> None:
    rows = stream().head(5)  # the resync snapshot never comes
    out = book_samples(rows, get_exchange("binance"), "BTCUSDT", end_ns=7 * S, clock="receive")
    assert out.samples["ts"].dt.epoch("ns").to_list() == [2 * S]
    last = out.invalid.select(pl.col("start", "end").dt.epoch("ns"), "reason").rows()[-1]
    assert last == (2_700_000_001, 7 * S, "gap: U=106 > previous u+1=104 (u=107)")
    assert not out.checkpoint.valid and out.checkpoint.invalid_since == 2_700_000_001


def test_a_frame_the_builder_refuses_invalidates_the_book() -> None:
    rows = stream().head(4)
    bad = raw_rows("binance", "BTCUSDT", [(3_100_000_000, "depth", depth(104, 104, [["100", "NaN"]], []))])
    out = book_samples(pl.concat([rows, bad]), get_exchange("binance"), "BTCUSDT", end_ns=5 * S, clock="receive")
    assert out.samples["ts"].dt.epoch("ns").to_list() == [2 * S, 3 * S]
    (start, end, reason) = out.invalid.select(pl.col("start", "end").dt.epoch("ns"), "reason").rows()[-1]
    assert (start, end) == (3_100_000_000, 5 * S) and reason.startswith("frame_error: size 'NaN'")


def test_a_silent_book_is_not_sampled_until_its_next_frame() -> None:
    rows = stream().head(4)  # valid from 1.5 s, last frame at 2.7 s
    late = raw_rows("binance", "BTCUSDT", [(9 * S, "depth", depth(104, 104, [], []))])
    out = book_samples(
        pl.concat([rows, late]),
        get_exchange("binance"),
        "BTCUSDT",
        end_ns=12 * S,
        max_silence_ns=3 * S,
        clock="receive",
    )
    # sampled up to 2.7 s + 3 s, then again from the frame at 9 s (the chain goes on: the book is whole)
    assert out.samples["ts"].dt.epoch("ns").to_list() == [2 * S, 3 * S, 4 * S, 5 * S, 9 * S, 10 * S, 11 * S]
    assert out.invalid.select(pl.col("start", "end").dt.epoch("ns"), "reason").rows() == [
        (S // 2, 1_500_000_000, "no snapshot yet"),
        (5_700_000_000, 9 * S, "silent: no book frame for 3 s"),
    ]
    # silent at the end of the window too; None turns the rule off
    out = book_samples(rows, get_exchange("binance"), "BTCUSDT", end_ns=7 * S, max_silence_ns=3 * S, clock="receive")
    assert out.invalid.select(pl.col("start", "end").dt.epoch("ns")).rows()[-1] == (5_700_000_000, 7 * S)
    assert (
        book_samples(
            rows, get_exchange("binance"), "BTCUSDT", end_ns=7 * S, max_silence_ns=None, clock="receive"
        ).samples.height
        == 5
    )


def test_coverage_gaps_remove_samples_unless_the_sequence_bridges_them() -> None:
    # the lake's coverage says the stream was not observed over [1.8 s, 2.5 s) and [4.5 s, 6 s)
    gaps = [(1_800_000_000, 2_500_000_000, "not connected"), (4_500_000_000, 6 * S, "lost on crash")]
    out = book_samples(stream(), get_exchange("binance"), "BTCUSDT", end_ns=6_500_000_000, clock="receive", gaps=gaps)
    # the first is bridged: the next frame (2.7 s, ids 102..103 after 101) continues the book, nothing was missed,
    # and the sample at 2 s stays. The second overlaps the rebuild's own gap interval; its part after the resync at
    # 5 s has no frame after it to prove anything: the sample at 5 s goes, the one at 6 s is after it
    assert out.samples["ts"].dt.epoch("ns").to_list() == [2 * S, 6 * S]
    assert out.invalid.select(pl.col("start", "end").dt.epoch("ns"), "reason").rows() == [
        (S // 2, 1_500_000_000, "no snapshot yet"),
        (2_700_000_001, 5 * S, "gap: U=106 > previous u+1=104 (u=107)"),
        (5 * S, 6 * S, "coverage: lost on crash"),
    ]
    # without the frame at 2.7 s nothing bridges the first: the sample at 2 s goes too
    cut = stream().filter(pl.col("recv_ts").dt.epoch("ns") != 2_700_000_000)
    out = book_samples(cut, get_exchange("binance"), "BTCUSDT", end_ns=4 * S, clock="receive", gaps=gaps[:1])
    assert out.samples["ts"].dt.epoch("ns").to_list() == [3 * S]
    assert (1_800_000_000, 2_500_000_000, "coverage: not connected") in out.invalid.select(
        pl.col("start", "end").dt.epoch("ns"), "reason"
    ).rows()
