"""The lake's Hive-style layout, in one place."""

from __future__ import annotations

import calendar
import time

from .._time import MINUTE_NS
from ._fs import join

__all__ = ["MINUTE_NS", "hour_parts", "minute_dir", "parse_minute_dir", "raw_exchange_dir"]


def raw_exchange_dir(root: str, exchange: str) -> str:
    return join(root, "raw", f"exchange={exchange}")


def hour_parts(ts_ns: int) -> tuple[str, str]:
    """The Hive folders ``("date=YYYY-MM-DD", "hour=HH")`` of the UTC hour holding ``ts_ns``."""
    t = time.gmtime(ts_ns // 10**9)
    return f"date={t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}", f"hour={t.tm_hour:02d}"


def minute_dir(root: str, exchange: str, minute_ns: int) -> str:
    """``{root}/raw/exchange=X/date=YYYY-MM-DD/hour=HH/minute=MM`` for the minute holding ``minute_ns``."""
    minute = time.gmtime(minute_ns // 10**9).tm_min
    return join(raw_exchange_dir(root, exchange), *hour_parts(minute_ns), f"minute={minute:02d}")


def parse_minute_dir(path: str) -> tuple[str, int] | None:
    """(exchange, minute start ns) of a raw minute directory or of a file inside one; None if not one."""
    fields: dict[str, str] = {}
    for part in path.split("/"):
        key, sep, value = part.partition("=")
        if sep:
            fields[key] = value
    try:
        y, mo, d = (int(x) for x in fields["date"].split("-"))
        hour, minute = int(fields["hour"]), int(fields["minute"])
        exchange = fields["exchange"]
    except (KeyError, ValueError):
        return None
    seconds = calendar.timegm((y, mo, d, hour, minute, 0, 0, 0, 0))
    return exchange, seconds * 10**9
