"""The compaction job and its schedule, as Dagster runs them: the minute files of a recording's final hours become
one file per exchange and hour, what readers see stays the same, and the schedule is on by default."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from candle_reference import spot_files
from dagster import DagsterInstance, DefaultScheduleStatus

from assets import MdpResource, compaction_job, compaction_schedule
from mdplatform.capture import import_capture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lake"))
from _lakes import assert_same, rewrite_as_minutes, snapshot


def test_the_job_compacts_final_hours_into_hour_files(tmp_path: Path, shared_data: Path, dagster_home: str) -> None:
    imported = str(tmp_path / "imported")
    import_capture(spot_files(shared_data), "binance", imported)
    lake = str(tmp_path / "lake")
    rewrite_as_minutes(imported, lake)  # minute files, as the collector lands them
    before = snapshot(lake)
    minute_files = sorted(Path(lake, "raw").rglob("minute=*/*.parquet"))
    assert len(minute_files) == 12  # 23:54 .. 00:05

    result = compaction_job.execute_in_process(
        instance=DagsterInstance.get(), resources={"mdp": MdpResource(lake=lake)}
    )
    assert result.success
    meta = result.output_for_node("compact_lake")
    assert meta > 0
    assert not list(Path(lake, "raw").rglob("minute=*/*.parquet"))
    # 2024-08-08 23:00 and 2024-08-09 00:00 (both long final; older than two days: one file per day)
    assert sorted(p.relative_to(lake).parts[:3] for p in Path(lake, "raw").rglob("*.parquet")) == [
        ("raw", "exchange=binance", "date=2024-08-08"),
        ("raw", "exchange=binance", "date=2024-08-09"),
    ]
    assert_same(before, snapshot(lake))
    shutil.rmtree(imported)

    # the schedule runs it every hour, on unless turned off in the UI
    assert compaction_schedule.cron_schedule == "20 * * * *"
    assert compaction_schedule.default_status == DefaultScheduleStatus.RUNNING
