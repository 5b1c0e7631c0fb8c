"""Which hour partitions to (re)materialize for newly landed files: pure logic, no Dagster."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mdplatform.lake import Landed
from mdplatform.schemas import TIMEFRAMES
from mdplatform.transforms import HOUR_NS, MINUTE_NS, floor_ns, from_ns, publishing_hours

__all__ = ["HourRequest", "LandedCursor", "plan_hours", "plan_landed"]


@dataclass(slots=True)
class LandedCursor:
    """Where the landing log has been read to.

    ``since``: manifests landed before it are done (except those in ``seen``); ``seen``: names (-> landed ns)
    of manifests already read that landed in the last ``overlap`` before ``since``: listings are re-read that
    far back, because a writer names a manifest before it finishes writing it, so one can appear after a
    newer one was read. ``pending``: hour -> newest landing (ns) of data in its window, for hours that got data
    in their neighbours' minutes and wait for their own window to complete."""

    since: int | None = None
    seen: dict[str, int] = field(default_factory=dict)
    pending: dict[int, int] = field(default_factory=dict)

    def dumps(self) -> str:
        return json.dumps(
            {
                "since": self.since,
                "seen": dict(sorted(self.seen.items())),
                "pending": {str(h): m for h, m in sorted(self.pending.items())},
            },
            sort_keys=True,
        )

    @classmethod
    def loads(cls, text: str | None) -> LandedCursor:
        if not text:
            return cls()
        obj = json.loads(text)
        return cls(
            obj.get("since"),
            {str(k): int(v) for k, v in obj.get("seen", {}).items()},
            {int(h): int(m) for h, m in obj.get("pending", {}).items()},
        )


@dataclass(frozen=True, slots=True)
class HourRequest:
    """Run ``hour``: the whole hourly job (trades, coverage, candles), or only its candles (``candles_only``: a
    4h/1d candle holding an hour that changed). ``landed``: the newest landing that asked for it."""

    hour: int
    landed: int
    complete: bool
    candles_only: bool = False

    @property
    def run_key(self) -> str:
        # one run per hour and landing: new data for an hour already run gives a new key, the same data never
        what = "candles" if self.candles_only else "hour"
        return f"{what}:{from_ns(self.hour):%Y-%m-%dT%H:%M}@{self.landed}"


def plan_hours(
    minutes: dict[int, int], pending: dict[int, int], now_ns: int, *, head_ns: int, lateness_ns: int
) -> tuple[list[HourRequest], dict[int, int]]:
    """Hours to run for newly landed minutes (minute start ns -> landing ns) and the hours still pending.

    Hour H reads minutes [H - head, H + 1h + lateness). A minute inside its own hour triggers that hour at once
    (the open hour fills minute by minute). A minute in the lateness tail of the previous hour or the head of the
    next one only marks that hour pending; a pending hour runs when its window is complete
    (now >= H + 1h + lateness), or earlier with its own next minute. An already complete hour runs once for all
    its new minutes (an import, a backfill, a late file).
    """
    own: dict[int, int] = {}
    other: dict[int, int] = {}
    for m, landed in minutes.items():
        hour = floor_ns(m, HOUR_NS)
        own[hour] = max(own.get(hour, landed), landed)
        if m < hour + lateness_ns:
            other[hour - HOUR_NS] = max(other.get(hour - HOUR_NS, landed), landed)
        if m + MINUTE_NS > hour + HOUR_NS - head_ns:
            other[hour + HOUR_NS] = max(other.get(hour + HOUR_NS, landed), landed)
    pending = dict(pending)
    requests: list[HourRequest] = []
    for hour in sorted(set(own) | set(other) | set(pending)):
        latest = max(v for v in (own.get(hour), other.get(hour), pending.get(hour)) if v is not None)
        complete = now_ns >= hour + HOUR_NS + lateness_ns
        if complete or hour in own:
            requests.append(HourRequest(hour, latest, complete))
            pending.pop(hour, None)
        else:
            pending[hour] = latest
    return requests, pending


def plan_landed(
    files: Iterable[tuple[Landed, int]],
    pending: dict[int, int],
    now_ns: int,
    *,
    head_ns: int,
    lateness_ns: int,
    candles_exist: Callable[[int], bool],
) -> tuple[list[HourRequest], dict[int, int]]:
    """Hour runs for landed files ((file, landed ns) pairs of any minute table) and the hours still pending.

    Raw, events and backfill minutes alike feed ``plan_hours`` (the backfill tables are partitioned by exchange
    time, which the hours read the same way). A closed hour that runs again changes candles published by later
    hours (its 4h and 1d candles): those hours' candles run again too, once per plan, if they were materialized
    already (``candles_exist``); one not yet materialized will read the new minutes when it runs.
    """
    minutes: dict[int, int] = {}
    for f, landed in files:
        minutes[f.minute_ns] = max(minutes.get(f.minute_ns, landed), landed)
    requests, pending = plan_hours(minutes, pending, now_ns, head_ns=head_ns, lateness_ns=lateness_ns)
    hours = {r.hour for r in requests}
    redo: dict[int, int] = {}
    for r in requests:
        if not r.complete:
            continue
        for later in publishing_hours(r.hour, TIMEFRAMES):
            if later not in hours and candles_exist(later):
                redo[later] = max(redo.get(later, r.landed), r.landed)
    candles = [HourRequest(h, landed, True, candles_only=True) for h, landed in sorted(redo.items())]
    return requests + candles, pending
