"""`mdp materialize` range parsing and its default range from the raw lake."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from candle_reference import H00, H23, HOUR, read_recording, spot_files

from assets.cli import hours_in_range
from mdplatform.exchanges import get_exchange
from mdplatform.lake import RawWriter


def test_explicit_ranges(tmp_path: Path) -> None:
    lake = str(tmp_path)
    assert hours_in_range("2024-08-08T22:30", "2024-08-09T01:00", lake) == [H23 - HOUR, H23, H00]
    assert hours_in_range("2024-08-08T23:00:00+00:00", "2024-08-09T00:00:01Z", lake) == [H23, H00]
    day = hours_in_range("2024-08-08", "2024-08-08", lake)  # a bare --to date includes that day
    assert len(day) == 24 and day[-1] == H23
    with pytest.raises(click.UsageError):
        hours_in_range(None, None, lake)  # nothing in the lake to default to


def test_default_range_is_the_lakes(tmp_path: Path, shared_data: Path) -> None:
    rec = read_recording(spot_files(shared_data))
    route = get_exchange("binance").route
    lake = str(tmp_path / "lake")
    # only the frames received after midnight: hour 23 may still hold trades received then (lateness)
    with RawWriter(lake, writer_id="t") as writer:
        for seq, (recv, frame) in enumerate((x for x in rec.lines if x[0] >= H00), 1):
            writer.append(recv, "binance", *route(frame), "c", seq, frame)
    assert hours_in_range(None, None, lake) == [H23, H00]
