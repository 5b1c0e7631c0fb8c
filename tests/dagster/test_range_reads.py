"""A run over a range reads the lake forward, a span at a time, the next spans read ahead: every receive minute is
read exactly once, each window gets every minute it asks for, and quiet hours are read several at a time (each
read costs milliseconds whatever its rows) while busy ones go an hour at a time. Its hours' trades are computed
several at a time, and a later hour's failure still fails on that hour's own turn."""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from candle_reference import H00, H23, spot_files

from assets._hourly import materialize_trades_hour
from assets._range import _AHEAD_ROWS, _SPAN_HOURS, _SPAN_ROWS, HourRange, _Spans
from assets._settings import Settings
from mdplatform.capture import import_capture
from mdplatform.schemas import TRADES
from mdplatform.transforms import HOUR_NS, MINUTE_NS
from mdplatform.warehouse import partition_path, read_partition

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


@pytest.fixture
def spot_lake(tmp_path: Path, shared_data: Path) -> Settings:
    """The spot recording's raw lake (two hours of trades: 23:00 and 00:00), nothing materialized."""
    root = tmp_path / "lake"
    import_capture(spot_files(shared_data), "binance", str(root))
    return Settings(lake=str(root))


def test_a_later_hours_failure_fails_on_its_own_turn(spot_lake: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A range computes consecutive hours' trades at once; when a later hour's reads fail, or the pass over the
    hours fails, the hours before it are still computed (alone) and written, each as it would be alone, and the
    failure comes on that hour's own turn, so the run names it (and what was written before it)."""
    import assets._hourly as hourly

    expected = {hour: materialize_trades_hour(spot_lake, hour).window.trades.height for hour in (H23, H00)}
    assert expected == {H23: 9738, H00: 10166}
    real_read, real_coverages = hourly.read_trades_hour, hourly._coverages

    def read(settings: Settings, hour: int, lake: HourRange) -> hourly.TradesInputs:
        if hour == H00:
            raise OSError("the disk is gone")
        return real_read(settings, hour, lake)

    def coverages(settings: Settings, hours: list[tuple[hourly.TradesInputs, Any]]) -> dict[int, pl.DataFrame]:
        if any(inputs.hour == H00 for inputs, _ in hours):
            raise ValueError("bad evidence at 00:00")
        return real_coverages(settings, hours)

    for name, broken, error in [("read_trades_hour", read, OSError), ("_coverages", coverages, ValueError)]:
        with monkeypatch.context() as patch:
            patch.setattr(hourly, name, broken)
            lake = HourRange(spot_lake, hours=[H23, H00])
            with lake:
                assert materialize_trades_hour(spot_lake, H23, lake, ahead=[H00]).window.trades.height == 9738
                with pytest.raises(error):
                    materialize_trades_hour(spot_lake, H00, lake, ahead=[H00])
        written = read_partition(partition_path(spot_lake.root, "trades", H23), TRADES)
        assert written is not None and written.height == 9738


def test_a_range_publishes_its_catalog_at_most_every_few_seconds_and_at_its_end(
    spot_lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each catalog a run publishes costs tens of milliseconds: a long range publishes a new day at most every
    ``_PUBLISH_EVERY_S`` seconds, and what came in between at its end; a run of one hour publishes at once."""
    import assets._range as hour_range

    clock = [1000.0]
    monkeypatch.setattr(hour_range.time, "monotonic", lambda: clock[0])
    calls: list[float] = []

    class Catalog:
        def refresh(self) -> bool:
            calls.append(clock[0])
            return True

    lake = HourRange(spot_lake)
    lake.warehouse = Catalog()  # type: ignore[assignment]
    with lake:
        for t in (0, 1, 5, 9.9, 10, 12, 19, 21, 25):
            clock[0] = 1000 + t
            lake.published(H23)
        assert calls == [1000, 1010, 1021]
    assert calls == [1000, 1010, 1021, 1025]  # the hour after the last publish, at the end
    lake.close()
    assert len(calls) == 4  # nothing left to publish


def test_quiet_hours_before_busy_ones_are_read_at_most_a_day_ahead() -> None:
    """The rate of the span just read sizes the spans read ahead: after quiet (or empty) hours it is tiny, and busy
    hours after them must not be queued for days on its word. The thread stays within a day of what was read."""
    reads: list[tuple[int, int]] = []
    busy_from = 3 * HOUR_NS

    def read(lo: int, hi: int) -> list[int]:
        reads.append((lo, hi))
        return list(range(lo, hi, MINUTE_NS))

    def size(minutes: list[int]) -> int:  # a row a minute, then ten spans' worth an hour
        return sum(1 if m < busy_from else 10 * _SPAN_ROWS // 60 for m in minutes)

    lateness = 15 * MINUTE_NS
    spans = _Spans(read, 40 * 24 * HOUR_NS, size)
    try:
        spans.get(-lateness, HOUR_NS + lateness)
        for _, _, future in list(spans._ahead):
            future.result()
        assert max(hi for _, hi in reads) <= HOUR_NS + lateness + _SPAN_HOURS * HOUR_NS
    finally:
        spans.close()


def _settle(spans: _Spans[Any]) -> None:
    """Until the reading thread has nothing left to do: every read queued ended, and what each end scheduled."""
    while True:
        queued = len(spans._ahead)
        assert spans._pool is not None
        spans._pool.submit(lambda: None).result()  # the thread's tasks run in order: all before it are done
        if len(spans._ahead) == queued and all(f.done() for _, _, f in spans._ahead):
            return


def test_the_thread_reads_on_as_its_reads_end_up_to_the_row_budget() -> None:
    """A run asks for its hours' reads in a burst, then computes and writes them: the thread reading ahead goes on
    as each of its reads ends (each within a day of the one before), not only when the caller asks, until what it
    read holds ``_AHEAD_ROWS`` rows; the caller's next window takes the first span and the thread reads one more."""
    reads: list[tuple[int, int]] = []

    def read(lo: int, hi: int) -> list[int]:
        reads.append((lo, hi))
        return list(range(lo, hi, MINUTE_NS))

    per_minute = _SPAN_ROWS // (_SPAN_HOURS * 60) // 2  # quiet: a span is a day (of half _SPAN_ROWS rows)
    lateness = 15 * MINUTE_NS
    spans = _Spans(read, 40 * 24 * HOUR_NS, lambda minutes: len(minutes) * per_minute)
    try:
        spans.get(-lateness, HOUR_NS + lateness)
        _settle(spans)
        ahead = reads[1:]
        assert [hi - lo for lo, hi in ahead] == [_SPAN_HOURS * HOUR_NS] * len(ahead)
        assert all(a[1] == b[0] for a, b in pairwise(reads))
        rows = [(hi - lo) // MINUTE_NS * per_minute for lo, hi in ahead]
        # days past the caller's window (one day was all a read-ahead refilled by the caller could reach)
        assert len(ahead) > 1 and sum(rows[:-1]) < _AHEAD_ROWS <= sum(rows)
        # the next window reaches into the first span read ahead: it is taken, and the thread reads one more
        spans.get(HOUR_NS - lateness, 2 * HOUR_NS + lateness)
        _settle(spans)
        assert len(reads) == 2 + len(ahead) and all(a[1] == b[0] for a, b in pairwise(reads))
    finally:
        spans.close()
