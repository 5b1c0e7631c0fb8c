"""Integer-nanosecond time arithmetic shared by the lake, the replay, the transforms and the partitions."""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = [
    "DAY_NS",
    "HOUR_NS",
    "MINUTE_NS",
    "SECOND_NS",
    "ceil_ns",
    "floor_ns",
    "from_ns",
    "iso_ns",
    "parse_time",
    "to_ns",
]

SECOND_NS = 10**9
MINUTE_NS = 60 * SECOND_NS
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS


def floor_ns(ts: int, unit: int) -> int:
    """Start of the ``unit``-long epoch-aligned interval holding ``ts``."""
    return ts - ts % unit


def ceil_ns(ts: int, unit: int) -> int:
    return -floor_ns(-ts, unit)


def to_ns(value: datetime) -> int:
    """A datetime as UTC nanoseconds; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * SECOND_NS + delta.microseconds * 1000


def from_ns(ts: int) -> datetime:
    """UTC nanoseconds as an aware datetime (sub-microsecond digits are dropped)."""
    return datetime.fromtimestamp(ts // SECOND_NS, UTC).replace(microsecond=(ts % SECOND_NS) // 1000)


def parse_time(text: str) -> tuple[int, bool]:
    """(UTC ns, whether it is a bare date) of an ISO date or date-time as a user types it (``2024-08-08``,
    ``2024-08-08T23:00``, ``2024-08-08 23:00:00+02:00``, ``...Z``); naive means UTC. A ``ValueError`` says what is
    wrong with it in words a user can act on."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "T"))
    except ValueError as exc:
        # fromisoformat says "Invalid isoformat string" for words, and the field for a number out of range
        why = "" if str(exc).startswith("Invalid isoformat") else f" ({exc})"
        raise ValueError(
            f"not an ISO date or time: {text!r}{why}; for example 2024-08-08 or 2024-08-08T23:00"
        ) from None
    return to_ns(parsed), len(value) <= 10


def iso_ns(ns: int | None) -> str | None:
    """``2024-08-08T23:54:13.937085768Z`` (None for 0 or None: never happened)."""
    if not ns:
        return None
    seconds, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"
