"""A range's partition files are read back in the process that wrote them (the checks, three of them on trades, and
the candles step after the trades step): a local file this process wrote or read, unchanged since (its inode,
modification time and size), is not read again; a file replaced (a re-run, another process), removed or never
kept is read from disk. tests/quality/test_suites.py checks that the frames kept by a pipeline run are exactly
what their files hold."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from mdplatform.warehouse import _kept, read_partition, read_partition_file, remove_file, write_partition


def test_a_written_file_is_read_as_its_frame_until_it_changes(tmp_path: Path) -> None:
    path = str(tmp_path / "trades" / "date=2024-08-09" / "hour=00" / "data.parquet")
    written = pl.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    write_partition(path, written)
    assert read_partition_file(path) is written  # not read again
    # the table's typed read takes it from the kept frame too: cast and projected
    typed = read_partition(path, {"a": pl.Int32(), "b": pl.String()}, ["a"])
    assert typed is not None and typed.schema == pl.Schema({"a": pl.Int32()}) and typed["a"].to_list() == [1, 2]
    # another writer replaces it (a new file, the same size): read from disk, and kept from then on
    other = pl.DataFrame({"a": [3, 4], "b": ["z", "w"]})
    tmp = path + ".other"
    other.write_parquet(tmp)
    os.replace(tmp, path)
    again = read_partition_file(path)
    assert again is not None and again is not written and again.equals(other)
    assert read_partition_file(path) is again
    remove_file(path)
    assert read_partition_file(path) is None
    assert read_partition(path, {"a": pl.Int64()}) is None


def test_at_most_a_budget_of_rows_is_kept_the_least_recently_used_going_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_kept, "KEPT_ROWS", 10)
    monkeypatch.setattr(_kept, "_KEPT", type(_kept._KEPT)())
    frames = {name: pl.DataFrame({"a": range(4)}) for name in "abc"}
    paths = {name: str(tmp_path / f"{name}.parquet") for name in frames}
    for name in "ab":
        write_partition(paths[name], frames[name])
    assert read_partition_file(paths["a"]) is frames["a"]  # a is now the most recently used
    write_partition(paths["c"], frames["c"])  # 12 rows: b, the least recently used, goes
    assert read_partition_file(paths["a"]) is frames["a"] and read_partition_file(paths["c"]) is frames["c"]
    reread = read_partition_file(paths["b"])
    assert reread is not frames["b"] and reread is not None and reread.equals(frames["b"])
    # a frame over the budget is never kept
    big = pl.DataFrame({"a": range(11)})
    write_partition(paths["a"], big)
    assert read_partition_file(paths["a"]) is not big


def test_a_read_of_some_columns_keeps_nothing(tmp_path: Path) -> None:
    """A file not kept, read for some of its columns (the backfill plan reads trades' times and ids), is read for
    those only and not kept (a part of it is not the file); a kept file serves such a read whole."""
    path = str(tmp_path / "data.parquet")
    pl.DataFrame({"a": [1, 2], "b": ["x", "y"]}).write_parquet(path)
    part = read_partition(path, {"a": pl.Int64(), "b": pl.String()}, ["b"])
    assert part is not None and part.columns == ["b"]
    assert path not in _kept._KEPT
    whole = read_partition_file(path)
    assert whole is not None and path in _kept._KEPT
    again = read_partition(path, {"a": pl.Int64(), "b": pl.String()}, ["b"])
    assert again is not None and again["b"].to_list() == ["x", "y"]
