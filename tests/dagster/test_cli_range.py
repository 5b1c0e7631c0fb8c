"""`mdp materialize` range parsing, its default range from the raw lake, and the first partition (MDP_START, else
the lake's first hour, else the current hour)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from candle_reference import H00, H23, HOUR, read_recording, spot_files

from assets.cli import hours_in_range
from assets.partitions import mdp_start
from mdplatform.exchanges import get_exchange
from mdplatform.lake import RawWriter


def test_explicit_ranges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDP_START", "2024-08-01")  # an empty lake's partitions start a few days back
    lake = str(tmp_path)
    assert hours_in_range("2024-08-08T22:30", "2024-08-09T01:00", lake) == [H23 - HOUR, H23, H00]
    assert hours_in_range("2024-08-08T23:00:00+00:00", "2024-08-09T00:00:01Z", lake) == [H23, H00]
    day = hours_in_range("2024-08-08", "2024-08-08", lake)  # a bare --to date includes that day
    assert len(day) == 24 and day[-1] == H23
    with pytest.raises(click.UsageError):
        hours_in_range(None, None, lake)  # nothing in the lake to default to


def test_empty_lake_starts_at_the_current_hour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MDP_START", raising=False)

    def hour() -> datetime:
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

    before = hour()
    assert mdp_start(str(tmp_path)) in {before, hour()}  # no empty partitions before the data to come
    assert hours_in_range("2024-08-08T22:30", "2024-08-09T01:00", str(tmp_path)) == []  # before the partitions
    monkeypatch.setenv("MDP_START", "2024-08-08T23:00")
    assert mdp_start(str(tmp_path)) == datetime(2024, 8, 8, 23, tzinfo=UTC)
    assert hours_in_range("2024-08-08T22:30", "2024-08-09T01:00", str(tmp_path)) == [H23, H00]


def test_default_range_is_the_lakes(tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MDP_START", raising=False)
    rec = read_recording(spot_files(shared_data))
    route = get_exchange("binance").route
    lake = str(tmp_path / "lake")
    # only the frames received after midnight: hour 23 may still hold trades received then (lateness)
    with RawWriter(lake, writer_id="t") as writer:
        for seq, (recv, frame) in enumerate((x for x in rec.lines if x[0] >= H00), 1):
            writer.append(recv, "binance", *route(frame), "c", seq, frame)
    assert hours_in_range(None, None, lake) == [H23, H00]
    # partitions start at the hour of the first minute (23:54) less the lateness (15 min): no empty hours before
    assert mdp_start(lake) == datetime(2024, 8, 8, 23, tzinfo=UTC)
