"""The import's fast paths give what the line-by-line code gives: the block reader of hftbacktest files (frames as
views into the decompressed block) against the line reader, and each exchange's vectorized exchange times against
``exchange_time`` frame by frame; an import into S3 lands the same rows as one on local disk, one file per hour."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from mdplatform.capture import ReadStats, import_capture
from mdplatform.capture._read import _hftbacktest_line, read_capture, read_chunks
from mdplatform.exchanges import get_exchange
from mdplatform.lake import read_events, read_raw

SPOT = "binance-hftbacktest/spot/btcusdt_20240808.gz"
ALL = (0, 2**62)


def _by_lines(path: Path) -> tuple[list[tuple[int, str, str, str, int]], ReadStats]:
    """Every line through the line reader alone."""
    stats = ReadStats()
    out = []
    with gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape", newline="\n") as fh:
        for lineno, line in enumerate(fh, 1):
            f = _hftbacktest_line(line.rstrip("\r\n"), lineno, str(path), stats, lambda: "BTCUSDT")
            if f is not None:
                out.append((f.recv_ns, f.frame, f.kind, f.symbol, f.line))
    return out, stats


def _by_blocks(path: Path) -> tuple[list[tuple[int, str, str, str, int]], ReadStats]:
    stats = ReadStats()
    return [(f.recv_ns, f.frame, f.kind, f.symbol, f.line) for f in read_capture(path, stats=stats)], stats


def test_the_block_reader_reads_what_the_line_reader_does(shared_data: Path, tmp_path: Path) -> None:
    lines, line_stats = _by_lines(shared_data / SPOT)
    blocks, block_stats = _by_blocks(shared_data / SPOT)
    assert blocks == lines and len(blocks) == 41_249
    assert (block_stats.ws, block_stats.rest, block_stats.bad) == (line_stats.ws, line_stats.rest, [])
    # frames of 12 bytes or fewer are held inside their view, longer ones point into the block; a snapshot; the
    # last line without its newline
    with gzip.open(shared_data / SPOT, "rt") as fh:
        real = [next(fh) for _ in range(9)]
    crafted = tmp_path / "crafted.gz"
    body = "".join(real) + '1723161254300000000 {}\n1723161254300000001 [1,2]\n1723161254300000002 {"ab":"cdefgh"}'
    crafted.write_bytes(gzip.compress(body.encode()))
    lines, _ = _by_lines(crafted)
    blocks, stats = _by_blocks(crafted)
    assert blocks == lines and [b[1] for b in blocks[-3:]] == ["{}", "[1,2]", '{"ab":"cdefgh"}']
    assert [b[2] for b in blocks].count("rest") == 1 and stats.rest == 1


@pytest.mark.parametrize(
    "odd",
    [
        "\n",  # blank
        "1723161254300000000 {}\r\n",  # a carriage return
        "1723161254 {}\n",  # seconds, not nanoseconds
        "17231612543000000001 {}\n",  # 20 digits
        "1723161254300000000 not json\n",
    ],
)
def test_a_block_with_a_line_that_is_not_plain_is_read_line_by_line(
    shared_data: Path, tmp_path: Path, odd: str
) -> None:
    with gzip.open(shared_data / SPOT, "rt") as fh:
        real = [next(fh) for _ in range(20)]
    path = tmp_path / "odd.gz"
    path.write_bytes(gzip.compress(("".join(real[:10]) + odd + "".join(real[10:])).encode()))
    lines, line_stats = _by_lines(path)
    blocks, block_stats = _by_blocks(path)
    assert blocks == lines
    assert (block_stats.blank, block_stats.bad) == (line_stats.blank, line_stats.bad)
    assert blocks[-1][4] == 21  # the line numbers go on past the odd line


@pytest.mark.parametrize(
    ("path", "exchange"),
    [
        ("binance-hftbacktest/spot/btcusdt_20240808.gz", "binance"),
        ("binance-hftbacktest/usdm/btcusdt_20240808.gz", "binance-usdm"),
        ("cryptofeed-samples/OKX.ws.1.0.gz", "okx"),
    ],
)
def test_exchange_times_are_exchange_time_frame_by_frame(shared_data: Path, path: str, exchange: str) -> None:
    x = get_exchange(exchange)
    frames = pl.concat([c.frames for c in read_chunks(shared_data / path)])
    one_by_one = [x.exchange_time(f) for f in frames]
    assert x.exchange_times(frames).to_list() == one_by_one
    assert sum(t is not None for t in one_by_one) > len(one_by_one) // 4


def test_an_import_into_s3_lands_what_one_on_disk_does(
    moto_s3: dict[str, str], shared_data: Path, tmp_path: Path
) -> None:
    import boto3

    from mdplatform.lake import filesystem

    boto3.client("s3", endpoint_url=moto_s3["MDP_S3_ENDPOINT"]).create_bucket(Bucket="import-lake")
    local, remote = str(tmp_path / "lake"), "s3://import-lake/mdp"
    import_capture([shared_data / SPOT], "binance", local)
    stats = import_capture([shared_data / SPOT], "binance", remote)
    assert stats.files_written == 1 and stats.event_files_written == 1
    for read in (read_raw, read_events):
        assert read(remote, *ALL).equals(read(local, *ALL))
    fs, base = filesystem(remote)
    assert [p.rsplit("/", 3)[1:] for p in fs.find(f"{base}/raw")] == [
        ["date=2024-08-08", "hour=23", "capture-btcusdt_20240808-00000.parquet"]
    ]
