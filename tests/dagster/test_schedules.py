"""The daily candles and retention schedules, evaluated by Dagster (``evaluate_tick``, what the daemon asks the code
location) and their runs executed, on the bundled real recording (demo/data: receive minutes 2024-08-08 23:54 ..
08-09 00:05) materialized hour by hour with books on, as the sensor runs it; and the freshness policy of the
hourly assets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultScheduleStatus,
    ScheduleDefinition,
    build_schedule_context,
)
from dagster._core.storage.runs.schema import RunsTable

import assets
from assets import MdpResource, daily_candles_schedule, definitions_for, hour_key, hourly_partitions
from assets._jobs import HOURLY_ASSETS
from assets._schedules import FRESHNESS, with_freshness
from mdplatform.capture import import_capture
from mdplatform.lake import RawWriter
from mdplatform.schemas import CANDLES
from mdplatform.warehouse import partition_path, read_partition

REPO = Path(__file__).resolve().parents[2]
HOUR = 3600 * 10**9
H23 = int(datetime(2024, 8, 8, 23, tzinfo=UTC).timestamp()) * 10**9
H00 = H23 + HOUR
SPOT = hourly_partitions(datetime(2024, 8, 8, tzinfo=UTC))
#: hours materialized: the recording's two, an empty one after them, and 03:00 (a gap at 02:00)
HOURS = (H23, H00, H00 + HOUR, H00 + 3 * HOUR)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, dagster_home: str) -> Iterator[tuple[str, Any]]:
    """The recording imported, one raw frame received now (today's day folder), then the hourly job of each of
    ``HOURS`` (books on, as users run it), one run per hour."""
    root = str(tmp_path_factory.mktemp("schedules") / "lake")
    import_capture(sorted((REPO / "demo" / "data" / "binance-spot").glob("*.gz")), "binance", root)
    with RawWriter(root, writer_id="today") as writer:
        writer.append(time.time_ns(), "binance", "trade", "BTCUSDT", "today", 1, "{}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_BOOKS", "1")
        mp.delenv("MDP_RAW_RETENTION_DAYS", raising=False)
        mp.delenv("MDP_RUN_RETENTION_DAYS", raising=False)
        defs = definitions_for(SPOT, {"mdp": MdpResource(lake=root)})
        instance = DagsterInstance.get()
        for hour in HOURS:
            result = defs.resolve_job_def("mdp_hourly").execute_in_process(
                partition_key=hour_key(hour), instance=instance
            )
            assert result.success
        yield root, defs
        # the module's other tests then see the variables as they were


def _tick(schedule: ScheduleDefinition, root: str, at: datetime) -> Any:
    context = build_schedule_context(
        instance=DagsterInstance.get(), scheduled_execution_time=at, resources={"mdp": MdpResource(lake=root)}
    )
    return schedule.evaluate_tick(context)


def test_daily_candles_redo_yesterdays_materialized_hours_in_order(lake: tuple[str, Any]) -> None:
    root, defs = lake
    assert daily_candles_schedule.default_status == DefaultScheduleStatus.RUNNING
    assert daily_candles_schedule.cron_schedule == "0 2 * * *"

    # at 02:00 on 08-10: 08-09's hours with candles, as runs of consecutive hours
    tick = _tick(daily_candles_schedule, root, datetime(2024, 8, 10, 2, tzinfo=UTC))
    ranges = [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in tick.run_requests
    ]
    assert ranges == [("2024-08-09-00:00", "2024-08-09-01:00"), ("2024-08-09-03:00", "2024-08-09-03:00")]
    assert daily_candles_schedule.job_name == "mdp_candles"
    assert [r.run_key for r in tick.run_requests] == [
        "daily-candles/2024-08-09-00:00..2024-08-09-01:00",
        "daily-candles/2024-08-09-03:00..2024-08-09-03:00",
    ]
    # on 08-09: 08-08's 23:00; on 08-11 nothing was materialized the day before
    tick = _tick(daily_candles_schedule, root, datetime(2024, 8, 9, 2, tzinfo=UTC))
    assert [r.tags["dagster/asset_partition_range_start"] for r in tick.run_requests] == ["2024-08-08-23:00"]
    tick = _tick(daily_candles_schedule, root, datetime(2024, 8, 11, 2, tzinfo=UTC))
    assert tick.run_requests == [] and tick.skip_message == "no candles materialized on 2024-08-10"

    # the first run, as the daemon launches it: one run over both hours, the same candles again
    request = _tick(daily_candles_schedule, root, datetime(2024, 8, 10, 2, tzinfo=UTC)).run_requests[0]
    before = read_partition(partition_path(root, "candles", H00), CANDLES)
    assert before is not None and before.height > 0
    result = defs.resolve_job_def("mdp_candles").execute_in_process(instance=DagsterInstance.get(), tags=request.tags)
    assert result.success
    built = sorted(e.partition for e in result.get_asset_materialization_events())
    assert built == ["2024-08-09-00:00", "2024-08-09-01:00"]
    after = read_partition(partition_path(root, "candles", H00), CANDLES)
    assert after is not None and after.equals(before)


def _dates(root: str, table: str) -> list[str]:
    return sorted(p.name for p in Path(root, table, "exchange=binance").iterdir())


def _outputs(result: Any) -> dict[str, Any]:
    """The metadata of each op's output, by op."""
    return {e.step_key: e.step_output_data.metadata for e in result.all_events if e.is_successful_output}


def _age(instance: DagsterInstance, run_id: str, days: int) -> None:
    """Make a run look ``days`` old (its creation time in the run storage)."""
    old = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days)
    with instance.run_storage.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(RunsTable.update().where(RunsTable.c.run_id == run_id).values(create_timestamp=old))


def test_retention_is_off_until_configured_then_deletes_old_days_and_runs(
    lake: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = lake
    schedule = assets.retention_schedule
    instance = DagsterInstance.get()
    today = datetime.now(UTC).strftime("date=%Y-%m-%d")
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    tick = _tick(schedule, root, datetime.now(UTC))
    assert tick.run_requests == [] and "retention is off" in (tick.skip_message or "")

    monkeypatch.setenv("MDP_BOOKS", "1")
    monkeypatch.setenv("MDP_RAW_RETENTION_DAYS", "1")
    monkeypatch.setenv("MDP_RUN_RETENTION_DAYS", "7")
    (request,) = _tick(schedule, root, datetime.now(UTC)).run_requests
    assert request.tags["mdp/retention"] == "MDP_RAW_RETENTION_DAYS,MDP_RUN_RETENTION_DAYS"

    # runs: an hourly run of ten days ago goes, one still running then stays, the recent ones stay
    hourly = instance.get_runs()
    old_done = hourly[-1].run_id  # the first one (23:00)
    old_running = DagsterRun(job_name="mdp_hourly", run_id="f" * 36, status=DagsterRunStatus.STARTED)
    instance.add_run(old_running)
    for run_id in (old_done, old_running.run_id):
        _age(instance, run_id, 10)
    recent = {r.run_id for r in hourly} - {old_done}

    assert schedule.job_name == "retention_job"
    result = assets.retention_job.execute_in_process(
        instance=instance, resources={"mdp": MdpResource(lake=root)}, tags=request.tags
    )
    assert result.success
    outputs = _outputs(result)
    raw_meta, run_meta = outputs["expire_raw"], outputs["expire_old_runs"]
    assert set(raw_meta["deleted"].value) == {
        "raw/binance/2024-08-08",
        "raw/binance/2024-08-09",
        "events/binance/2024-08-08",
        "events/binance/2024-08-09",
    }
    assert raw_meta["kept_old"].value == {} and raw_meta["kept_recent"].value == 1  # today's raw folder
    assert _dates(root, "raw") == [today] and _dates(root, "events") == []
    assert run_meta["deleted_by_job"].value == {"mdp_hourly": 1}
    assert run_meta["kept_old_unfinished"].value == 1
    assert instance.get_run_by_id(old_done) is None
    assert instance.get_run_by_id(old_running.run_id) is not None
    assert all(instance.get_run_by_id(r) is not None for r in recent)
    # what the hours built from the deleted days is still there
    assert Path(partition_path(root, "trades", H23)).is_file()


def test_retention_keeps_days_whose_hours_are_not_materialized(
    tmp_path: Path, dagster_home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lake imported but never materialized: its old days all stay, each saying which hours are missing."""
    monkeypatch.delenv("MDP_RUN_RETENTION_DAYS", raising=False)
    root = str(tmp_path / "lake")
    import_capture(sorted((REPO / "demo" / "data" / "binance-spot").glob("*.gz")), "binance", root)
    result = assets.retention_job.execute_in_process(
        instance=DagsterInstance.get(),
        resources={"mdp": MdpResource(lake=root)},
        run_config={"ops": {"expire_raw": {"config": {"raw_days": 1}}}},
    )
    assert result.success
    outputs = _outputs(result)
    meta = outputs["expire_raw"]
    assert outputs["expire_old_runs"]["skipped"].value == "run retention is off (MDP_RUN_RETENTION_DAYS unset)"
    why = "2 hour(s) reading it not materialized: 2024-08-08 23:00, 2024-08-09 00:00"
    assert meta["deleted"].value == {}
    assert meta["kept_old"].value == {
        f"{table}/binance/{day}": why for table in ("raw", "events") for day in ("2024-08-08", "2024-08-09")
    }
    assert _dates(root, "raw") == ["date=2024-08-08", "date=2024-08-09"]


def test_the_hourly_assets_say_when_they_are_late(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hourly asset the hourly runs build has the freshness policy; the book assets only with books on."""

    def policies() -> dict[str, object]:
        return {s.key.to_user_string(): s.freshness_policy for a in with_freshness(HOURLY_ASSETS) for s in a.specs}

    monkeypatch.setenv("MDP_BOOKS", "1")
    on = policies()
    assert len(on) == 8 and all(p == FRESHNESS for p in on.values())
    monkeypatch.setenv("MDP_BOOKS", "0")
    off = policies()
    books = {"book_snapshots", "book_heatmap", "trade_heatmap", "consolidated_book"}
    assert {k for k, p in off.items() if p is None} == books
    assert all(off[k] == FRESHNESS for k in off.keys() - books)
    # the definitions `dagster dev` loads carry it
    graph = assets.defs.resolve_asset_graph()
    assert graph.get(AssetKey("trades")).freshness_policy == FRESHNESS
    assert graph.get(AssetKey("raw")).freshness_policy is None
