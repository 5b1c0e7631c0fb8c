"""The write-ahead journal: what a crashed writer left is written to the lake exactly once, a torn tail is
ignored, and one directory serves one writer at a time."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from mdplatform.lake import MINUTE_NS, JournalError, RawWriter, read_events, read_raw
from mdplatform.lake._journal import Journal, read_segment

sys.path.insert(0, str(Path(__file__).parents[1] / "collector"))
from _collector_util import batch_of  # a FrameBatch made in Python, as the compiled receive path does

T0 = 1_723_161_253_937_085_768  # 2024-08-08 23:54:13.937 UTC
MINUTE0 = T0 - T0 % MINUTE_NS


def _crash_copy(journal: Path, into: Path) -> Path:
    """The journal as a process killed now would leave it (what was appended is in the files). A tick hands its rows
    to the journal's thread: ``RawWriter.wait`` first, for what a crash a few milliseconds later would leave."""
    shutil.copytree(journal, into, ignore=shutil.ignore_patterns("LOCK"))
    return into


def _append(writer: RawWriter, first: int, n: int) -> None:
    for i in range(first, first + n):
        writer.append(T0 + i * 1000, "binance", "trade", "BTCUSDT", "c1", i, f"frame {i}")


def test_a_crashed_writers_rows_and_events_land_from_its_journal(lake: str, tmp_path: Path) -> None:
    writer = RawWriter(lake, journal=str(tmp_path / "journal"), max_rows=1_000)
    _append(writer, 1, 2_500)  # two files written early, 500 rows buffered
    writer.event(T0, "binance", "c1", "open", "", "", 0, None, None, "ws://x")
    writer.tick(now_ns=T0)  # the open minute's rows and the event go to the journal
    writer.wait()
    assert read_raw(lake, MINUTE0, MINUTE0 + MINUTE_NS).height == 2_000
    left = _crash_copy(tmp_path / "journal", tmp_path / "after-crash")
    writer.close()  # (the original goes on normally; the copy is what a kill -9 at this point leaves)
    shutil.rmtree(lake)  # nothing of it in the lake: all of it comes from the journal
    second = RawWriter(lake, journal=str(left), max_rows=1_000)
    assert second.health()["backlog_segments"] == 1
    second.tick(now_ns=T0)
    second.close()
    df = read_raw(lake, MINUTE0, MINUTE0 + MINUTE_NS)
    assert sorted(df["seq"].to_list()) == list(range(1, 2_501))
    assert read_events(lake, MINUTE0, MINUTE0 + MINUTE_NS)["kind"].to_list() == ["open"]
    assert second.stats.rows_replayed == 2_500
    assert list(left.glob("*/*.wal")) == []


def test_replaying_over_files_already_committed_replaces_them(lake: str, tmp_path: Path) -> None:
    writer = RawWriter(lake, journal=str(tmp_path / "journal"), max_rows=1_000)
    _append(writer, 1, 2_500)
    writer.tick(now_ns=T0)
    writer.wait()  # 2 of the minute's 3 files are in the lake, as at a crash
    left = _crash_copy(tmp_path / "journal", tmp_path / "after-crash")
    files_before = sorted(Path(lake).rglob("*.parquet"))
    assert len(files_before) == 2
    second = RawWriter(lake, journal=str(left), max_rows=1_000)
    second.tick(now_ns=T0)
    second.close()
    df = read_raw(lake, MINUTE0, MINUTE0 + MINUTE_NS)
    assert df.height == 2_500 and df["seq"].n_unique() == 2_500
    files_after = sorted(Path(lake).rglob("*.parquet"))
    assert set(files_before) < set(files_after) and len(files_after) == 3  # same names, one more file
    writer.close()


def test_a_torn_tail_is_ignored_and_reported(lake: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    writer = RawWriter(lake, journal=str(tmp_path / "journal"))
    _append(writer, 1, 100)
    writer.tick(now_ns=T0)
    _append(writer, 101, 100)
    writer.tick(now_ns=T0)
    writer.wait()
    left = _crash_copy(tmp_path / "journal", tmp_path / "after-crash")
    writer.close()
    (segment,) = left.glob("*/*.wal")
    records, torn = read_segment(str(segment))
    assert [r.batch.num_rows for r in records] == [100, 100] and torn == 0
    with open(segment, "r+b") as fh:  # the second record half-written when the process died
        fh.truncate(segment.stat().st_size - 50)
    shutil.rmtree(lake)
    with RawWriter(lake, journal=str(left)) as second:
        second.tick(now_ns=T0)
    assert read_raw(lake, MINUTE0, MINUTE0 + MINUTE_NS)["seq"].to_list() == list(range(1, 101))
    assert "torn tail" in caplog.text


def test_batches_are_journaled_as_they_come_and_land_from_the_journal(lake: str, tmp_path: Path) -> None:
    """Compiled-path batches (``append_batch``) of a few thousand frames are journaled at once, not at the tick."""
    writer = RawWriter(lake, journal=str(tmp_path / "journal"))
    payloads = [f'{{"stream":"btcusdt@trade","data":{{"t":{i}}}}}' for i in range(6_000)]
    routes = [("trade", "BTCUSDT")]
    writer.append_batch("binance", "c1", 1, batch_of(payloads[:5_000], [T0 + 10] * 5_000, [0] * 5_000), routes)
    writer.append_batch("binance", "c1", 5_001, batch_of(payloads[5_000:], [T0 + 20] * 1_000, [0] * 1_000), routes)
    writer.wait()  # no tick: the first batch is on disk, the second waits for the tick
    left = _crash_copy(tmp_path / "journal", tmp_path / "after-crash")
    (segment,) = left.glob("*/*.wal")
    records, torn = read_segment(str(segment))
    assert [r.batch.num_rows for r in records] == [5_000] and torn == 0
    writer.tick(now_ns=T0)
    writer.wait()
    shutil.rmtree(left)
    left = _crash_copy(tmp_path / "journal", tmp_path / "after-crash")
    writer.close()
    shutil.rmtree(lake)
    with RawWriter(lake, journal=str(left)) as second:
        second.tick(now_ns=T0)
    df = read_raw(lake, MINUTE0, MINUTE0 + MINUTE_NS).sort("seq")
    assert df["seq"].to_list() == list(range(1, 6_001)) and df["payload"].to_list() == payloads
    assert set(df["channel"]) == {"trade"} and set(df["symbol"]) == {"BTCUSDT"}


def test_a_journal_that_cannot_be_written_stops_the_collection(lake: str, tmp_path: Path) -> None:
    writer = RawWriter(lake, journal=str(tmp_path / "journal"))
    assert writer.journal is not None

    def disk_full(*_: object) -> None:
        raise JournalError("cannot write the journal: No space left on device")

    writer.journal.append = disk_full  # type: ignore[method-assign]
    _append(writer, 1, 10)
    writer.tick(now_ns=T0)  # handed to the journal's thread, which fails
    with pytest.raises(JournalError, match="No space left"):
        writer.tick(now_ns=T0)


def test_one_journal_directory_serves_one_writer(tmp_path: Path) -> None:
    first = Journal(str(tmp_path / "j"), "w1", budget_bytes=1 << 20)
    with pytest.raises(JournalError, match=r"in use by another ingestor \(pid \d+\)"):
        Journal(str(tmp_path / "j"), "w2", budget_bytes=1 << 20)
    first.close()
    Journal(str(tmp_path / "j"), "w2", budget_bytes=1 << 20).close()


def test_the_journal_is_fsynced_within_a_second(tmp_path: Path) -> None:
    with RawWriter(str(tmp_path / "lake"), journal=str(tmp_path / "journal")) as writer:
        _append(writer, 1, 10)
        writer.tick(now_ns=T0)
        assert writer.journal is not None
        before = writer.journal.fsyncs
        time.sleep(1.3)
        assert writer.journal.fsyncs == before + 1


def test_where_the_journal_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mdplatform.ingest import journal_dir

    monkeypatch.delenv("MDP_JOURNAL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert journal_dir(None, str(tmp_path / "lake")) == f"{tmp_path}/lake-journal"  # beside a local lake
    assert journal_dir(None, "s3://bucket/some/prefix") == f"{tmp_path}/.mdp-journal/bucket_some_prefix"
    assert journal_dir("j", "s3://bucket/x") == f"{tmp_path}/j"  # configured
    monkeypatch.setenv("MDP_JOURNAL", "/var/lib/mdp/journal")
    assert journal_dir(None, str(tmp_path / "lake")) == "/var/lib/mdp/journal"
