"""Listing the raw lake's minute folders cheaply (used by the sensor and by `mdp materialize`)."""

from __future__ import annotations

from mdplatform.lake import filesystem, join, parse_minute_dir
from mdplatform.transforms import HOUR_NS, MINUTE_NS, floor_ns, from_ns

__all__ = ["list_minutes", "minute_bounds"]


def _ls_names(fs: object, path: str, prefix: str) -> list[str]:
    try:
        entries = fs.ls(path, detail=False)  # type: ignore[attr-defined]
    except FileNotFoundError:
        return []
    names = (str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)
    return sorted(n for n in names if n.startswith(prefix))


def list_minutes(root: str, after_ns: int | None, closed_before_ns: int) -> dict[int, list[str]]:
    """Raw minutes (start ns -> exchanges) with a Parquet file, after ``after_ns`` and whose minute ended by
    ``closed_before_ns``. Walks exchange/date/hour folders, skipping those wholly before ``after_ns``."""
    fs, base = filesystem(root)
    raw = join(base, "raw")
    after_hour = floor_ns(after_ns, HOUR_NS) if after_ns is not None else None
    after_date = f"date={from_ns(after_hour):%Y-%m-%d}" if after_hour is not None else ""
    found: dict[int, list[str]] = {}
    for ex_name in _ls_names(fs, raw, "exchange="):
        ex_dir = join(raw, ex_name)
        for date_name in _ls_names(fs, ex_dir, "date="):
            if date_name < after_date:
                continue
            for hour_name in _ls_names(fs, join(ex_dir, date_name), "hour="):
                hour_dir = join(ex_dir, date_name, hour_name)
                parsed = parse_minute_dir(join(hour_dir, "minute=00"))
                if parsed is None or (after_hour is not None and parsed[1] < after_hour):
                    continue
                for minute_name in _ls_names(fs, hour_dir, "minute="):
                    minute_dir = join(hour_dir, minute_name)
                    got = parse_minute_dir(minute_dir)
                    if got is None:
                        continue
                    exchange, minute = got
                    if (after_ns is not None and minute <= after_ns) or minute + MINUTE_NS > closed_before_ns:
                        continue
                    # a writer's temp file (".name.tmp") does not count: the minute is there once a part is
                    if any(n.endswith(".parquet") for n in _ls_names(fs, minute_dir, "")):
                        found.setdefault(minute, []).append(exchange)
    return found


def minute_bounds(root: str) -> tuple[int, int] | None:
    """(first, last) raw minute start (ns) over all exchanges, or None for an empty lake. Looks only at the
    first and last date/hour folders that hold a minute, so it stays cheap on a long history."""
    fs, base = filesystem(root)
    raw = join(base, "raw")
    found: list[int] = []
    for ex_name in _ls_names(fs, raw, "exchange="):
        ex_dir = join(raw, ex_name)
        dates = _ls_names(fs, ex_dir, "date=")
        for ordered in (dates, dates[::-1]):
            got = _edge_minute(fs, ex_dir, ordered, last=ordered is not dates)
            if got is not None:
                found.append(got)
    return (min(found), max(found)) if found else None


def _edge_minute(fs: object, ex_dir: str, dates: list[str], *, last: bool) -> int | None:
    for date_name in dates:
        hours = _ls_names(fs, join(ex_dir, date_name), "hour=")
        for hour_name in hours[::-1] if last else hours:
            hour_dir = join(ex_dir, date_name, hour_name)
            minutes = _ls_names(fs, hour_dir, "minute=")
            for minute_name in minutes[::-1] if last else minutes:
                minute_dir = join(hour_dir, minute_name)
                parsed = parse_minute_dir(minute_dir)
                if parsed is not None and any(n.endswith(".parquet") for n in _ls_names(fs, minute_dir, "")):
                    return parsed[1]
    return None
