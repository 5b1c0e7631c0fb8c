"""Compaction of the minute trees (``mdplatform.lake.compact``) on a lake of the real spot recording's minute files:
every row kept exactly once and read back exactly as before, whatever a reader or a crash meets; re-running does
nothing; a minute file landing in a compacted hour is read and merged next time; on S3 too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import polars as pl
import pyarrow.parquet as pq
import pytest
from _lakes import ALL, BOOKS, TRADES, assert_same, snapshot
from click.testing import CliRunner

from mdplatform._cli_lake import lake as lake_cli
from mdplatform.lake import (
    CompactionBusy,
    RawWriter,
    _compact,
    _reader,
    compact,
    lake_stats,
    list_raw_minutes,
    raw_minute_bounds,
    read_raw,
)

#: a time at which every hour and day of the recording is final and old
LATER = 1_800_000_000 * 10**9
NO_DAYS = 10**30  # a day age no day reaches: hour files only
H23 = 1723158000 * 10**9  # 2024-08-08 23:00 UTC


def _files(root: str) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*.parquet"))


def _raw_files(root: str) -> list[str]:
    return [f for f in _files(root) if f.startswith("raw/")]


def test_hours_then_days_keep_every_row_and_its_order(minute_lake: str) -> None:
    before = snapshot(minute_lake)
    minutes = list_raw_minutes(minute_lake, *ALL)
    bounds = raw_minute_bounds(minute_lake)
    assert len(_raw_files(minute_lake)) == 12  # 23:54 .. 00:05, one file a minute

    hours = compact(minute_lake, now_ns=LATER, day_age_ns=NO_DAYS)
    assert sorted((s.table, s.start_ns, s.files_before, s.files_after) for s in hours.spans) == [
        ("events", H23, 6, 1),
        ("events", H23 + 3600 * 10**9, 6, 1),
        ("raw", H23, 6, 1),
        ("raw", H23 + 3600 * 10**9, 6, 1),
    ]
    assert [f.split("/")[2:4] for f in _raw_files(minute_lake)] == [
        ["date=2024-08-08", "hour=23"],
        ["date=2024-08-09", "hour=00"],
    ]
    assert_same(before, snapshot(minute_lake))
    assert list_raw_minutes(minute_lake, *ALL).keys() == minutes.keys()
    assert raw_minute_bounds(minute_lake) == bounds
    # each row group holds one channel group, as its footer says
    for name in _raw_files(minute_lake):
        f = pq.ParquetFile(Path(minute_lake, name))
        groups = orjson.loads(f.metadata.metadata[b"mdp.groups"])
        for i, group in enumerate(groups):
            channels = set(f.read_row_group(i, columns=["channel"]).column(0).to_pylist())
            assert channels <= {"trades": set(TRADES), "books": set(BOOKS), "other": {"bookTicker"}}[group]

    # again: nothing to do, nothing touched
    files = {f: os.stat(Path(minute_lake, f)).st_mtime_ns for f in _files(minute_lake)}
    again = compact(minute_lake, now_ns=LATER, day_age_ns=NO_DAYS)
    assert again.spans == [] and again.files_before == 0
    assert {f: os.stat(Path(minute_lake, f)).st_mtime_ns for f in _files(minute_lake)} == files

    # days: the recording's two days hold one hour each, a file already: nothing to gain
    assert compact(minute_lake, now_ns=LATER, day_age_ns=0).spans == []


def test_a_day_of_minute_files_becomes_one_file(minute_lake: str) -> None:
    before = snapshot(minute_lake)
    days = compact(minute_lake, now_ns=LATER, day_age_ns=0)
    assert sorted((s.table, s.span_ns, s.files_before) for s in days.spans) == [
        ("events", 86_400 * 10**9, 6),
        ("events", 86_400 * 10**9, 6),
        ("raw", 86_400 * 10**9, 6),
        ("raw", 86_400 * 10**9, 6),
    ]
    # raw/exchange=binance/date=D/<day file>
    assert [f.split("/")[2] for f in _raw_files(minute_lake)] == ["date=2024-08-08", "date=2024-08-09"]
    assert all(len(f.split("/")) == 4 for f in _raw_files(minute_lake))
    assert_same(before, snapshot(minute_lake))
    # only final hours: an hour is left alone until it is min_age past its end
    young = snapshot(minute_lake)
    assert compact(minute_lake, now_ns=H23 + 3600 * 10**9, min_age_ns=10**9).spans == []
    assert_same(young, snapshot(minute_lake))


def test_a_read_cut_to_part_of_a_compacted_hour(minute_lake: str) -> None:
    lo, hi = H23 + 3600 * 10**9 + 2 * 60 * 10**9 + 30 * 10**9, H23 + 3600 * 10**9 + 4 * 60 * 10**9
    before = read_raw(minute_lake, lo, hi, channels=TRADES)
    compact(minute_lake, now_ns=LATER, day_age_ns=NO_DAYS)
    after = read_raw(minute_lake, lo, hi, channels=TRADES)
    assert after.height > 0 and after.equals(before)
    # receive minutes 00:03 (the first whole minute after lo) through 00:03: hi is the start of 00:04
    minutes = after.get_column("recv_ts").dt.truncate("1m").unique().dt.epoch("ns").to_list()
    assert minutes == [H23 + 3600 * 10**9 + 3 * 60 * 10**9]


def test_a_reader_during_compaction_sees_every_row_once(minute_lake: str) -> None:
    before = snapshot(minute_lake)
    stop = threading.Event()
    seen: list[int] = []
    wrong: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                trades = read_raw(minute_lake, *ALL, channels=TRADES)
                books = read_raw(minute_lake, *ALL, channels=BOOKS)
            except Exception as exc:
                wrong.append(repr(exc))
                continue
            seen.append(trades.height)
            if not (trades.equals(before["trades"]) and books.equals(before["books"])):
                wrong.append(f"{trades.height} trades, {books.height} book rows")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        time.sleep(0.2)
        compact(minute_lake, now_ns=LATER, day_age_ns=NO_DAYS)
        compact(minute_lake, now_ns=LATER, day_age_ns=0)
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    assert wrong == [] and len(seen) >= 2


def test_files_replaced_between_listing_and_reading_are_listed_again(
    minute_lake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race a reader can lose: it lists the minute files, compaction replaces them, it opens them."""
    before = snapshot(minute_lake)
    real = _reader._read_files
    calls: list[int] = []

    def compact_first(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            compact(minute_lake, now_ns=LATER, day_age_ns=NO_DAYS)
        return real(*args, **kwargs)

    monkeypatch.setattr(_reader, "_read_files", compact_first)
    assert read_raw(minute_lake, *ALL, channels=TRADES).equals(before["trades"])
    assert len(calls) == 2  # the first read failed on a deleted file; the second listed the hour files


def test_a_crash_before_the_commit_leaves_the_lake_as_it_was(minute_lake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(minute_lake)
    files = _files(minute_lake)
    real = _compact._copy
    copied: list[str] = []

    def crash_midway(fs, f, writer, schema):  # type: ignore[no-untyped-def]
        copied.append(f.rel)
        if len(copied) == 3:
            raise OSError("disk gone")
        return real(fs, f, writer, schema)

    monkeypatch.setattr(_compact, "_copy", crash_midway)
    with pytest.raises(OSError, match="disk gone"):
        compact(minute_lake, now_ns=LATER, day_age_ns=NO_DAYS)
    assert _files(minute_lake) == files
    assert not list(Path(minute_lake).rglob("*.tmp"))
    assert_same(before, snapshot(minute_lake))
    monkeypatch.setattr(_compact, "_copy", real)
    assert len(compact(minute_lake, now_ns=LATER, day_age_ns=NO_DAYS).spans) == 4
    assert_same(before, snapshot(minute_lake))


def test_a_crash_after_the_commit_leaves_files_every_reader_ignores(
    minute_lake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(minute_lake)
    real = _compact._delete

    def crash(fs, files):  # type: ignore[no-untyped-def]
        raise OSError("killed before deleting")

    monkeypatch.setattr(_compact, "_delete", crash)
    with pytest.raises(OSError, match="killed before deleting"):
        compact(minute_lake, now_ns=LATER, day_age_ns=NO_DAYS)
    hour = [f for f in _raw_files(minute_lake) if "/hour=23/" in f]
    assert len(hour) == 7  # the hour file beside the six minute files it absorbed
    assert_same(before, snapshot(minute_lake))
    (raw,) = [s for s in lake_stats(minute_lake, now_ns=LATER) if s.layer == "raw"]
    assert raw.leftover_files == 6 and raw.rows == before["all"].height

    monkeypatch.setattr(_compact, "_delete", real)
    finish = compact(minute_lake, now_ns=LATER, day_age_ns=NO_DAYS)
    # the hour whose file was committed only loses its left-overs; the others are compacted
    assert (
        sorted((s.table, s.start_ns, s.written) for s in finish.spans)
        == [
            ("events", H23 + 3600 * 10**9, True),
            ("raw", H23, False),
            ("raw", H23 + 3600 * 10**9, True),
        ]
        or sorted((s.table, s.start_ns, s.written) for s in finish.spans)[0][0] == "events"
    )
    assert len(_raw_files(minute_lake)) == 2
    assert_same(before, snapshot(minute_lake))


def test_killed_at_any_moment_the_lake_reads_the_same(minute_lake: str) -> None:
    """``kill -9`` of ``mdp lake compact`` a few times at growing delays: after each, every reader sees the rows it
    saw before; a run to the end then leaves one file per hour."""
    before = snapshot(minute_lake)
    mdp = Path(sys.executable).with_name("mdp")
    for delay in (1.0, 1.6):
        proc = subprocess.Popen(
            [str(mdp), "lake", "compact", "--lake", minute_lake, "--day-age", "100000d", "--min-age", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert_same(before, snapshot(minute_lake))
    # temp files of a killed write are never read; a later run removes them once they are old
    compact(minute_lake, now_ns=LATER, day_age_ns=NO_DAYS)
    assert len(_raw_files(minute_lake)) == 2 and not list(Path(minute_lake).rglob("*.tmp"))
    assert_same(before, snapshot(minute_lake))


def test_a_late_minute_file_is_read_then_merged(minute_lake: str, tmp_path: Path) -> None:
    before = snapshot(minute_lake)
    compact(minute_lake, now_ns=LATER, day_age_ns=NO_DAYS)
    late_at = H23 + 3600 * 10**9 + 2 * 60 * 10**9 + 5
    with RawWriter(minute_lake, writer_id="late") as writer:  # a journal replayed long after its crash
        writer.append(late_at, "binance", "trade", "BTCUSDT", "crashed", 1, '{"late":1}')
    trades = read_raw(minute_lake, *ALL, channels=TRADES)
    assert trades.height == before["trades"].height + 1
    assert trades.head(before["trades"].height).equals(before["trades"])  # the late file is read after the hour
    merged = compact(minute_lake, now_ns=LATER, day_age_ns=NO_DAYS)
    assert [(s.table, s.files_before) for s in merged.spans] == [("raw", 2)]
    assert len(_raw_files(minute_lake)) == 2
    assert read_raw(minute_lake, *ALL, channels=TRADES).equals(trades)
    # the same file landing again (a replay of the same journal segment): absorbed already, never read twice
    with RawWriter(minute_lake, writer_id="late") as writer:
        writer.append(late_at, "binance", "trade", "BTCUSDT", "crashed", 1, '{"late":1}')
    assert read_raw(minute_lake, *ALL, channels=TRADES).equals(trades)
    assert [s.written for s in compact(minute_lake, now_ns=LATER, day_age_ns=NO_DAYS).spans] == [False]
    assert len(_raw_files(minute_lake)) == 2


def test_one_compaction_at_a_time(minute_lake: str) -> None:
    from mdplatform.lake import filesystem

    fs, base = filesystem(minute_lake)
    with _compact._lock(fs, base), pytest.raises(CompactionBusy):
        compact(minute_lake, now_ns=LATER)


def test_the_cli_compacts_and_counts(minute_lake: str) -> None:
    runner = CliRunner()
    stats = runner.invoke(lake_cli, ["stats", "--lake", minute_lake], catch_exceptions=False)
    assert stats.exit_code == 0, stats.output
    raw_line = next(line for line in stats.output.splitlines() if line.startswith("raw "))
    assert raw_line.split()[:4] == ["raw", "binance", "12", "99,574"]
    assert "12 files -> 2" in raw_line  # two days past --day-age: one file each
    done = runner.invoke(lake_cli, ["compact", "--lake", minute_lake, "--day-age", "100000d"], catch_exceptions=False)
    assert done.exit_code == 0 and "compacted 4 span(s)" in done.output, done.output
    after = runner.invoke(lake_cli, ["stats", "--lake", minute_lake], catch_exceptions=False)
    raw_line = next(line for line in after.output.splitlines() if line.startswith("raw "))
    assert raw_line.split()[:6] == ["raw", "binance", "2", "99,574", raw_line.split()[4], "0/2/0"]
    assert "12 files" in raw_line and "compaction saved 20 files" in after.output


def test_on_s3(moto_s3: dict[str, str], minute_lake_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from mdplatform.lake import filesystem

    boto3.client("s3", endpoint_url=moto_s3["MDP_S3_ENDPOINT"]).create_bucket(Bucket="compact-lake")
    root = "s3://compact-lake/mdp"
    with RawWriter(root, writer_id="collector") as writer:  # hour 23's frames: events compact the same way
        raw = read_raw(str(minute_lake_template), H23, H23 + 3600 * 10**9).sort("recv_ts", maintain_order=True)
        for r in raw.with_columns(pl.col("recv_ts").dt.epoch("ns")).iter_rows():
            writer.append(*r)
    before = {"trades": read_raw(root, *ALL, channels=TRADES), "all": read_raw(root, *ALL).sort("conn_id", "seq")}
    real = _compact._delete
    monkeypatch.setattr(_compact, "_delete", lambda fs, files: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError, match="killed"):
        compact(root, now_ns=LATER, day_age_ns=NO_DAYS, tables=["raw"])
    # the hour file and the minute files it absorbed: each row read once
    assert read_raw(root, *ALL, channels=TRADES).equals(before["trades"])
    monkeypatch.setattr(_compact, "_delete", real)
    compact(root, now_ns=LATER, day_age_ns=NO_DAYS, tables=["raw"])
    assert read_raw(root, *ALL, channels=TRADES).equals(before["trades"])
    assert read_raw(root, *ALL).sort("conn_id", "seq").equals(before["all"])
    assert compact(root, now_ns=LATER, day_age_ns=NO_DAYS, tables=["raw"]).spans == []
    fs, base = filesystem(root)
    raw = [p for p in fs.find(f"{base}/raw") if p.endswith(".parquet")]
    assert len(raw) == 1 and not fs.exists(f"{base}/_compaction.lock")
    with _compact._lock(fs, base), pytest.raises(CompactionBusy):  # the lock object, created only if absent
        compact(root, now_ns=LATER)
