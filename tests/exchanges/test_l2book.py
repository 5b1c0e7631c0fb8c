"""The generic L2 book, on a real Binance REST snapshot and the diffs that followed it."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from mdplatform.book import L2Book


def _snapshot_and_diffs(hft: Callable[[str], tuple[tuple[int, str], ...]]) -> tuple[dict, list[dict]]:  # type: ignore[type-arg]
    lines = hft("spot/btcusdt")
    i = next(i for i, (_, f) in enumerate(lines) if f.startswith('{"lastUpdateId"'))
    snap = orjson.loads(lines[i][1])
    diffs = [orjson.loads(f)["data"] for _, f in lines[i + 1 : i + 4000] if "@depth" in f[:40]]
    return snap, diffs


def test_load_orders_levels_best_first(hft: Callable[[str], tuple[tuple[int, str], ...]]) -> None:
    snap, _ = _snapshot_and_diffs(hft)
    book = L2Book("BTCUSDT", keep_raw=True)
    book.load(snap["bids"], snap["asks"], update_id=snap["lastUpdateId"])
    assert book.depth() == (1000, 1000)
    assert book.best_bid() == (61837.63, 3.78826)
    assert book.best_ask() == (float(snap["asks"][0][0]), float(snap["asks"][0][1]))
    bids, asks = book.bids(), book.asks()
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert bids[:5] == [(float(p), float(q)) for p, q in snap["bids"][:5]]
    assert book.raw_bids(3) == [tuple(level) for level in snap["bids"][:3]]
    assert book.raw_asks(2) == [tuple(level) for level in snap["asks"][:2]]
    assert book.update_id == snap["lastUpdateId"]
    assert book.spread() == pytest.approx(asks[0][0] - bids[0][0])
    assert book.mid() == pytest.approx((asks[0][0] + bids[0][0]) / 2)
    assert not book.is_crossed()


def test_updates_replace_insert_and_delete(hft: Callable[[str], tuple[tuple[int, str], ...]]) -> None:
    snap, diffs = _snapshot_and_diffs(hft)
    book = L2Book(keep_raw=True)
    book.load(snap["bids"], snap["asks"])
    expected = {
        "bid": {float(p): float(q) for p, q in snap["bids"]},
        "ask": {float(p): float(q) for p, q in snap["asks"]},
    }
    for d in diffs:
        book.apply(d["b"], d["a"], update_id=d["u"])
        for side, key in (("bid", "b"), ("ask", "a")):
            for p, q in d[key]:
                if float(q) == 0:
                    expected[side].pop(float(p), None)
                else:
                    expected[side][float(p)] = float(q)
    assert len(diffs) > 200
    assert dict(book.bids()) == expected["bid"]
    assert dict(book.asks()) == expected["ask"]
    assert book.bids() == sorted(expected["bid"].items(), reverse=True)
    assert book.asks() == sorted(expected["ask"].items())
    assert book.update_id == diffs[-1]["u"]
    # raw strings follow the latest update of each level
    assert {float(p): float(q) for p, q in book.raw_asks()} == expected["ask"]


def test_set_level_truncate_and_errors() -> None:
    book = L2Book()
    book.set_level("bid", "100.5", "2")
    book.set_level("bid", 101.0, 1.0)
    book.set_level("ask", "102", "3")
    book.set_level("ask", "103", "0")  # removing an absent level is normal
    assert book.best_bid() == (101.0, 1.0)
    assert book.size_at("bid", 100.5) == 2.0
    book.set_level("bid", "101", "0")
    assert book.best_bid() == (100.5, 2.0)
    book.set_level("ask", "104", "1")
    book.set_level("ask", "105", "1")
    book.truncate(2)
    assert book.asks() == [(102.0, 3.0), (104.0, 1.0)]
    with pytest.raises(ValueError, match="keep_raw"):
        book.raw_bids()
    with pytest.raises(ValueError, match="side must be"):
        book.set_level("buy", "1", "1")  # type: ignore[arg-type]
    book.clear()
    assert book.best_bid() is None and book.best_ask() is None and book.mid() is None
