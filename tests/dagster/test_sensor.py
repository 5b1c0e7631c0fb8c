"""The landed-data sensor: hour planning (pure), and the sensor on a lake written by RawWriter (its landing log)."""

from __future__ import annotations

from pathlib import Path

import pytest
from candle_reference import H00, HOUR, MIN, read_recording, spot_files
from dagster import SensorResult, SkipReason, build_sensor_context

from assets import MdpResource
from mdplatform.exchanges import get_exchange
from mdplatform.lake import Landed, RawWriter, list_manifests, write_manifest
from sensors import HourRequest, LandedCursor, landed_data_sensor, plan_hours, plan_landed

HEAD, LATENESS = 2 * MIN, 15 * MIN
H10 = H00 + 10 * HOUR
S = 10**9


def _plan(minutes: list[int], pending: dict[int, int], now: int) -> tuple[list[tuple[int, int]], dict[int, int]]:
    # the landing time of every minute: the minute itself (as a live collector lands it)
    requests, nxt = plan_hours({m: m for m in minutes}, pending, now, head_ns=HEAD, lateness_ns=LATENESS)
    return [(r.hour, r.landed) for r in requests], nxt


def test_open_hour_runs_each_minute() -> None:
    got, pending = _plan([H10 + 4 * MIN], {}, H10 + 5 * MIN + 10 * S)
    # 10:04 is also in the lateness tail of hour 09: that one waits until its window completes (10:15)
    assert got == [(H10, H10 + 4 * MIN)] and pending == {H10 - HOUR: H10 + 4 * MIN}


def test_previous_hour_waits_for_its_lateness_then_runs_once() -> None:
    got, pending = _plan([H10 + HOUR + 2 * MIN], {}, H10 + HOUR + 3 * MIN + 10 * S)
    assert got == [(H10 + HOUR, H10 + HOUR + 2 * MIN)] and pending == {H10: H10 + HOUR + 2 * MIN}
    # minutes keep coming; hour 10 stays pending until its window is complete (11:15)
    got, pending = _plan([H10 + HOUR + 5 * MIN], pending, H10 + HOUR + 6 * MIN + 10 * S)
    assert got == [(H10 + HOUR, H10 + HOUR + 5 * MIN)] and pending == {H10: H10 + HOUR + 5 * MIN}
    # no new minute (the collector stopped), but time has come: hour 10 runs once more
    got, pending = _plan([], pending, H10 + HOUR + LATENESS)
    assert got == [(H10, H10 + HOUR + 5 * MIN)] and pending == {}
    assert _plan([], pending, H10 + 2 * HOUR)[0] == []


def test_head_of_the_next_hour() -> None:
    got, pending = _plan([H10 + 59 * MIN], {}, H10 + HOUR + 10 * S)
    assert got == [(H10, H10 + 59 * MIN)] and pending == {H10 + HOUR: H10 + 59 * MIN}
    got, _ = _plan([], pending, H10 + 2 * HOUR + LATENESS)  # nothing else came: the next hour still runs once
    assert got == [(H10 + HOUR, H10 + 59 * MIN)]


def test_a_closed_hour_that_changes_redoes_its_4h_and_1d_candles() -> None:
    """A file lands for 10:30 a day later: hour 10 runs again, then the candles of 11:00 (its 4h candle 08-12 closes
    at 12:00) and of 23:00 (its 1d candle), which were materialized; nothing else."""
    landed = H10 + 26 * HOUR
    files = [(Landed("raw", "binance", H10 + 30 * MIN, 5), landed)]
    requests, pending = plan_landed(
        files, {}, landed, head_ns=LATENESS, lateness_ns=LATENESS, candles_exist=lambda h: True
    )
    assert (
        requests
        == [
            HourRequest(H10, landed, True),
            HourRequest(H10 + HOUR, landed, True, candles_only=True),
            HourRequest(H10 + 13 * HOUR, landed, True, candles_only=True),
        ]
        and pending == {}
    )
    # later hours not materialized yet read the new minutes when they run: nothing to redo
    requests, _ = plan_landed(files, {}, landed, head_ns=LATENESS, lateness_ns=LATENESS, candles_exist=lambda h: False)
    assert requests == [HourRequest(H10, landed, True)]
    # the open hour filling up redoes nothing later (its 4h/1d candles close in hours not run yet)
    live = [(Landed("raw", "binance", H10 + 30 * MIN, 5), H10 + 31 * MIN)]
    requests, _ = plan_landed(
        live, {}, H10 + 31 * MIN, head_ns=LATENESS, lateness_ns=LATENESS, candles_exist=lambda h: True
    )
    assert requests == [HourRequest(H10, H10 + 31 * MIN, False)]


def test_cursor_round_trip() -> None:
    cur = LandedCursor(H10, {"a.json": H10 - 1}, {H00: H00 + MIN})
    assert LandedCursor.loads(cur.dumps()) == cur
    assert LandedCursor.loads(None) == LandedCursor()


def _write(root: str, lines: list[tuple[int, str]]) -> None:
    route = get_exchange("binance").route
    with RawWriter(root, writer_id="sensor-test") as writer:
        for seq, (recv, frame) in enumerate(lines, 1):
            channel, symbol = route(frame)
            writer.append(recv, "binance", channel, symbol, "c1", seq, frame)


def _evaluate(root: str, cursor: str | None) -> SensorResult | SkipReason:
    context = build_sensor_context(cursor=cursor, resources={"mdp": MdpResource(lake=root)})
    result = landed_data_sensor(context)
    assert isinstance(result, SensorResult | SkipReason)
    return result


def _keys_or_none(result: SensorResult | SkipReason) -> list[tuple[str, str | None, str]]:
    return [] if isinstance(result, SkipReason) else _keys(result)


def _keys(result: SensorResult | SkipReason) -> list[tuple[str, str | None, str]]:
    assert isinstance(result, SensorResult), result
    return [(r.partition_key or "", r.job_name, r.run_key.split(":", 1)[0]) for r in result.run_requests or []]


def test_sensor_on_a_raw_lake(tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = read_recording(spot_files(shared_data))
    root = str(tmp_path / "lake")
    cut = H00 + 2 * MIN
    _write(root, [x for x in rec.lines if x[0] < cut])

    # what landed (now) holds 2024 minutes: both hours' windows are complete, each runs once
    first = _evaluate(root, None)
    assert _keys(first) == [("2024-08-08-23:00", "mdp_hourly", "hour"), ("2024-08-09-00:00", "mdp_hourly", "hour")]
    assert isinstance(first, SensorResult)
    # nothing new: no runs
    assert isinstance(_evaluate(root, first.cursor), SkipReason)

    # the rest of the recording lands later: 00:02 .. 00:05 belong to hour 00 and to hour 23's lateness window;
    # each runs again once, and the hours publishing their 4h/1d candles were never materialized: nothing more
    _write(root, [x for x in rec.lines if x[0] >= cut])
    second = _evaluate(root, first.cursor)
    assert _keys(second) == [("2024-08-08-23:00", "mdp_hourly", "hour"), ("2024-08-09-00:00", "mdp_hourly", "hour")]
    assert isinstance(second, SensorResult)
    assert {r.run_key for r in second.run_requests or []}.isdisjoint({r.run_key for r in first.run_requests or []})
    assert isinstance(_evaluate(root, second.cursor), SkipReason)


def test_a_slow_exchanges_older_minute_is_not_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exchange A lands 10:25 first; exchange B's 10:23 lands after: the hour still runs for B's minute (a single
    high-water minute would have skipped it)."""
    root = str(tmp_path / "lake")
    monkeypatch.setenv("MDP_START", "2024-08-01")  # the lake holds only manifests: no first day to start from
    write_manifest(root, "a", 1, [Landed("raw", "a", H10 + 25 * MIN, 1)])
    first = _evaluate(root, None)
    assert _keys(first) == [("2024-08-09-10:00", "mdp_hourly", "hour")]
    assert isinstance(first, SensorResult)
    write_manifest(root, "b", 1, [Landed("events", "b", H10 + 23 * MIN, 1)])
    second = _evaluate(root, first.cursor)
    assert _keys(second) == [("2024-08-09-10:00", "mdp_hourly", "hour")]
    # before the partitions' start: nothing to request
    monkeypatch.setenv("MDP_START", "2024-08-10")
    write_manifest(root, "b", 2, [Landed("raw", "b", H10 + 24 * MIN, 1)])
    assert _keys_or_none(_evaluate(root, second.cursor)) == []


def test_s3_listing_sees_a_new_date_folder(moto_s3: dict[str, str]) -> None:
    """A long-lived process lists the landing log, then another process lands data in a folder of a new date:
    the next listing sees it (s3fs would otherwise serve its cached listing)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_s3["MDP_S3_ENDPOINT"])
    s3.create_bucket(Bucket="landed")
    root = "s3://landed/mdp"
    day = 86_400 * S
    write_manifest(root, "w", 1, [Landed("raw", "binance", H00, 1)], now_ns=H00)
    assert [m.landed_ns for m in list_manifests(root, 0, H00 + 3 * day)] == [H00]
    # written by another client, in a date folder the first listing did not see
    name = f"mdp/_landed/date=2024-08-10/hour=01/{H00 + day + HOUR:019d}-x-000001.json"
    s3.put_object(Bucket="landed", Key=name, Body=b'{"writer":"x","files":[["raw","binance",0,1]]}')
    assert [m.landed_ns for m in list_manifests(root, 0, H00 + 3 * day)] == [H00, H00 + day + HOUR]


def test_the_gap_sensor_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lake of rebased recordings (the demo's) must not be healed from the exchange's real history."""
    from dagster import DagsterInstance

    from sensors import gap_sensor

    monkeypatch.setenv("MDP_REST_URL", "none")
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, resources={"mdp": MdpResource(lake=str(tmp_path))})
        result = gap_sensor(context)
    assert isinstance(result, SkipReason) and "MDP_REST_URL=none" in (result.skip_message or "")


def test_a_tick_reads_a_bounded_number_of_manifests_and_the_next_one_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sensors._sensor as sensor_module

    root = str(tmp_path / "lake")
    monkeypatch.setenv("MDP_START", "2024-08-01")
    monkeypatch.setattr(sensor_module, "MAX_MANIFESTS", 2)
    for i, minute in enumerate((20, 21, 22), 1):
        # three writers land minutes of three hours (10:20, 11:21, 12:22)
        write_manifest(root, f"w{i}", 1, [Landed("raw", "binance", H10 + (i - 1) * HOUR + minute * MIN, 1)])
    first = _evaluate(root, None)
    assert [k for k, *_ in _keys(first)] == ["2024-08-09-10:00", "2024-08-09-11:00"]
    assert isinstance(first, SensorResult)
    second = _evaluate(root, first.cursor)
    assert [k for k, *_ in _keys(second)] == ["2024-08-09-12:00"]
    assert isinstance(second, SensorResult)
    assert isinstance(_evaluate(root, second.cursor), SkipReason)


def test_hours_materialized_after_their_data_landed_are_not_run_again(
    tmp_path: Path, shared_data: Path, dagster_home: str
) -> None:
    """What `make demo` then `make dagster` do: the data lands, `mdp materialize` runs its hours, then the sensor
    starts with no cursor on the same instance. It finds every hour materialized after its data landed: nothing to
    redo. Data landing after that runs the hours again."""
    from dagster import DagsterInstance

    from assets import definitions_for, hourly_partitions
    from assets.partitions import mdp_start

    rec = read_recording(spot_files(shared_data))
    root = str(tmp_path / "lake")
    cut = H00 + 2 * MIN
    _write(root, [x for x in rec.lines if x[0] < cut])
    instance = DagsterInstance.get()
    defs = definitions_for(
        hourly_partitions(mdp_start(root)), {"mdp": MdpResource(lake=root, warehouse=str(tmp_path / "wh.duckdb"))}
    )
    tags = {
        "dagster/asset_partition_range_start": "2024-08-08-23:00",
        "dagster/asset_partition_range_end": "2024-08-09-00:00",
    }
    assert defs.resolve_job_def("mdp_hourly").execute_in_process(tags=tags, instance=instance).success

    def evaluate(cursor: str | None) -> SensorResult | SkipReason:
        context = build_sensor_context(cursor=cursor, resources={"mdp": MdpResource(lake=root)}, instance=instance)
        result = landed_data_sensor(context)
        assert isinstance(result, SensorResult | SkipReason)
        return result

    first = evaluate(None)
    assert _keys_or_none(first) == []
    assert isinstance(first, SensorResult)  # the cursor moves on past what was read
    _write(root, [x for x in rec.lines if x[0] >= cut])
    assert _keys(evaluate(first.cursor)) == [
        ("2024-08-08-23:00", "mdp_hourly", "hour"),
        ("2024-08-09-00:00", "mdp_hourly", "hour"),
    ]
