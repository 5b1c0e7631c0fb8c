"""A run's hours are validated in chunks: consecutive hours together (GX's cost is per validation), bounded in rows
(what GX converts at once) and in hours; a chunk that fails is validated again hour by hour, so each hour has its
own verdict."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from assets._checks import CHUNK_HOURS, CHUNK_ROWS, _chunks, _each_alone, _PerHour
from assets._settings import Settings
from mdplatform.quality import Suite, merge_suites, validate
from mdplatform.quality._rules import between, unique
from mdplatform.transforms import HOUR_NS


def test_busy_hours_fill_a_chunk_up_to_the_row_budget() -> None:
    per_hour = CHUNK_ROWS // 9  # nine hours fit the budget, ten would not
    chunks = list(_chunks([(h, per_hour) for h in range(24)]))
    assert [len(c) for c in chunks] == [9, 9, 6]
    assert [h for c in chunks for h in c] == list(range(24))  # every hour once, in order


def test_a_chunk_is_given_before_the_hours_after_it_are_built() -> None:
    """A run's hours are built as the chunks take them: a week of a busy symbol is never in memory at once."""
    per_hour = CHUNK_ROWS // 9
    taken: list[int] = []

    def hours() -> Iterator[tuple[int, int]]:
        for h in range(24):
            taken.append(h)
            yield h, per_hour

    chunks = _chunks(hours())
    first = next(chunks)
    assert first == list(range(9))
    assert taken == list(range(10))  # the tenth hour showed the first chunk full; none after it was built
    assert [len(c) for c in chunks] == [9, 6]


def test_quiet_hours_go_a_week_at_a_time_and_a_huge_hour_alone() -> None:
    hours = 2 * CHUNK_HOURS + 2
    assert [len(c) for c in _chunks([(h, 0) for h in range(hours)])] == [CHUNK_HOURS, CHUNK_HOURS, 2]
    assert [len(c) for c in _chunks([(0, 2 * CHUNK_ROWS), (1, 5), (2, 5)])] == [1, 2]
    assert list(_chunks([])) == []


def _values(values: list[int]) -> list[Suite]:
    rules = (between("a", 0, 10, "a in [0, 10]"), unique(["a"], "one row per a"))
    return [Suite("t", pl.DataFrame({"a": values}), rules)]


def _checked(chunk: list[tuple[int, list[Suite]]], tmp_path: Path) -> tuple[list[int], _PerHour]:
    """The chunk's hours and a check holding their suites, as a run has them when it validates the chunk."""
    suites = dict(chunk)
    checked = _PerHour(lambda _settings, hour: suites[hour], Settings(lake=str(tmp_path)))
    for hour, _ in chunk:
        checked.rows(hour)
    return [hour for hour, _ in chunk], checked


def test_a_failed_chunk_gives_each_hour_its_own_verdict(tmp_path: Path) -> None:
    chunk = [(0, _values([1, 2])), (HOUR_NS, _values([3, 20])), (2 * HOUR_NS, _values([4, 5]))]
    together = validate(merge_suites([s for _, s in chunk]), "chunk")
    assert together.failing == 1
    alone = _each_alone(*_checked(chunk, tmp_path), together, None, False)
    assert {h // HOUR_NS: r.failing for h, r in alone.items()} == {0: 0, 1: 1, 2: 0}
    assert alone[HOUR_NS].problems() == ["t: a in [0, 10]: 1 of 2 rows fail"]
    # a passing chunk is every hour passing: nothing validated again
    assert _each_alone(*_checked(chunk[:1], tmp_path), validate(chunk[0][1], "one"), None, False) == {}


def test_what_only_the_hours_together_show_stays_the_chunks(tmp_path: Path) -> None:
    """A value in two hours (a trade in two partitions) breaks uniqueness only together: no hour alone shows it,
    so the hours keep the chunk's verdict; an hour that fails alone as well gets its own."""
    chunk = [(0, _values([1, 2])), (HOUR_NS, _values([2, 3])), (2 * HOUR_NS, _values([4, 5]))]
    together = validate(merge_suites([s for _, s in chunk]), "chunk")
    assert together.problems() == ["t: one row per a: 2 of 6 rows fail"]
    assert _each_alone(*_checked(chunk, tmp_path), together, None, False) == {}
    chunk[2] = (2 * HOUR_NS, _values([4, 50]))
    together = validate(merge_suites([s for _, s in chunk]), "chunk")
    alone = _each_alone(*_checked(chunk, tmp_path), together, None, False)
    assert {h // HOUR_NS: r.failing for h, r in alone.items()} == {2: 1}
