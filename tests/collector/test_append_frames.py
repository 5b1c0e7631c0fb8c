"""The collector's way into the lake: whole reads of frames (``RawWriter.append_frames``) land the same rows as
frame-by-frame appends, numbered on within each read, split into files at ``max_rows``."""

from __future__ import annotations

import gzip
from pathlib import Path

from mdplatform.exchanges import get_exchange
from mdplatform.lake import RawWriter, read_raw

SPOT = "binance-hftbacktest/spot/btcusdt_20240808.gz"
M = 1_723_161_240 * 10**9  # 2024-08-08 23:54:00 UTC


def test_reads_land_the_rows_of_single_appends(tmp_path: Path, shared_data: Path) -> None:
    with gzip.open(shared_data / SPOT, "rt") as fh:
        frames = [line.split(" ", 1)[1].rstrip("\n") for _, line in zip(range(700), fh, strict=False)]
    route = get_exchange("binance").route
    # reads of 1, 250 and 449 frames on two connections: files are cut at 300 rows, in the middle of reads
    reads = [(M + 5, "a", 1, frames[:1]), (M + 7, "b", 1, frames[1:251]), (M + 9, "a", 2, frames[251:])]
    by_read, by_row = str(tmp_path / "read"), str(tmp_path / "row")
    with RawWriter(by_read, max_rows=300, writer_id="w") as writer:
        for recv, conn, seq, payloads in reads:
            writer.append_frames(recv, "binance", conn, seq, [route(p) for p in payloads], payloads)
        assert writer.stats.rows_appended == 700
    with RawWriter(by_row, max_rows=300, writer_id="w") as writer:
        for recv, conn, seq, payloads in reads:
            for i, p in enumerate(payloads):
                writer.append(recv, "binance", *route(p), conn, seq + i, p)
    got, expected = read_raw(by_read, 0, 2**62), read_raw(by_row, 0, 2**62)
    assert got.height == 700 and got.sort("conn_id", "seq").equals(expected.sort("conn_id", "seq"))
    assert got.filter(got["conn_id"] == "a")["seq"].sort().to_list() == list(range(1, 451))
    assert sorted(p.name for p in Path(by_read).rglob("*.parquet")) == sorted(
        p.name for p in Path(by_row).rglob("*.parquet")
    )  # the same files: split at max_rows
