"""Which lake minutes have closed (the sensor's and `mdp materialize`'s view of the raw and events trees)."""

from __future__ import annotations

from mdplatform.lake import list_raw_minutes, raw_minute_bounds
from mdplatform.transforms import MINUTE_NS

__all__ = ["list_minutes", "minute_bounds"]

minute_bounds = raw_minute_bounds


def list_minutes(root: str, after_ns: int | None, closed_before_ns: int) -> dict[int, list[str]]:
    """Minutes (start ns -> exchanges) with a raw or events Parquet file, starting after ``after_ns`` and ended
    by ``closed_before_ns``. Events count: in a silent market a minute may hold only the collector's liveness
    rows, and they are what closes its candles."""
    start = 0 if after_ns is None else after_ns - after_ns % MINUTE_NS + MINUTE_NS
    end = closed_before_ns - MINUTE_NS + 1
    found: dict[int, set[str]] = {}
    for table in ("raw", "events"):
        for exchange, minute in list_raw_minutes(root, start, end, table=table):
            found.setdefault(minute, set()).add(exchange)
    return {minute: sorted(found[minute]) for minute in sorted(found)}
