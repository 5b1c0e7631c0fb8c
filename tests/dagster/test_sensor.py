"""The raw-minutes sensor: hour planning (pure), and the sensor on a raw lake written by RawWriter."""

from __future__ import annotations

from pathlib import Path

import pytest
from candle_reference import H00, HOUR, MIN, read_recording, spot_files
from dagster import SensorResult, SkipReason, build_sensor_context

from assets import MdpResource
from mdplatform.exchanges import get_exchange
from mdplatform.lake import RawWriter
from sensors import SensorCursor, plan_hours, raw_minutes_sensor

HEAD, LATENESS = 2 * MIN, 15 * MIN
H10 = H00 + 10 * HOUR
S = 10**9


def _plan(minutes: list[int], cursor: SensorCursor, now: int) -> tuple[list[tuple[int, int]], SensorCursor]:
    requests, nxt = plan_hours(minutes, cursor, now, head_ns=HEAD, lateness_ns=LATENESS)
    return [(r.hour, r.newest_minute) for r in requests], nxt


def test_open_hour_runs_each_minute() -> None:
    got, cur = _plan([H10 + 4 * MIN], SensorCursor(H10 + 3 * MIN), H10 + 5 * MIN + 10 * S)
    # 10:04 is also in the lateness tail of hour 09: that one waits until its window completes (10:15)
    assert got == [(H10, H10 + 4 * MIN)] and cur == SensorCursor(H10 + 4 * MIN, {H10 - HOUR: H10 + 4 * MIN})
    # the same minutes again (a re-evaluation from the same cursor): nothing new
    assert _plan([H10 + 3 * MIN, H10 + 4 * MIN], cur, H10 + 6 * MIN)[0] == []


def test_previous_hour_waits_for_its_lateness_then_runs_once() -> None:
    cur = SensorCursor(H10 + HOUR + MIN)
    got, cur = _plan([H10 + HOUR + 2 * MIN], cur, H10 + HOUR + 3 * MIN + 10 * S)
    assert got == [(H10 + HOUR, H10 + HOUR + 2 * MIN)]
    assert cur.pending == {H10: H10 + HOUR + 2 * MIN}
    # minutes keep coming; hour 10 stays pending until its window is complete (11:15)
    got, cur = _plan([H10 + HOUR + 5 * MIN], cur, H10 + HOUR + 6 * MIN + 10 * S)
    assert got == [(H10 + HOUR, H10 + HOUR + 5 * MIN)] and cur.pending == {H10: H10 + HOUR + 5 * MIN}
    # no new minute (the collector stopped), but time has come: hour 10 runs once more
    got, cur = _plan([], cur, H10 + HOUR + LATENESS)
    assert got == [(H10, H10 + HOUR + 5 * MIN)] and cur.pending == {}
    assert _plan([], cur, H10 + 2 * HOUR)[0] == []


def test_head_of_the_next_hour() -> None:
    got, cur = _plan([H10 + 59 * MIN], SensorCursor(H10 + 58 * MIN), H10 + HOUR + 10 * S)
    assert got == [(H10, H10 + 59 * MIN)] and cur.pending == {H10 + HOUR: H10 + 59 * MIN}
    got, _ = _plan([], cur, H10 + 2 * HOUR + LATENESS)  # nothing else came: the next hour still runs once
    assert got == [(H10 + HOUR, H10 + 59 * MIN)]


def test_cursor_round_trip() -> None:
    cur = SensorCursor(H10, {H00: H00 + MIN})
    assert SensorCursor.loads(cur.dumps()) == cur
    assert SensorCursor.loads(None) == SensorCursor()


def _write(root: str, lines: list[tuple[int, str]]) -> None:
    route = get_exchange("binance").route
    with RawWriter(root, writer_id="sensor-test") as writer:
        for seq, (recv, frame) in enumerate(lines, 1):
            channel, symbol = route(frame)
            writer.append(recv, "binance", channel, symbol, "c1", seq, frame)


def _evaluate(root: str, cursor: str | None) -> SensorResult | SkipReason:
    context = build_sensor_context(cursor=cursor, resources={"mdp": MdpResource(lake=root)})
    result = raw_minutes_sensor(context)
    assert isinstance(result, SensorResult | SkipReason)
    return result


def test_sensor_on_a_raw_lake(tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = read_recording(spot_files(shared_data))
    root = str(tmp_path / "lake")
    cut = H00 + 2 * MIN
    _write(root, [x for x in rec.lines if x[0] < cut])

    # the recording is from 2024: the default first look-back (24 h) finds nothing
    assert isinstance(_evaluate(root, None), SkipReason)

    monkeypatch.setenv("MDP_SENSOR_START_H", str(10**6))
    first = _evaluate(root, None)
    assert isinstance(first, SensorResult)
    assert [(r.partition_key, r.run_key) for r in first.run_requests or []] == [
        ("2024-08-08-23:00", "2024-08-08T23:00@2024-08-09T00:01"),
        ("2024-08-09-00:00", "2024-08-09T00:00@2024-08-09T00:01"),
    ]
    assert SensorCursor.loads(first.cursor) == SensorCursor(H00 + MIN, {})
    # nothing new: no runs; and the same evaluation again asks for the same run keys (Dagster skips them)
    assert isinstance(_evaluate(root, first.cursor), SkipReason)
    again = _evaluate(root, None)
    assert isinstance(again, SensorResult)
    assert [r.run_key for r in again.run_requests or []] == [r.run_key for r in first.run_requests or []]

    # the rest of the recording lands: 00:02 .. 00:05 belong to hour 00 and to hour 23's lateness window
    _write(root, [x for x in rec.lines if x[0] >= cut])
    second = _evaluate(root, first.cursor)
    assert isinstance(second, SensorResult)
    assert [(r.partition_key, r.run_key) for r in second.run_requests or []] == [
        ("2024-08-08-23:00", "2024-08-08T23:00@2024-08-09T00:05"),
        ("2024-08-09-00:00", "2024-08-09T00:00@2024-08-09T00:05"),
    ]
    assert SensorCursor.loads(second.cursor).minute == H00 + 5 * MIN
