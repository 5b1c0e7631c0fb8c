"""Raw retention on a lake of the real spot recording (receive minutes 2024-08-08 23:54 .. 08-09 00:05: one day
folder per day in raw/ and events/), as minute files and as compacted day files: a day goes once it is old and every
hour reading it is materialized, and what is left reads the same."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from _lakes import ALL

from mdplatform.lake import CompactionBusy, compact, expire_days, filesystem, hours_reading, read_events, read_raw
from mdplatform.lake._compact import _lock

HOUR = 3600 * 10**9
MIN = 60 * 10**9
H23 = int(datetime(2024, 8, 8, 23, tzinfo=UTC).timestamp()) * 10**9
H00 = H23 + HOUR
DAY09 = H00
#: noon on 08-10: with one day kept, 08-08 is old and 08-09 recent; on 08-11 both are old
NOON_10 = DAY09 + 36 * HOUR
NOON_11 = NOON_10 + 24 * HOUR
LATENESS = 15 * MIN


def _dates(root: str) -> dict[str, list[str]]:
    return {
        table: sorted(p.name for p in Path(root, table, "exchange=binance").iterdir()) for table in ("raw", "events")
    }


def test_hours_reading_a_minute() -> None:
    # hour H reads receive minutes [H - 15 min, H + 1 h + 15 min)
    assert list(hours_reading(H00 + 5 * MIN, LATENESS)) == [H23, H00]
    assert list(hours_reading(H00 + 30 * MIN, LATENESS)) == [H00]
    assert list(hours_reading(H00 + 45 * MIN, LATENESS)) == [H00, H00 + HOUR]
    assert list(hours_reading(H23 + 59 * MIN, 0)) == [H23]


def test_a_day_goes_once_old_and_its_hours_are_materialized(minute_lake: str) -> None:
    both = {H23, H00}
    before = read_raw(minute_lake, *ALL).height, read_events(minute_lake, *ALL).height
    kept_09 = read_raw(minute_lake, DAY09, DAY09 + 24 * HOUR).height, read_events(minute_lake, DAY09, 2**62).height
    assert 0 < kept_09[0] < before[0] and 0 < kept_09[1] < before[1]

    # 00:00 reads the last quarter hour of 08-08 and 08-09's minutes: not materialized, both days stay
    stats = expire_days(minute_lake, keep_days=1, lateness_ns=LATENESS, materialized={H23}.__contains__, now_ns=NOON_11)
    assert stats.deleted == [] and stats.recent == 0
    why = "1 hour(s) reading it not materialized: 2024-08-09 00:00"
    assert stats.kept == {
        "raw/binance/2024-08-08": why,
        "raw/binance/2024-08-09": why,
        "events/binance/2024-08-08": why,
        "events/binance/2024-08-09": why,
    }
    assert _dates(minute_lake) == {t: ["date=2024-08-08", "date=2024-08-09"] for t in ("raw", "events")}

    # both hours done, one day kept on 08-10: 08-08 goes, 08-09 is recent
    stats = expire_days(minute_lake, keep_days=1, lateness_ns=LATENESS, materialized=both.__contains__, now_ns=NOON_10)
    assert [d.label for d in stats.deleted] == ["raw/binance/2024-08-08", "events/binance/2024-08-08"]
    assert stats.deleted[0].files == 6 and stats.deleted[0].bytes > 0  # minutes 23:54 .. 23:59
    assert stats.kept == {} and stats.recent == 2
    assert _dates(minute_lake) == {t: ["date=2024-08-09"] for t in ("raw", "events")}
    assert (read_raw(minute_lake, *ALL).height, read_events(minute_lake, *ALL).height) == kept_09

    # nothing more is due on 08-10; on 08-11 the rest goes
    stats = expire_days(minute_lake, keep_days=1, lateness_ns=LATENESS, materialized=both.__contains__, now_ns=NOON_10)
    assert stats.deleted == [] and stats.recent == 2
    stats = expire_days(minute_lake, keep_days=1, lateness_ns=LATENESS, materialized=both.__contains__, now_ns=NOON_11)
    assert [d.label for d in stats.deleted] == ["raw/binance/2024-08-09", "events/binance/2024-08-09"]
    assert _dates(minute_lake) == {"raw": [], "events": []}


def test_day_files_say_their_minutes(minute_lake: str) -> None:
    """Compacted into one file per day, a day still needs only the hours reading the minutes it holds (from the
    file's footer), not every hour of the day."""
    compact(minute_lake, now_ns=NOON_11 + 30 * 24 * HOUR)
    assert sorted(p.parent.name for p in Path(minute_lake, "raw").rglob("day-*.parquet")) == [
        "date=2024-08-08",
        "date=2024-08-09",
    ]
    # without lateness 08-08 (23:54 .. 23:59) is read by 23:00 alone, 08-09 (00:00 .. 00:05) by 00:00 alone
    stats = expire_days(minute_lake, keep_days=1, lateness_ns=0, materialized={H23}.__contains__, now_ns=NOON_11)
    assert [d.label for d in stats.deleted] == ["raw/binance/2024-08-08", "events/binance/2024-08-08"]
    assert stats.deleted[0].files == 1
    assert stats.kept["raw/binance/2024-08-09"] == "1 hour(s) reading it not materialized: 2024-08-09 00:00"
    assert _dates(minute_lake) == {t: ["date=2024-08-09"] for t in ("raw", "events")}


def test_retention_waits_for_a_compaction_and_keeps_a_day_at_least(minute_lake: str) -> None:
    fs, base = filesystem(minute_lake)
    with _lock(fs, base), pytest.raises(CompactionBusy):
        expire_days(minute_lake, keep_days=1, lateness_ns=0, materialized=lambda _h: True, now_ns=NOON_11)
    with pytest.raises(ValueError, match="at least one day"):
        expire_days(minute_lake, keep_days=0, lateness_ns=0, materialized=lambda _h: True, now_ns=NOON_11)
    assert _dates(minute_lake) == {t: ["date=2024-08-08", "date=2024-08-09"] for t in ("raw", "events")}
