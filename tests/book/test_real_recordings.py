"""The rebuild on real recordings landed in a lake: Binance books equal every bookTicker of the same update id,
OKX ``books`` checksums all verify, and a forced gap yields an invalid interval without samples."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import polars as pl
import pytest
from _book_util import RECORDINGS

from mdplatform.book import Rebuild, book_samples
from mdplatform.exchanges import get_exchange

Recording = Callable[[str], pl.DataFrame]
SNAPSHOT_RECV = 1_723_161_254_206_652_067  # the spot BTCUSDT REST snapshot's receive time


@pytest.mark.parametrize(
    ("name", "points"), [("spot/btcusdt", 1_072), ("usdm/btcusdt", 629), ("cm/btcusd_perp", 1_885)]
)
def test_rebuilt_book_equals_every_book_ticker_of_the_same_update_id(
    recording: Recording, name: str, points: int
) -> None:
    xid, symbol, _ = RECORDINGS[name]
    raw = recording(name)
    rebuild = Rebuild(get_exchange(xid), symbol)
    best: dict[int, tuple[object, object]] = {}
    for _ in rebuild.states(raw):
        book = rebuild.book
        assert book.update_id is not None
        best[book.update_id] = (book.best_bid(), book.best_ask())
    matched = 0
    for payload in raw.filter(channel="bookTicker", symbol=symbol)["payload"]:
        d = orjson.loads(payload)["data"]
        state = best.get(int(d["u"]))
        if state is not None:
            assert state == ((float(d["b"]), float(d["B"])), (float(d["a"]), float(d["A"]))), d
            matched += 1
    assert matched == points
    # one interval: from the first diff to the snapshot; never invalid afterwards
    (interval,) = rebuild.close(1 << 62)
    assert interval.reason == "no snapshot yet"


@pytest.mark.parametrize(("symbol", "checks"), [("BTC-USDT", 98), ("BTC-USD-220527", 99), ("UNI-USD-SWAP", 93)])
def test_okx_books_checksums_verify_in_the_rebuild(recording: Recording, symbol: str, checks: int) -> None:
    raw = recording("OKX.ws.1.0.gz")
    rebuild = Rebuild(get_exchange("okx"), symbol)
    states = list(rebuild.states(raw))
    # 98 + 99 + 93 = the recording's 290 checksums, every one verified; the book is valid from its first push on
    assert rebuild.builder.checksums_verified == checks  # type: ignore[attr-defined]
    assert len(states) == checks and rebuild.close(1 << 62) == []
    out = book_samples(raw, get_exchange("okx"), symbol)
    assert out.invalid.height == 0 and out.samples.height == 11


def test_okx_corrupted_checksum_is_an_invalid_interval_until_the_end(recording: Recording) -> None:
    raw = recording("OKX.ws.1.0.gz").with_row_index()
    books = raw.filter(channel="books", symbol="BTC-USDT")
    victim = books.row(40, named=True)
    payload = orjson.loads(victim["payload"])
    payload["data"][0]["checksum"] = int(payload["data"][0]["checksum"]) + 1
    bad = raw.with_columns(
        payload=pl.when(pl.col("index") == victim["index"])
        .then(pl.lit(orjson.dumps(payload).decode()))
        .otherwise("payload")
    ).drop("index")
    out = book_samples(bad, get_exchange("okx"), "BTC-USDT", clock="receive")
    (start, reason) = out.invalid.select(pl.col("start").dt.epoch("ns"), "reason").row(0)
    t_bad = victim["recv_ts"].timestamp()
    assert start == round(t_bad * 1e9) or abs(start / 1e9 - t_bad) < 1e-6
    assert reason.startswith("checksum: checksum mismatch: received")
    assert out.samples.filter(pl.col("ts").dt.epoch("ns") >= start).height == 0


def test_forced_gap_gives_an_invalid_interval_and_no_samples_in_it(recording: Recording) -> None:
    raw = recording("spot/btcusdt")
    whole = book_samples(raw, get_exchange("binance"), "BTCUSDT", clock="receive")
    # 23:54:13.94 to 00:05:04.54: samples from the first second after the snapshot to the last row
    assert whole.samples.height == 650
    assert whole.samples["ts"].dt.epoch("ns").min() == 1_723_161_255_000_000_000
    assert whole.invalid.select(pl.col("end").dt.epoch("ns"), "reason").rows() == [(SNAPSHOT_RECV, "no snapshot yet")]

    # drop five consecutive depth frames in the middle: the next one shows the gap; the book is unknown from just
    # after the last frame applied before the lost ones
    depth_rows = raw.with_row_index().filter(channel="depth")
    dropped = depth_rows["index"][3000:3005]
    recv = depth_rows["recv_ts"].dt.epoch("ns")
    last_good, next_recv = recv[2999], recv[3005]
    gapped = raw.with_row_index().filter(~pl.col("index").is_in(dropped.implode())).drop("index")
    out = book_samples(gapped, get_exchange("binance"), "BTCUSDT", clock="receive")
    iv = out.invalid.select(pl.col("start", "end").dt.epoch("ns"), "reason").rows()
    assert iv[0] == (1_723_161_253_937_085_768, SNAPSHOT_RECV, "no snapshot yet")
    assert iv[1][:2] == (last_good + 1, whole.checkpoint.recv_ns + 1)  # no snapshot follows: invalid to the end
    assert iv[1][2] == "gap: U=50093401785 > previous u+1=50093401682 (u=50093401819)" and len(iv) == 2
    assert out.samples.filter(pl.col("ts").dt.epoch("ns") > last_good).height == 0
    # before the gap, the samples are the uninterrupted ones
    before = whole.samples.filter(pl.col("ts").dt.epoch("ns") <= last_good)
    assert before.height == 300 and out.samples.equals(before)
    assert not out.checkpoint.valid and next_recv > last_good
