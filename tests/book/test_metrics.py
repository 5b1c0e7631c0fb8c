"""Book metrics on a small hand-computed book: every value worked out by hand."""

from __future__ import annotations

import pytest

from mdplatform.book import L2Book, book_metrics


def book() -> L2Book:
    b = L2Book("T")
    b.load([["100", "2"], ["99.5", "1"], ["98", "4"]], [["101", "1"], ["103", "3"]], update_id=7)
    return b


def test_best_levels_mid_spread_microprice() -> None:
    m = book_metrics(book(), top_n=2)
    assert m is not None
    assert (m["bid_price"], m["bid_size"], m["ask_price"], m["ask_size"]) == (100.0, 2.0, 101.0, 1.0)
    assert m["update_id"] == 7
    assert m["mid"] == 100.5
    assert m["spread"] == 1.0
    assert m["spread_bps"] == pytest.approx(1e4 / 100.5, rel=1e-15)  # 99.5024875...
    # (100 * 1 + 101 * 2) / 3: the thin ask pulls the microprice towards itself
    assert m["microprice"] == pytest.approx(302 / 3, rel=1e-15)


def test_depth_bands_and_imbalance() -> None:
    m = book_metrics(book())
    assert m is not None
    # mid 100.5; 10 bps: bids >= 100.3995, asks <= 100.6005: nothing on either side
    assert (m["bid_depth_10bps"], m["ask_depth_10bps"], m["imbalance_10bps"]) == (0.0, 0.0, None)
    # 25 bps: bids >= 100.24875, asks <= 100.75125: still nothing
    assert (m["bid_depth_25bps"], m["ask_depth_25bps"]) == (0.0, 0.0)
    # 50 bps: bids >= 99.9975 (100 x2), asks <= 101.0025 (101 x1)
    assert (m["bid_depth_50bps"], m["ask_depth_50bps"]) == (2.0, 1.0)
    assert m["imbalance_50bps"] == pytest.approx(1 / 3, rel=1e-15)
    # 100 bps: bids >= 99.495 (100 x2, 99.5 x1), asks <= 101.505 (101 x1)
    assert (m["bid_depth_100bps"], m["ask_depth_100bps"]) == (3.0, 1.0)
    assert m["imbalance_100bps"] == 0.5


def test_top_levels_best_first() -> None:
    m = book_metrics(book(), top_n=2)
    assert m is not None
    assert (m["bid_px"], m["bid_sz"]) == ([100.0, 99.5], [2.0, 1.0])
    assert (m["ask_px"], m["ask_sz"]) == ([101.0, 103.0], [1.0, 3.0])
    full = book_metrics(book(), top_n=25)
    assert full is not None and full["bid_px"] == [100.0, 99.5, 98.0] and full["ask_px"] == [101.0, 103.0]


def test_one_sided_book_has_no_metrics() -> None:
    b = L2Book("T")
    b.load([["100", "1"]], [])
    assert book_metrics(b) is None


def test_levels_within_a_bound_inclusive() -> None:
    b = book()
    assert b.within("bid", 99.5) == [(100.0, 2.0), (99.5, 1.0)]
    assert b.within("bid", 100.5) == []
    assert b.within("ask", 103.0) == [(101.0, 1.0), (103.0, 3.0)]
    assert b.within("ask", 100.0) == []
