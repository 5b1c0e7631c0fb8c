"""Which hour partitions to (re)materialize when raw minutes close: pure logic, no Dagster."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from mdplatform.transforms import HOUR_NS, MINUTE_NS, floor_ns, from_ns

__all__ = ["HourRequest", "SensorCursor", "plan_hours"]


@dataclass(slots=True)
class SensorCursor:
    """``minute``: start (ns) of the newest raw minute seen. ``pending``: hour -> newest minute seen in its
    window, for closed hours that got data after their last run and wait for their window to complete."""

    minute: int | None = None
    pending: dict[int, int] = field(default_factory=dict)

    def dumps(self) -> str:
        return json.dumps(
            {"minute": self.minute, "pending": {str(h): m for h, m in sorted(self.pending.items())}},
            sort_keys=True,
        )

    @classmethod
    def loads(cls, text: str | None) -> SensorCursor:
        if not text:
            return cls()
        obj = json.loads(text)
        return cls(obj.get("minute"), {int(h): int(m) for h, m in obj.get("pending", {}).items()})


@dataclass(frozen=True, slots=True)
class HourRequest:
    hour: int
    newest_minute: int
    complete: bool

    @property
    def run_key(self) -> str:
        # the same (hour, newest minute) is the same input: Dagster skips a run key it has seen
        return f"{from_ns(self.hour):%Y-%m-%dT%H:%M}@{from_ns(self.newest_minute):%Y-%m-%dT%H:%M}"


def plan_hours(
    minutes: Iterable[int], cursor: SensorCursor, now_ns: int, *, head_ns: int, lateness_ns: int
) -> tuple[list[HourRequest], SensorCursor]:
    """Hours to run for newly closed raw minutes (minute starts, ns) and the next cursor.

    Hour H reads receive minutes [H - head, H + 1h + lateness). A minute inside its own hour triggers that
    hour at once (the open hour fills minute by minute). A minute in the lateness tail of the previous hour or
    the head of the next one only marks that hour pending; a pending hour runs when its window is
    complete (now >= H + 1h + lateness), or earlier with its own next minute. An already complete hour runs
    once for all its new minutes (an imported recording).
    """
    own: dict[int, int] = {}
    other: dict[int, int] = {}
    newest = cursor.minute
    for m in minutes:
        if cursor.minute is not None and m <= cursor.minute:
            continue
        newest = m if newest is None else max(newest, m)
        hour = floor_ns(m, HOUR_NS)
        own[hour] = max(own.get(hour, m), m)
        if m < hour + lateness_ns:
            other[hour - HOUR_NS] = max(other.get(hour - HOUR_NS, m), m)
        if m + MINUTE_NS > hour + HOUR_NS - head_ns:
            other[hour + HOUR_NS] = max(other.get(hour + HOUR_NS, m), m)

    pending = dict(cursor.pending)
    requests: list[HourRequest] = []
    for hour in sorted(set(own) | set(other) | set(pending)):
        latest = max(v for v in (own.get(hour), other.get(hour), pending.get(hour)) if v is not None)
        complete = now_ns >= hour + HOUR_NS + lateness_ns
        if complete or hour in own:
            requests.append(HourRequest(hour, latest, complete))
            pending.pop(hour, None)
        else:
            pending[hour] = latest
    return requests, SensorCursor(newest, pending)
