"""Which raw minutes have closed (the sensor's and `mdp materialize`'s view of the raw lake)."""

from __future__ import annotations

from mdplatform.lake import list_raw_minutes, raw_minute_bounds
from mdplatform.transforms import MINUTE_NS

__all__ = ["list_minutes", "minute_bounds"]

minute_bounds = raw_minute_bounds


def list_minutes(root: str, after_ns: int | None, closed_before_ns: int) -> dict[int, list[str]]:
    """Raw minutes (start ns -> exchanges) with a Parquet file, starting after ``after_ns`` and ended by
    ``closed_before_ns``."""
    start = 0 if after_ns is None else after_ns - after_ns % MINUTE_NS + MINUTE_NS
    end = closed_before_ns - MINUTE_NS + 1
    found: dict[int, list[str]] = {}
    for exchange, minute in sorted(list_raw_minutes(root, start, end)):
        found.setdefault(minute, []).append(exchange)
    return found
