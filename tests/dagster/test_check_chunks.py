"""A run's hours are validated in chunks: consecutive hours together (GX's cost is per validation), bounded in rows
(what GX converts at once) and in hours."""

from __future__ import annotations

import polars as pl

from assets._checks import CHUNK_HOURS, CHUNK_ROWS, _chunks
from mdplatform.quality import Suite


def _hour(rows: int) -> list[Suite]:
    return [Suite("t.schema", pl.DataFrame({"c": ["x"]}), ()), Suite("t", pl.DataFrame({"a": range(rows)}), ())]


def test_busy_hours_fill_a_chunk_up_to_the_row_budget() -> None:
    per_hour = CHUNK_ROWS // 9  # nine hours fit the budget, ten would not
    chunks = _chunks([(h, _hour(per_hour)) for h in range(24)])
    assert [len(c) for c in chunks] == [9, 9, 6]
    assert [h for c in chunks for h, _ in c] == list(range(24))  # every hour once, in order


def test_quiet_hours_go_a_day_at_a_time_and_a_huge_hour_alone() -> None:
    assert [len(c) for c in _chunks([(h, _hour(0)) for h in range(50)])] == [CHUNK_HOURS, CHUNK_HOURS, 2]
    assert [len(c) for c in _chunks([(0, _hour(2 * CHUNK_ROWS)), (1, _hour(5)), (2, _hour(5))])] == [1, 2]
    assert _chunks([]) == []
