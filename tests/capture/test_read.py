"""Reading the real recordings: both formats, gzip or plain, merged by receive time, exchange detection."""

from __future__ import annotations

import gzip
import itertools
from collections import Counter
from pathlib import Path

import pytest

from mdplatform.capture import (
    CapturedFrame,
    ReadStats,
    capture_format,
    detect_exchange,
    merge_captures,
    read_capture,
)


def test_hftbacktest_spot_frames_and_inline_snapshot(shared_data: Path) -> None:
    stats = ReadStats()
    frames = list(read_capture(shared_data / "binance-hftbacktest/spot/btcusdt_20240808.gz", stats=stats))
    assert len(frames) == 41_249
    assert (stats.ws, stats.rest, stats.blank, stats.bad) == (41_248, 1, 0, [])
    kinds = Counter(f.kind for f in frames)
    assert kinds == {"ws": 41_248, "rest": 1}
    first = frames[0]
    assert first.recv_ns == 1723161253937085768
    assert first.frame.startswith('{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,')
    assert first.line == 1
    (snapshot,) = [f for f in frames if f.kind == "rest"]
    assert snapshot.line == 8
    assert snapshot.recv_ns == 1723161254206652067
    assert snapshot.frame.startswith('{"lastUpdateId":50093239218,"bids":[["61837.63000000","3.78826000"]')
    # the spot reply does not name its symbol: it comes from the depth stream of the same file
    assert snapshot.symbol == "BTCUSDT"
    streams = Counter(f.frame[11 : f.frame.index('"', 11)] for f in frames if f.kind == "ws")
    assert streams == {"btcusdt@bookTicker": 28_040, "btcusdt@trade": 9_757, "btcusdt@depth@100ms": 3_451}
    assert all(a.recv_ns <= b.recv_ns for a, b in itertools.pairwise(frames))


def test_futures_snapshots_carry_their_symbol(shared_data: Path) -> None:
    hft = shared_data / "binance-hftbacktest"
    (cm,) = [f for f in read_capture(hft / "cm/btcusd_perp_20240808.gz") if f.kind == "rest"]
    assert (cm.symbol, cm.line) == ("BTCUSD_PERP", 37)
    assert cm.frame.startswith('{"lastUpdateId":1007198635033,"E":1723161257835,"T":1723161257823,')
    (um,) = [f for f in read_capture(hft / "usdm/btcusdt_20240808.gz") if f.kind == "rest"]
    assert (um.symbol, um.line, um.recv_ns) == ("BTCUSDT", 55, 1723161255319702566)


def test_cryptofeed_okx(shared_data: Path) -> None:
    stats = ReadStats()
    frames = list(read_capture(shared_data / "cryptofeed-samples/OKX.ws.1.0.gz", stats=stats))
    assert len(frames) == 410
    assert (stats.ws, stats.rest, stats.connects, stats.sent, stats.bad) == (410, 0, 1, 3, [])
    assert {f.kind for f in frames} == {"ws"}
    # receive times are exact decimal seconds -> ns, no float rounding
    assert frames[0].recv_ns == 1652459225_503749100
    assert frames[0].frame == '{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USD-220527"}}'
    assert frames[0].line == 5
    assert frames[-1].recv_ns == 1652459236_341644500
    books = [f for f in frames if f.frame.startswith('{"arg":{"channel":"books"')]
    assert len(books) == 290
    assert sum('"action":"snapshot"' in f.frame for f in books) == 3
    # asked for, the connect line is a marker where the connection starts; never by default
    marked = list(read_capture(shared_data / "cryptofeed-samples/OKX.ws.1.0.gz", connects=True))
    assert marked[0] == CapturedFrame(1652459224_530060500, "wss://ws.okx.com:8443/ws/v5/public", "connect", "", 1)
    assert marked[1:] == frames


def test_cryptofeed_rest_replies(shared_data: Path) -> None:
    stats = ReadStats()
    frames = list(read_capture(shared_data / "cryptofeed-samples/BINANCE.http.0.0.gz", stats=stats))
    assert [(f.kind, f.symbol, f.line) for f in frames] == [
        ("rest", "NKNUSDT", 1),
        ("rest", "BLZETH", 2),
        ("rest", "LRCBTC", 3),
        ("rest", "RUNEEUR", 4),
    ]
    assert frames[0].recv_ns == 1633998512_320639000
    assert frames[0].frame.startswith('{"lastUpdateId":499869752,"bids":[["0.35210000","672.00000000"]')
    assert stats.blank == 1 and stats.bad == []


def test_plain_text_and_bad_lines_are_reported(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "binance-hftbacktest/spot/btcusdt_20240808.gz"
    with gzip.open(src, "rt") as fh:
        lines = [next(fh) for _ in range(10)]
    plain = tmp_path / "btcusdt_sample.txt"
    plain.write_text("".join(lines[:4]) + "1723161254 not json\n" + "garbage\n" + "".join(lines[4:]))
    assert capture_format(plain) == "hftbacktest"
    stats = ReadStats()
    frames = list(read_capture(plain, stats=stats))
    assert [f.frame for f in frames] == [line.rstrip("\n").split(" ", 1)[1] for line in lines]
    assert [(b.line, b.text) for b in stats.bad] == [(5, "1723161254 not json"), (6, "garbage")]
    assert [f.line for f in frames] == [1, 2, 3, 4, 7, 8, 9, 10, 11, 12]
    # without a stats object the bad lines are logged, not swallowed
    assert len(list(read_capture(plain))) == 10


def test_merge_by_receive_time(shared_data: Path) -> None:
    spot = shared_data / "binance-hftbacktest/spot"
    merged = merge_captures([spot / "btcusdt_20240809.gz", spot / "btcusdt_20240808.gz"])
    first = next(merged)  # lazy: nothing else has been read yet
    assert first.recv_ns == 1723161253937085768
    rest = list(merged)
    assert 1 + len(rest) == 41_249 + 58_325
    recv = [first.recv_ns] + [f.recv_ns for f in rest]
    assert recv == sorted(recv)
    # the two days join without overlap: the 0809 frames all come after the 0808 ones
    assert rest[41_247].line == 41_249 and rest[41_248].line == 1


@pytest.mark.parametrize(
    ("path", "exchange"),
    [
        ("binance-hftbacktest/spot/btcusdt_20240808.gz", "binance"),
        ("binance-hftbacktest/spot/ethusdt_20240809.gz", "binance"),
        ("binance-hftbacktest/usdm/btcusdt_20240808.gz", "binance-usdm"),
        ("binance-hftbacktest/usdm/ethusdt_20240808.gz", "binance-usdm"),
        ("binance-hftbacktest/cm/btcusd_perp_20240808.gz", "binance-coinm"),
        ("binance-hftbacktest/cm/btcusd_perp_20240809.gz", "binance-coinm"),
        ("cryptofeed-samples/OKX.ws.1.0.gz", "okx"),
        ("cryptofeed-samples/BINANCE.ws.1.0.gz", "binance"),
        ("cryptofeed-samples/BINANCE.http.0.0.gz", "binance"),
        ("cryptofeed-samples/BINANCE_FUTURES.ws.1.0.gz", "binance-usdm"),
    ],
)
def test_detect_exchange(shared_data: Path, path: str, exchange: str) -> None:
    assert detect_exchange(shared_data / path) == exchange


def test_detect_exchange_by_endpoint_and_unsupported(shared_data: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "recording.ws.gz"
    renamed.write_bytes((shared_data / "cryptofeed-samples/BINANCE_FUTURES.ws.1.0.gz").read_bytes())
    assert detect_exchange(renamed) == "binance-usdm"
    with pytest.raises(ValueError, match="supported"):
        detect_exchange(shared_data / "cryptofeed-samples/KRAKEN.ws.48.0.gz")
