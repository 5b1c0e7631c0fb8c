"""L2Book's compiled sides (levels sorted in blocks that split and merge, read from the best level) give the book a
plain dict model gives, whatever the mix of writes and reads: hand-made books, seeded random operations."""

from __future__ import annotations

import random

import pytest

from mdplatform.book import L2Book


def _model_apply(model: dict[float, tuple[str, str]], levels: list[tuple[str, str]]) -> None:
    for p, q in levels:
        if float(q) == 0.0:
            model.pop(float(p), None)
        else:
            model[float(p)] = (p, q)


def _check(book: L2Book, bids: dict[float, tuple[str, str]], asks: dict[float, tuple[str, str]]) -> None:
    want_bids = sorted(bids.items(), reverse=True)
    want_asks = sorted(asks.items())
    assert book.bids() == [(p, float(q)) for p, (_, q) in want_bids]
    assert book.asks() == [(p, float(q)) for p, (_, q) in want_asks]
    assert book.raw_bids() == [raw for _, raw in want_bids]
    assert book.raw_asks() == [raw for _, raw in want_asks]
    assert book.depth() == (len(bids), len(asks))


@pytest.mark.parametrize("seed", range(6))
def test_random_writes_and_reads_equal_a_dict_model(seed: int) -> None:
    rng = random.Random(seed)
    book = L2Book(keep_raw=True)
    bids: dict[float, tuple[str, str]] = {}
    asks: dict[float, tuple[str, str]] = {}
    for step in range(3_000):
        # prices around a drifting mid on a 0.5 grid, so levels come back after being removed
        mid = 1_000 + 20 * (step // 500)
        frame_bids = [
            (f"{mid - 0.5 * rng.randint(1, 60):.2f}", rng.choice(["0", "0.000", "1.5", "2"])) for _ in range(5)
        ]
        frame_asks = [(f"{mid + 0.5 * rng.randint(1, 60):.1f}", rng.choice(["0", "0.10", "3"])) for _ in range(5)]
        book.apply(frame_bids, frame_asks)
        _model_apply(bids, frame_bids)
        _model_apply(asks, frame_asks)
        read = rng.random()
        if read < 0.05:
            _check(book, bids, asks)
        elif read < 0.2:
            n = rng.randint(0, 8)
            assert book.bids(n) == [(p, float(q)) for p, (_, q) in sorted(bids.items(), reverse=True)[:n]]
            assert book.raw_asks(n) == [raw for _, raw in sorted(asks.items())[:n]]
        elif read < 0.3:
            bound = mid - 0.5 * rng.randint(0, 60)
            assert book.within("bid", bound) == [
                (p, float(q)) for p, (_, q) in sorted(bids.items(), reverse=True) if p >= bound
            ]
            bound = mid + 0.5 * rng.randint(0, 60)
            assert book.within("ask", bound) == [(p, float(q)) for p, (_, q) in sorted(asks.items()) if p <= bound]
        elif read < 0.5:
            assert book.best_bid() == ((max(bids), float(bids[max(bids)][1])) if bids else None)
            price = mid - 0.5 * rng.randint(1, 60)
            assert book.size_at("bid", price) == (float(bids[price][1]) if price in bids else 0.0)
    _check(book, bids, asks)


def test_a_price_removed_and_set_again_in_one_frame_is_listed_once() -> None:
    book = L2Book(keep_raw=True)
    book.load([("100", "1"), ("99", "1")], [("101", "1")])
    book.apply([("100", "0"), ("100", "2"), ("98", "1"), ("98", "0"), ("98", "3")], [("101", "0"), ("102", "5")])
    assert book.bids() == [(100.0, 2.0), (99.0, 1.0), (98.0, 3.0)]
    assert book.asks() == [(102.0, 5.0)]
    assert book.raw_bids(1) == [("100", "2")] and book.depth() == (3, 1)
    # the best level removed, then set again
    book.apply([("100", "0")], [])
    assert book.best_bid() == (99.0, 1.0)
    book.apply([("100", "4")], [])
    assert book.bids(2) == [(100.0, 4.0), (99.0, 1.0)]


def test_load_bounds_and_truncate() -> None:
    book = L2Book(keep_raw=True)
    book.load([(str(100 - i), "1") for i in range(50)], [(str(101 + i), "1") for i in range(50)])
    assert (book.bid_floor, book.ask_ceiling) == (51.0, 150.0)
    book.apply([(str(100 - i), "0") for i in range(45)], [])
    assert book.depth() == (5, 50)
    assert book.bids() == [(float(p), 1.0) for p in range(55, 50, -1)]
    book.apply([], [(str(101 + i), "0") for i in range(0, 50, 2)])  # every other ask: gaps among live ones
    book.truncate(3)
    assert book.asks() == [(102.0, 1.0), (104.0, 1.0), (106.0, 1.0)] and book.depth() == (3, 3)
    assert book.raw_asks() == [("102", "1"), ("104", "1"), ("106", "1")]
    book.load([], [])
    assert book.best_bid() is None and book.depth() == (0, 0)


def test_invalid_values_name_the_price_first() -> None:
    book = L2Book()
    book.load([("100", "1")], [])
    with pytest.raises(ValueError, match="price 'NaN'"):
        book.apply([("NaN", "NaN")], [])
    with pytest.raises(ValueError, match="price '-1'"):
        book.apply([("-1", "0")], [])  # removing a level at an invalid price is still refused
    with pytest.raises(ValueError, match=r"size 'inf' \(at price '100'\)"):
        book.apply([("100", "inf")], [])
    with pytest.raises(ValueError, match=r"size '-2' \(at price '101'\)"):
        book.apply([("101", "-2")], [])
    # a refused level leaves nothing half-listed
    assert book.bids() == [(100.0, 1.0)] and book.depth() == (1, 0)
