"""The raw layer: minute partitions by receive time, no lost, torn or duplicated rows."""

from __future__ import annotations

import glob
import gzip
import os
import threading
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from mdplatform.lake import MINUTE_NS, RawWriter, _lakefile, list_manifests, list_raw_minutes, read_manifest, read_raw

T0 = 1_723_161_253_937_085_768  # first frame of the spot recording: 2024-08-08 23:54:13.937 UTC


def _frames(shared_data: Path, n: int) -> list[tuple[int, str]]:
    out = []
    with gzip.open(shared_data / "binance-hftbacktest/spot/btcusdt_20240808.gz", "rt") as fh:
        for line in fh:
            ts, frame = line.rstrip("\n").split(" ", 1)
            out.append((int(ts), frame))
            if len(out) == n:
                break
    return out


def test_rows_land_in_their_receive_minute_exactly_as_received(lake: str, shared_data: Path) -> None:
    frames = _frames(shared_data, 20_000)
    with RawWriter(lake) as writer:
        for seq, (ts, frame) in enumerate(frames, 1):
            writer.append(ts, "binance", "trade", "BTCUSDT", "c1", seq, frame)
    df = read_raw(lake, T0 - MINUTE_NS, T0 + 60 * MINUTE_NS)
    assert df.height == len(frames)
    assert df["payload"].to_list() == [f for _, f in frames]
    assert df["seq"].to_list() == list(range(1, len(frames) + 1))
    assert df["recv_ts"].dt.epoch("ns").to_list() == [t for t, _ in frames]
    assert str(df.schema["recv_ts"]) == "Datetime(time_unit='ns', time_zone='UTC')"
    # every file sits in the folder of the minute of its rows
    for (exchange, minute), paths in list_raw_minutes(lake, T0 - MINUTE_NS, T0 + 60 * MINUTE_NS).items():
        assert exchange == "binance"
        for path in paths:
            ts = pq.read_table(path, columns=["recv_ts"]).column(0).cast("int64").to_pylist()
            assert all(minute <= t < minute + MINUTE_NS for t in ts)
    first = sorted(glob.glob(f"{lake}/raw/exchange=binance/date=2024-08-08/hour=23/minute=54/*.parquet"))
    assert len(first) == 1


def test_only_closed_minutes_are_flushed_and_buffers_stay_bounded(lake: str) -> None:
    writer = RawWriter(lake, max_rows=1_000)
    minute0 = T0 - T0 % MINUTE_NS
    for i in range(2_500):  # 2.5 buffers' worth inside one minute
        writer.append(minute0 + i, "okx", "trades", "BTC-USDT", "c", i, "x")
    writer.append(minute0 + MINUTE_NS + 5, "okx", "trades", "BTC-USDT", "c", 2_500, "y")
    assert writer.buffered_rows == 501  # two full parts went out early
    assert writer.flush_closed(now_ns=minute0 + MINUTE_NS - 1) == 0  # minute not closed yet
    assert writer.flush_closed(now_ns=minute0 + MINUTE_NS) == 500
    writer.wait()
    assert writer.buffered_rows == 1
    writer.close()
    df = read_raw(lake, minute0, minute0 + 2 * MINUTE_NS)
    assert sorted(df["seq"].to_list()) == list(range(2_501))
    assert writer.stats.files_written == 4


def test_same_writer_id_rewrites_instead_of_duplicating(lake: str) -> None:
    for _ in range(2):
        with RawWriter(lake, writer_id="capture-x") as writer:
            for i in range(100):
                writer.append(T0 + i, "binance", "trade", "BTCUSDT", "c", i, str(i))
    assert read_raw(lake, T0 - MINUTE_NS, T0 + MINUTE_NS).height == 100


def test_a_failed_write_leaves_neither_a_torn_file_nor_a_temp_file(lake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class CrashMidway(_lakefile.pq.ParquetWriter):  # type: ignore[misc]
        def write_table(self, table, row_group_size=None):  # type: ignore[no-untyped-def]
            super().write_table(table.slice(0, 1))  # some bytes reach the disk, then the process "dies"
            raise OSError("disk gone")

    monkeypatch.setattr(_lakefile.pq, "ParquetWriter", CrashMidway)
    monkeypatch.setattr("mdplatform.lake._writer._WRITE_ATTEMPTS", 1)
    writer = RawWriter(lake)
    writer.append(T0, "binance", "trade", "BTCUSDT", "c", 1, "x")
    with pytest.raises(RuntimeError, match="raw lake write failed"):
        writer.close()
    leftovers = [p for p in Path(lake).rglob("*") if p.is_file()]
    assert leftovers == []


def test_readers_never_see_a_partial_file(lake: str) -> None:
    stop = threading.Event()
    seen: list[int] = []
    failures: list[Exception] = []

    def reader() -> None:
        while not stop.is_set():
            for path in glob.glob(f"{lake}/raw/**/*.parquet", recursive=True):
                try:
                    seen.append(pq.read_table(path).num_rows)
                except FileNotFoundError:
                    continue
                except Exception as exc:  # a torn file would fail here
                    failures.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    payload = "p" * 2_000
    with RawWriter(lake, max_rows=5_000) as writer:
        for i in range(60_000):
            writer.append(T0 + i * 1_000, "binance", "depth", "BTCUSDT", "c", i, payload)
    stop.set()
    thread.join()
    assert failures == []
    assert seen and set(seen) <= {5_000}
    assert not [p for p in Path(lake).rglob("*.tmp")]


def test_s3_lake_through_a_local_moto_server(moto_s3: dict[str, str]) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_s3["MDP_S3_ENDPOINT"])
    s3.create_bucket(Bucket="lake")
    with RawWriter("s3://lake/mdp") as writer:
        for i in range(3_000):
            writer.append(T0 + i * 50_000_000, "binance", "trade", "BTCUSDT", "c", i, f"f{i}")
    df = read_raw("s3://lake/mdp", T0 - MINUTE_NS, T0 + 10 * MINUTE_NS)
    assert df.height == 3_000
    assert df.sort("seq")["payload"].to_list() == [f"f{i}" for i in range(3_000)]
    keys = [k["Key"] for k in s3.list_objects_v2(Bucket="lake")["Contents"]]
    data = [k for k in keys if not k.startswith("mdp/_landed/")]
    assert all(k.startswith("mdp/raw/exchange=binance/date=2024-08-") for k in data)
    assert all(os.path.basename(k).startswith("part-") for k in data)
    # the landing log names every part file written, once
    manifests = list_manifests("s3://lake/mdp", 0, 2**62)
    landed = [f for m in manifests for f in read_manifest("s3://lake/mdp", m)]
    assert len(landed) == len(data) and sum(f.rows for f in landed) == 3_000
    assert {f.table for f in landed} == {"raw"}


def test_reading_an_empty_window_gives_the_raw_schema(lake: str) -> None:
    df = read_raw(lake, T0, T0 + MINUTE_NS)
    assert df.height == 0 and list(df.columns) == [
        "recv_ts",
        "exchange",
        "channel",
        "symbol",
        "conn_id",
        "seq",
        "payload",
    ]
    assert isinstance(df, pl.DataFrame)
