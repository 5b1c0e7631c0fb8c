"""A window continues from the previous window's checkpoint: cutting a recording at a boundary and rebuilding the
two parts (the second from the first's checkpoint, through its JSON form) gives the uninterrupted samples."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from _book_util import depth, raw_rows

from mdplatform.book import BookCheckpoint, Clock, Rebuild, book_clock, book_samples, lake_book_samples
from mdplatform.exchanges import get_exchange

Recording = Callable[[str], pl.DataFrame]
S = 1_000_000_000
HOUR = 1_723_161_600 * S  # 2024-08-09 00:00:00 UTC, inside the spot recording (23:54:13 to 00:05:04)


def split_run(
    raw: pl.DataFrame, xid: str, symbol: str, cut: int, tmp_path: Path, clock: Clock = "exchange"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The book rows before ``cut`` (on ``clock``), then those from it on continuing from the first's checkpoint."""
    rows = raw.filter(
        pl.col("symbol") == symbol, pl.col("channel").is_in(list(Rebuild(get_exchange(xid), symbol).channels))
    )
    at = book_clock(rows, get_exchange(xid), clock)
    first = book_samples(rows.filter(at < cut), get_exchange(xid), symbol, end_ns=cut, clock=clock)
    path = tmp_path / "checkpoint.json"
    first.checkpoint.write(path)
    second = book_samples(
        rows.filter(at >= cut),
        get_exchange(xid),
        symbol,
        start_ns=cut,
        checkpoint=BookCheckpoint.read(path),
        clock=clock,
    )
    return pl.concat([first.samples, second.samples]), pl.concat([first.invalid, second.invalid])


@pytest.mark.parametrize(
    ("name", "xid", "symbol"),
    [
        ("spot/btcusdt", "binance", "BTCUSDT"),
        ("usdm/btcusdt", "binance-usdm", "BTCUSDT"),
        ("cm/btcusd_perp", "binance-coinm", "BTCUSD_PERP"),
    ],
)
def test_hour_boundary_gives_the_uninterrupted_samples(
    recording: Recording, tmp_path: Path, name: str, xid: str, symbol: str
) -> None:
    raw = recording(name)
    whole = book_samples(raw, get_exchange(xid), symbol)
    cut = HOUR if name != "usdm/btcusdt" else HOUR - 3 * 60 * S  # usdm ends at 23:59:59: cut at 23:57
    samples, invalid = split_run(raw, xid, symbol, cut, tmp_path)
    assert samples.equals(whole.samples)
    assert invalid.equals(whole.invalid)
    assert whole.samples.height == {"spot/btcusdt": 650, "usdm/btcusdt": 345, "cm/btcusd_perp": 647}[name]
    # the samples on both sides of the cut are there
    ts = samples["ts"].dt.epoch("ns")
    assert cut in ts.to_list() and cut - S in ts.to_list()


def test_okx_checkpoint_keeps_the_checksum_verifying(recording: Recording, tmp_path: Path) -> None:
    raw = recording("OKX.ws.1.0.gz")
    recv = raw["recv_ts"].dt.epoch("ns")
    cut = (recv.min() + recv.max()) // 2 // S * S
    for symbol in ("BTC-USDT", "BTC-USD-220527", "UNI-USD-SWAP"):
        whole = book_samples(raw, get_exchange("okx"), symbol)
        samples, invalid = split_run(raw, "okx", symbol, cut, tmp_path)
        # the second part's updates verify against the restored top-25 strings: no checksum failure
        assert invalid.height == 0 and samples.equals(whole.samples) and samples.height == 11


def test_checkpoint_json_round_trip_and_an_invalid_checkpoint() -> None:
    rows = [
        (S, "depthSnapshot", {"lastUpdateId": 100, "bids": [["100.10", "2.000"]], "asks": [["101", "1"]]}),
        (2 * S, "depth", depth(101, 101, [], [["101", "0.5"]])),
        (4 * S, "depth", depth(105, 105, [], [])),  # a gap
    ]
    first = book_samples(
        raw_rows("binance", "BTCUSDT", rows[:2]), get_exchange("binance"), "BTCUSDT", end_ns=3 * S, clock="receive"
    )
    cp = first.checkpoint
    assert (cp.valid, cp.update_id, cp.state, cp.recv_ns) == (True, 101, {"last_update_id": 101}, 2 * S)
    assert (cp.bids, cp.asks) == ((("100.10", "2.000"),), (("101", "0.5"),))  # the exchange's strings
    assert BookCheckpoint.from_json(cp.to_json()) == cp
    # the next window starts with the gap: invalid from just after the last frame of the previous window
    second = book_samples(
        raw_rows("binance", "BTCUSDT", rows[2:]),
        get_exchange("binance"),
        "BTCUSDT",
        start_ns=3 * S,
        end_ns=6 * S,
        checkpoint=cp,
        clock="receive",
    )
    assert second.samples["ts"].dt.epoch("ns").to_list() == []  # the sample at 3 s is withdrawn
    assert second.invalid.select(pl.col("start", "end").dt.epoch("ns")).rows() == [(3 * S, 6 * S)]
    assert not second.checkpoint.valid and second.checkpoint.reason.startswith("gap: U=105")
    # an invalid checkpoint carries the open interval into the next window, which waits for a snapshot
    third = book_samples(
        raw_rows("binance", "BTCUSDT", [(7 * S, "depth", depth(106, 106, [], []))]),
        get_exchange("binance"),
        "BTCUSDT",
        start_ns=6 * S,
        end_ns=8 * S,
        checkpoint=BookCheckpoint.from_json(second.checkpoint.to_json()),
        clock="receive",
    )
    assert third.samples.height == 0
    assert third.invalid.select(pl.col("start", "end").dt.epoch("ns"), "reason").rows() == [
        (6 * S, 8 * S, "gap: U=105 > previous u+1=102 (u=105)")
    ]


def test_hourly_windows_read_from_the_lake_chain_through_checkpoints(
    recording: Recording, recording_lake: Callable[[str], str]
) -> None:
    """Hour 23:00 then hour 00:00 of the spot recording (exchange clock), each read from the lake by its own window.
    The recording machine's clock ran 1.3 s behind Binance's: the first frames stamped 00:00 were received in the
    minute 23:59, which the second window must read too."""
    lake = recording_lake("spot/btcusdt")
    whole = book_samples(recording("spot/btcusdt"), get_exchange("binance"), "BTCUSDT")
    h23 = lake_book_samples(lake, get_exchange("binance"), "BTCUSDT", HOUR - 3600 * S, HOUR)
    h00 = lake_book_samples(lake, get_exchange("binance"), "BTCUSDT", HOUR, HOUR + 3600 * S, checkpoint=h23.checkpoint)
    # 23:54:16 .. 23:59:59 and 00:00:00 .. the last frame (00:05:05.809 by Binance's clock) + 60 s of silence
    assert (h23.samples.height, h00.samples.height) == (344, 366)
    assert h00.samples.filter(pl.col("ts").dt.epoch("ns") <= whole.checkpoint.recv_ns).equals(whole.samples.tail(306))
    assert pl.concat([h23.samples, h00.samples]).head(650).equals(whole.samples)
    # the hour before the recording starts is invalid up to the first frame after the snapshot (Binance's time of
    # the diff that completed it); the next hour from 60 s after its last frame
    assert h23.invalid.select(pl.col("start", "end").dt.epoch("ns"), "reason").rows() == [
        (HOUR - 3600 * S, 1_723_161_255_408_000_000, "no snapshot yet")
    ]
    assert h00.invalid.select(pl.col("start", "end").dt.epoch("ns"), "reason").rows() == [
        (whole.checkpoint.recv_ns + 60 * S, HOUR + 3600 * S, "silent: no book frame for 60 s")
    ]
    assert h00.checkpoint.valid
    # without the checkpoint the second hour waits for a snapshot that never comes: no samples, all invalid
    alone = lake_book_samples(lake, get_exchange("binance"), "BTCUSDT", HOUR, HOUR + 3600 * S)
    assert alone.samples.height == 0
    assert alone.invalid.select(pl.col("start", "end").dt.epoch("ns")).rows() == [(HOUR, HOUR + 3600 * S)]
