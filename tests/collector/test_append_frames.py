"""The collector's ways into the lake land the same rows as frame-by-frame appends: whole reads of frames
(``RawWriter.append_frames``, the pure-Python receive path) and batches laid out as Arrow buffers
(``RawWriter.append_batch``, the compiled path), numbered on within each read or batch, split into files at
``max_rows`` and by receive minute."""

from __future__ import annotations

import gzip
from pathlib import Path

from _collector_util import batch_of

from mdplatform.exchanges import get_exchange
from mdplatform.lake import MINUTE_NS, RawWriter, read_raw

SPOT = "binance-hftbacktest/spot/btcusdt_20240808.gz"
M = 1_723_161_240 * 10**9  # 2024-08-08 23:54:00 UTC


def _frames(shared_data: Path, n: int) -> list[str]:
    with gzip.open(shared_data / SPOT, "rt") as fh:
        return [line.split(" ", 1)[1].rstrip("\n") for _, line in zip(range(n), fh, strict=False)]


def test_reads_and_batches_land_the_rows_of_single_appends(tmp_path: Path, shared_data: Path) -> None:
    frames = _frames(shared_data, 700)
    route = get_exchange("binance").route
    # reads of 1, 250 and 449 frames on two connections: files are cut at 300 rows, in the middle of reads
    reads = [(M + 5, "a", 1, frames[:1]), (M + 7, "b", 1, frames[1:251]), (M + 9, "a", 2, frames[251:])]
    by_read, by_row, by_batch = str(tmp_path / "read"), str(tmp_path / "row"), str(tmp_path / "batch")
    with RawWriter(by_read, max_rows=300, writer_id="w") as writer:
        for recv, conn, seq, payloads in reads:
            writer.append_frames(recv, "binance", conn, seq, [route(p) for p in payloads], payloads)
        assert writer.stats.rows_appended == 700
    with RawWriter(by_row, max_rows=300, writer_id="w") as writer:
        for recv, conn, seq, payloads in reads:
            for i, p in enumerate(payloads):
                writer.append(recv, "binance", *route(p), conn, seq + i, p)
    with RawWriter(by_batch, max_rows=300, writer_id="w") as writer:
        for recv, conn, seq, payloads in reads:
            known = list(dict.fromkeys(route(p) for p in payloads))  # a connection's route list
            batch = batch_of(payloads, [recv] * len(payloads), [known.index(route(p)) for p in payloads])
            writer.append_batch("binance", conn, seq, batch, known)
        assert writer.stats.rows_appended == 700
    expected = read_raw(by_row, 0, 2**62).sort("conn_id", "seq")
    for got in (read_raw(by_read, 0, 2**62), read_raw(by_batch, 0, 2**62)):
        assert got.height == 700 and got.sort("conn_id", "seq").equals(expected)
        assert got.filter(got["conn_id"] == "a")["seq"].sort().to_list() == list(range(1, 451))
    names = sorted(p.name for p in Path(by_row).rglob("*.parquet"))
    assert len(names) == 3  # 300 + 300 + 100 rows
    for other in (by_read, by_batch):  # the same files: split at max_rows
        assert sorted(p.name for p in Path(other).rglob("*.parquet")) == names


def test_a_batch_across_a_minutes_end_lands_in_both_minutes(tmp_path: Path, shared_data: Path) -> None:
    frames = _frames(shared_data, 50)
    route = get_exchange("binance").route
    known = list(dict.fromkeys(route(p) for p in frames))
    end = M + MINUTE_NS
    # reads at 10 ms steps across the minute's end, and the wall clock stepping back into the first minute
    recv = [end - 200_000_000 + 10_000_000 * i for i in range(40)] + [end - 5_000_000] * 10
    root = str(tmp_path / "lake")
    with RawWriter(root, writer_id="w") as writer:
        writer.append_batch("binance", "c", 7, batch_of(frames, recv, [known.index(route(p)) for p in frames]), known)
    # (a file keeps its rows in row groups by channel group: in seq order within each)
    first, second = read_raw(root, M, end).sort("seq"), read_raw(root, end, end + MINUTE_NS).sort("seq")
    assert first["seq"].to_list() == [*range(7, 27), *range(47, 57)]
    assert second["seq"].to_list() == list(range(27, 47))
    both = first.vstack(second).sort("seq")
    assert both["payload"].to_list() == frames
    assert [(c, s) for c, s in zip(both["channel"], both["symbol"], strict=True)] == [route(p) for p in frames]
    assert both["recv_ts"].dt.epoch("ns").to_list() == recv
