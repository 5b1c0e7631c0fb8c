"""The compiled paths decide nothing the Python ones would decide otherwise: a run of diffs read from their JSON
bytes takes only frames it understands whole and gives the very book, times, ids and intervals the row-by-row path
gives; the clock read from the bytes equals the regexes'; the sums equal the numpy formulas they replaced; values
that are not plain decimal strings go through ``float()`` and ``str()`` as before."""

from __future__ import annotations

import random
from decimal import Decimal

import numpy as np
import orjson
import polars as pl
import pytest
from _book_util import raw_rows

from mdplatform.book import BookRows, L2Book, Rebuild, book_clock
from mdplatform.book._native import first_integers
from mdplatform.book._rows import arrow_texts, text_buffers
from mdplatform.exchanges import get_exchange
from mdplatform.schemas import RAW

S = 1_000_000_000
SPOT_SNAPSHOT = {"lastUpdateId": 100, "bids": [["99.00", "1.0"], ["98.50", "2.0"]], "asks": [["101.00", "1.5"]]}


def _diff(
    first: int, last: int, bids: list[list[object]], asks: list[list[object]], **extra: object
) -> dict[str, object]:
    data = {
        "e": "depthUpdate",
        "E": 1_700_000_000_000 + last,
        "s": "BTCUSDT",
        "U": first,
        "u": last,
        "b": bids,
        "a": asks,
    }
    return {"stream": "btcusdt@depth@100ms", "data": {**data, **extra}}


def _text(obj: object) -> str:
    return orjson.dumps(obj).decode()


# (payload text, taken by a run?): a spot book continuing from lastUpdateId 100, one frame per row
SPOT_FRAMES: list[tuple[str, bool]] = [
    (_text(_diff(101, 102, [["99.50", "0.5"]], [])), False),  # the first diff after a snapshot: the Python rule
    (_text(_diff(103, 104, [["99.00", "0.00000000"]], [["101.00", "3.25"]])), True),
    (_text(_diff(105, 105, [], [])["data"]), True),  # a bare depthUpdate, no stream wrapper
    # whitespace everywhere, keys in another order, values of every kind that are not read
    (
        ' {\n "data" : { "u" : 107 , "U" : 106 , "b" : [ [ "97.1" , "4" ] ] , "a" : [ ] , "x" : [ {"y": [true, false, '
        'null, -3]} ] } , "stream" : "s" }\n',
        True,
    ),
    (_text(_diff(108, 108, [["96.00", "1", 7, "extra"]], [], T=None)), True),  # fields after the size; T null
    ('{"data":{"U":109,"u":109,"b":[["95","1"]],"b":[["94.5","2"]],"a":[],"E":5}}', True),  # the last "b" counts
    ('{"data":{"U":110,"u":110,"b":[],"a":[],"s":"BTC\\u0055SDT"}}', False),  # an escape: left to orjson
    (_text(_diff(111, 111, [["1e2", "1"]], [])), False),  # not a plain decimal: float() reads it
    (_text(_diff(112, 112, [["93.00", "1"]], [], E=1.5)), False),  # a float time
    (_text(_diff(113, 113, [["92.00", "1"]], [], E=1_234_567_890_123_456_789)), False),  # 19 digits
    (_text(_diff(100, 113, [["91.00", "1"]], [])), False),  # stale: u <= the last applied u
    (_text(_diff(114, 114, [["90.00", "0.1"]], [["102.0", "1"]])), True),
    (_text(_diff(115, 115, [["89.00", "-1"]], [])), False),  # an invalid size: the row path refuses the frame
    (_text(_diff(116, 116, [["88.00", "1"]], [])), False),  # (the book is invalid now: no runs)
]

FUTURES_SNAPSHOT = {"lastUpdateId": 500, "E": 1, "T": 1, "bids": [["99.0", "10"]], "asks": [["101.0", "12"]]}
FUTURES_FRAMES: list[tuple[str, bool]] = [
    (_text(_diff(499, 510, [["99.5", "1"]], [], pu=498)), False),  # the first diff after the snapshot
    (_text(_diff(511, 520, [["99.0", "0"]], [["100.5", "2"]], pu=510, T=7)), True),
    (_text(_diff(521, 530, [], [["100.5", "0"]], pu=520)), True),
    (_text(_diff(531, 540, [["98.0", "3"]], [], pu="530")), False),  # pu as a string: int() reads it
    (_text(_diff(541, 550, [["97.0", "3"]], [], pu=540)), True),
    (_text(_diff(551, 560, [["96.0", "3"]], [], pu=None)), False),  # no pu: not the previous u, a gap
]


def _rows(xid: str, snapshot: dict[str, object], frames: list[tuple[str, bool]]) -> pl.DataFrame:
    first = raw_rows(xid, "BTCUSDT", [(S, "depthSnapshot", snapshot)])
    rest = pl.DataFrame(
        {
            "recv_ts": [(i + 2) * S for i in range(len(frames))],
            "exchange": xid,
            "channel": "depth",
            "symbol": "BTCUSDT",
            "conn_id": "c1",
            "seq": list(range(2, len(frames) + 2)),
            "payload": [text for text, _ in frames],
        },
        schema=RAW,
    )
    return pl.concat([first, rest])


def _state(r: Rebuild) -> tuple[object, ...]:
    book = r.book
    return (r.checkpoint().to_json(), r.close(100 * S), book.ts, book.update_id, r.builder.applied, r.version)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("xid", "snapshot", "frames"),
    [("binance", SPOT_SNAPSHOT, SPOT_FRAMES), ("binance-usdm", FUTURES_SNAPSHOT, FUTURES_FRAMES)],
)
def test_runs_take_only_plain_frames_and_give_the_row_by_row_book(
    xid: str, snapshot: dict[str, object], frames: list[tuple[str, bool]]
) -> None:
    raw = _rows(xid, snapshot, frames)
    by_row = Rebuild(get_exchange(xid), "BTCUSDT")
    for recv_ns, channel, payload in by_row.rows(raw):
        by_row.feed(recv_ns, channel, payload)
    runs = Rebuild(get_exchange(xid), "BTCUSDT")
    rows = BookRows.of(runs.mine(raw))
    taken: list[bool] = []
    i = 0
    while i < len(rows):
        j = runs.feed_run(rows, i, len(rows))
        taken += [True] * (j - i)
        if j < len(rows):
            runs.feed(*rows.row(j))
            taken.append(False)
            j += 1
        i = j
    assert taken == [False] + [t for _, t in frames]
    assert _state(runs) == _state(by_row)


def test_the_clock_read_from_the_bytes_equals_the_regexes() -> None:
    payloads = [
        '{"E":1,"T":2}',
        '{"T":null,"E":3}',
        '{"T":"5","E":4}',
        '{"x":"\\"T\\":6","E":7}',  # escaped in a string: not "T": for the regex either
        '{"T":,"T":8}',  # the first place with digits
        '{"E":0009}',
        "no time at all",
        '{"T":12345678901234567,"E":1}',
        '{"T":١٢,"E":9}',  # another script's digits: \d takes them (then the cast refuses them)
    ]
    patterns = (r'"T":(\d+)', r'"E":(\d+)')
    frame = pl.DataFrame({"recv_ts": list(range(len(payloads))), "payload": payloads})
    regex = pl.coalesce([pl.col("payload").str.extract(p, 1).cast(pl.Int64, strict=False) for p in patterns])
    want = frame.select(regex.alias("ms"))["ms"]
    assert want.to_list()[:8] == [2, 3, 4, 7, 8, 9, None, 12345678901234567]
    # Binance's patterns: every frame but the last reads in place; with the last the regexes decide (and refuse it)
    literal = [(b'"T":', b""), (b'"E":', b"")]
    for n, answers in ((8, True), (9, False)):
        arr = arrow_texts(frame["payload"].head(n))
        assert (first_integers(*text_buffers(arr), len(arr), literal) is not None) is answers
    got = book_clock(frame.head(8), get_exchange("binance-usdm"), after_ns=None)
    assert got.to_list() == (want.head(8).fill_null(strategy="forward") * 1_000_000).cum_max().to_list()
    with pytest.raises(pl.exceptions.InvalidOperationError):
        book_clock(frame, get_exchange("binance-usdm"))
    # OKX's "ts":"(\d+)" needs the closing quote
    okx = pl.DataFrame({"recv_ts": [1, 2, 3], "payload": ['{"ts":"11"}', '{"ts":"12x","ts":"13"}', '{"ts":"14']})
    assert book_clock(okx, get_exchange("okx")).to_list() == [11_000_000, 13_000_000, 13_000_000]


def _numpy_depth(prices: np.ndarray, sizes: np.ndarray, bound: float, bids: bool) -> float:
    """The metrics' former formula: cumsum best first, searchsorted for the band."""
    n = int(np.searchsorted(-prices, -bound, side="right")) if bids else int(np.searchsorted(prices, bound, "right"))
    return float(np.cumsum(sizes)[n - 1]) if n else 0.0


def _numpy_buckets(prices: np.ndarray, sizes: np.ndarray, bucket: float, lo_k: int, hi_k: int) -> tuple[list, list]:
    """The heatmap's former formula: np.unique and bincount over the levels best first."""
    q = prices / bucket
    idx = np.floor(q + q * 1e-10).astype(np.int64)
    keep = (idx >= lo_k) & (idx < hi_k)
    if not keep.any():
        return [], []
    keys, inverse = np.unique(idx[keep], return_inverse=True)
    return keys.tolist(), np.bincount(inverse, weights=sizes[keep], minlength=len(keys)).tolist()


@pytest.mark.parametrize("seed", range(4))
def test_sums_equal_the_numpy_formulas(seed: int) -> None:
    rng = random.Random(seed)
    book = L2Book()
    mid = 60_000.0
    # prices on a 0.1 grid and sizes with many digits: sums that depend on their order
    bids = {f"{mid - rng.randint(1, 9_000) / 10:.1f}": f"{rng.uniform(0, 3):.8f}" for _ in range(3_000)}
    asks = {f"{mid + rng.randint(1, 9_000) / 10:.1f}": f"{rng.uniform(0, 3):.8f}" for _ in range(3_000)}
    book.apply(list(bids.items()), list(asks.items()))
    bp, bq = book.arrays("bid")
    ap, aq = book.arrays("ask")
    assert (np.diff(bp) < 0).all() and (np.diff(ap) > 0).all()
    bounds = [mid * (1 - x / 1e4) for x in (0, 1, 10, 25, 50, 100, 1_000)] + [float("nan")]
    assert book.depth_sums("bid", bounds) == [_numpy_depth(bp, bq, b, bids=True) for b in bounds]
    highs = [mid * (1 + x / 1e4) for x in (0, 1, 10, 25, 50, 100, 1_000)]
    assert book.depth_sums("ask", highs) == [_numpy_depth(ap, aq, b, bids=False) for b in highs]
    for bucket in (0.1, 0.5, 1.0, 10.0, 7.3):
        lo_k, hi_k = int(mid * 0.99 / bucket), int(mid * 1.01 / bucket)
        for side, prices, sizes, lo, hi in (("bid", bp, bq, lo_k, 1 << 62), ("ask", ap, aq, -(1 << 62), hi_k)):
            k, q = book.bucket_sizes(side, bucket, 1e-10, lo, hi)  # type: ignore[arg-type]
            assert (k.tolist(), q.tolist()) == _numpy_buckets(prices, sizes, bucket, lo, hi)


def test_values_that_are_not_decimal_strings_go_through_float_and_str() -> None:
    book = L2Book(keep_raw=True)
    book.apply(
        iter([(100.5, 2), (Decimal("99.10"), "1_0"), [" 98 ", "0.5", "x"]]),  # any iterable, any sequence
        (lv for lv in [("1e2", "3"), ("101", "1")]),
    )
    assert book.raw_bids() == [("100.5", "2"), ("99.10", "1_0"), (" 98 ", "0.5")]
    assert book.bids() == [(100.5, 2.0), (99.1, 10.0), (98.0, 0.5)]
    assert book.raw_asks() == [("1e2", "3"), ("101", "1")] and book.best_ask() == (100.0, 3.0)
    # errors as Python's own indexing and float() give them
    with pytest.raises(IndexError, match="list index out of range"):
        book.apply([["97"]], [])
    with pytest.raises(KeyError):
        book.apply([{"p": 1}], [])
    with pytest.raises(ValueError, match="could not convert string to float: 'abc'"):
        book.apply([("abc", "1")], [])
    with pytest.raises(ValueError, match=r"price 'inf' is not a finite positive number"):
        book.apply([], [("inf", "1")])
    assert book.depth() == (3, 2)
