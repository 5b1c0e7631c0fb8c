"""A run over a range reads the lake forward, a span at a time, the next span read ahead: every receive minute is
read exactly once, each window gets every minute it asks for, and quiet hours are read several at a time (each
read costs milliseconds whatever its rows) while busy ones go an hour at a time."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from assets._range import _AHEAD_ROWS, _SPAN_HOURS, _SPAN_ROWS, _Spans
from mdplatform.transforms import HOUR_NS, MINUTE_NS

HOURS = 30


def _windows(rows_per_minute: int) -> tuple[list[tuple[int, int]], list[list[int]]]:
    """The reads made and what each hour's window [h - 15 min, h + 1 h + 15 min) was given, for a read whose
    data is one item per minute standing for ``rows_per_minute`` rows."""
    reads: list[tuple[int, int]] = []

    def read(lo: int, hi: int) -> list[int]:
        reads.append((lo, hi))
        return list(range(lo, hi, MINUTE_NS))

    lateness = 15 * MINUTE_NS
    spans = _Spans(read, HOURS * HOUR_NS + lateness, lambda minutes: len(minutes) * rows_per_minute)
    seen: list[list[int]] = []
    try:
        for hour in range(0, HOURS * HOUR_NS, HOUR_NS):
            lo, hi = hour - lateness, hour + HOUR_NS + lateness
            got = [m for part in spans.get(lo, hi) for m in part if lo <= m < hi]
            seen.append(got)
    finally:
        spans.close()
    return reads, seen


@pytest.mark.parametrize("rows_per_hour", [60, 20_000, 10 * _SPAN_ROWS])
def test_every_minute_is_read_once_and_every_window_gets_its_minutes(rows_per_hour: int) -> None:
    reads, seen = _windows(rows_per_hour // 60)
    lateness = 15 * MINUTE_NS
    # contiguous, no minute twice, from the first window's start to the last one's end
    assert reads[0][0] == -lateness and reads[-1][1] == HOURS * HOUR_NS + lateness
    assert all(a[1] == b[0] for a, b in pairwise(reads))
    for i, got in enumerate(seen):
        lo = i * HOUR_NS - lateness
        assert got == list(range(lo, lo + HOUR_NS + 2 * lateness, MINUTE_NS))


def test_quiet_hours_are_read_a_day_at_a_time_and_busy_ones_an_hour() -> None:
    quiet, _ = _windows(1)  # 60 rows an hour
    spans = [(hi - lo) // HOUR_NS for lo, hi in quiet[1:-1]]
    assert spans and all(s == _SPAN_HOURS for s in spans)
    assert len(quiet) <= 2 + HOURS // _SPAN_HOURS  # the first window, then a day at a time
    busy, _ = _windows(_SPAN_ROWS // 60)  # a span's worth of rows an hour
    assert [hi - lo for lo, hi in busy[1:-1]] == [HOUR_NS] * (len(busy) - 2)
    assert len(busy) == HOURS  # the first window, then an hour at a time


def test_the_spans_after_a_read_are_read_ahead_up_to_a_row_budget() -> None:
    """A run computes several hours' trades at once, asking for their windows in a burst: the thread reading
    ahead has as many spans under way as hold about ``_AHEAD_ROWS`` rows (by the rate of the span just read), not
    one, so it goes on reading while those hours are computed."""
    reads: list[tuple[int, int]] = []

    def read(lo: int, hi: int) -> list[int]:
        reads.append((lo, hi))
        return list(range(lo, hi, MINUTE_NS))

    lateness = 15 * MINUTE_NS
    spans = _Spans(read, HOURS * HOUR_NS + lateness, lambda minutes: len(minutes) * (_SPAN_ROWS // 60))
    ahead = math.ceil(_AHEAD_ROWS / (_SPAN_ROWS // 60 * 60))  # spans of an hour while the budget lasts
    try:
        spans.get(-lateness, HOUR_NS + lateness)
        for _, _, future in list(spans._ahead):
            future.result()
        # a span's worth of rows an hour: an hour a span, as many spans as the budget holds
        assert 1 < ahead < 10
        assert reads[1:] == [(h, h + HOUR_NS) for h in range(HOUR_NS + lateness, HOUR_NS * 30, HOUR_NS)][:ahead]
        # the next window takes the first of them and the thread reads one more
        spans.get(HOUR_NS - lateness, 2 * HOUR_NS + lateness)
        for _, _, future in list(spans._ahead):
            future.result()
        assert len(reads) == 2 + ahead and all(a[1] == b[0] for a, b in pairwise(reads))
    finally:
        spans.close()
