"""import_capture lands recordings in the raw layer row for row, like the collector, and idempotently."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import polars as pl
import pyarrow.parquet as pq

from mdplatform.capture import capture_id, import_capture, read_capture
from mdplatform.lake import read_raw

SPOT_0808 = "binance-hftbacktest/spot/btcusdt_20240808.gz"
OKX = "cryptofeed-samples/OKX.ws.1.0.gz"
DAY_START = 1723075200 * 10**9  # 2024-08-08 00:00 UTC
DAY_END = DAY_START + 2 * 86_400 * 10**9


def _raw(lake: str, exchange: str, start: int = DAY_START, end: int = DAY_END) -> pl.DataFrame:
    return read_raw(lake, start, end, exchanges=[exchange]).sort("conn_id", "seq")


def test_import_spot_rows_per_channel(shared_data: Path, lake: str) -> None:
    path = shared_data / SPOT_0808
    stats = import_capture([path], "binance", root=lake)
    assert stats.rows_by_channel == {
        ("binance", "bookTicker"): 28_040,
        ("binance", "trade"): 9_757,
        ("binance", "depth"): 3_451,
        ("binance", "depthSnapshot"): 1,
    }
    assert stats.rows == 41_249 and stats.files == 1 and stats.bad_lines == []
    assert (stats.first_recv_ns, stats.last_recv_ns) == (1723161253937085768, 1723161599999231384)
    # 23:54 .. 23:59 lie in one receive hour: one file of frames and one of events, named after the capture
    assert stats.files_written == 1 and stats.event_files_written == 1
    assert stats.sessions == 1
    for tree in ("raw", "events"):
        hour = Path(lake, tree, "exchange=binance/date=2024-08-08/hour=23")
        assert [f.name for f in hour.iterdir()] == ["capture-btcusdt_20240808-00000.parquet"]
    # the frames' row groups, by channel group: each group's rows in receive order
    rows = pq.ParquetFile(Path(lake, "raw/exchange=binance/date=2024-08-08/hour=23").glob("*.parquet").__next__())
    groups = orjson.loads(rows.metadata.metadata[b"mdp.groups"])
    channels = [set(rows.read_row_group(i, columns=["channel"]).column(0).to_pylist()) for i in range(len(groups))]
    assert set(groups) == {"trades", "books", "other"}
    assert all(
        c <= {"trades": {"trade"}, "books": {"depth", "depthSnapshot"}, "other": {"bookTicker"}}[g]
        for g, c in zip(groups, channels, strict=True)
    )

    raw = _raw(lake, "binance")
    assert raw.height == 41_249
    frames = list(read_capture(path))
    ws = raw.filter(pl.col("conn_id") == "capture:btcusdt_20240808")
    assert ws["seq"].to_list() == list(range(1, 41_249))
    assert ws["payload"].to_list() == [f.frame for f in frames if f.kind == "ws"]
    recv = ws["recv_ts"].dt.epoch("ns").to_list()
    assert recv == [f.recv_ns for f in frames if f.kind == "ws"]
    assert set(ws["symbol"].unique()) == {"BTCUSDT"}
    snap = raw.filter(pl.col("channel") == "depthSnapshot").row(0, named=True)
    assert (snap["symbol"], snap["conn_id"], snap["seq"]) == ("BTCUSDT", "capture:btcusdt_20240808/rest", 1)
    assert snap["payload"].startswith('{"lastUpdateId":50093239218,')
    assert snap["recv_ts"].timestamp() == 1723161254.206652


def test_reimport_replaces_instead_of_duplicating(shared_data: Path, lake: str) -> None:
    path = shared_data / OKX
    first = import_capture([path], None, root=lake)  # exchange detected from the file name
    second = import_capture([path], "okx", root=lake)
    assert first.rows_by_channel == second.rows_by_channel
    raw = _raw(lake, "okx", 1652400000 * 10**9, 1652500000 * 10**9)
    assert raw.height == 410
    assert raw.select("conn_id", "seq").is_duplicated().sum() == 0


def test_import_okx_channels(shared_data: Path, lake: str) -> None:
    stats = import_capture([shared_data / OKX], "okx", root=lake)
    assert stats.rows_by_channel == {
        ("okx", "control"): 18,  # the recorded subscribe acks are received frames too
        ("okx", "books"): 290,
        ("okx", "tickers"): 28,
        ("okx", "trades"): 74,
    }
    assert stats.read.sent == 3 and stats.read.connects == 1
    raw = _raw(lake, "okx", 1652400000 * 10**9, 1652500000 * 10**9)
    books = raw.filter(pl.col("channel") == "books")
    assert books.group_by("symbol").len().sort("symbol").rows() == [
        ("BTC-USD-220527", 99),
        ("BTC-USDT", 98),
        ("UNI-USD-SWAP", 93),
    ]
    # the file's one connect line starts its one session
    assert set(raw["conn_id"].unique()) == {"capture:OKX.ws.1.0:1"}
    assert stats.sessions == 1


def test_cryptofeed_rest_file_lands_snapshots_per_symbol(shared_data: Path, lake: str) -> None:
    stats = import_capture([shared_data / "cryptofeed-samples/BINANCE.http.0.0.gz"], None, root=lake)
    assert stats.rows_by_channel == {("binance", "depthSnapshot"): 4}
    raw = read_raw(lake, 1633900000 * 10**9, 1634100000 * 10**9, exchanges=["binance"])
    assert sorted(raw["symbol"].to_list()) == ["BLZETH", "LRCBTC", "NKNUSDT", "RUNEEUR"]


def test_bad_lines_are_counted_with_line_numbers(shared_data: Path, lake: str, tmp_path: Path) -> None:
    with gzip.open(shared_data / SPOT_0808, "rt") as fh:
        lines = [next(fh) for _ in range(20)]
    path = tmp_path / "btcusdt_broken.gz"
    with gzip.open(path, "wt") as out:
        out.write("".join(lines[:10]) + "oops, not a frame\n" + "".join(lines[10:]))
    stats = import_capture([path], "binance", root=lake)
    assert stats.rows == 20
    assert [(b.line, b.reason) for b in stats.bad_lines] == [(11, "not '<recv ns> <json>'")]
    assert "1 unreadable line(s), first" in stats.summary()
    assert capture_id(path) == "btcusdt_broken"
