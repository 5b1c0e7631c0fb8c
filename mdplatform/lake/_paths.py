"""The lake's Hive-style layout, in one place."""

from __future__ import annotations

import calendar
import time
from typing import Literal

from .._time import MINUTE_NS
from ._fs import join

__all__ = [
    "BACKFILL_EVENTS_TABLE",
    "BACKFILL_TABLE",
    "EVENTS_TABLE",
    "MINUTE_NS",
    "RAW_TABLE",
    "MinuteTable",
    "hour_parts",
    "minute_dir",
    "parse_minute_dir",
    "part_path",
    "raw_exchange_dir",
    "table_exchange_dir",
]

#: the trees partitioned by exchange and minute: ``raw/`` (frames as received) and ``events/`` (the collector's
#: bookkeeping beside them) by minute of receive time; ``backfill/`` (trade records fetched from an exchange's
#: REST history, RAW schema) and ``backfill_events/`` (what those fetches proved, EVENTS schema) by minute of
#: the exchange time they hold, so the hour they belong to reads them however long after they were fetched
MinuteTable = Literal["raw", "events", "backfill", "backfill_events"]
RAW_TABLE: MinuteTable = "raw"
EVENTS_TABLE: MinuteTable = "events"
BACKFILL_TABLE: MinuteTable = "backfill"
BACKFILL_EVENTS_TABLE: MinuteTable = "backfill_events"


def table_exchange_dir(root: str, exchange: str, table: MinuteTable = RAW_TABLE) -> str:
    """``{root}/{table}/exchange=X``."""
    return join(root, table, f"exchange={exchange}")


def raw_exchange_dir(root: str, exchange: str) -> str:
    return table_exchange_dir(root, exchange, RAW_TABLE)


def hour_parts(ts_ns: int) -> tuple[str, str]:
    """The Hive folders ``("date=YYYY-MM-DD", "hour=HH")`` of the UTC hour holding ``ts_ns``."""
    t = time.gmtime(ts_ns // 10**9)
    return f"date={t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}", f"hour={t.tm_hour:02d}"


def minute_dir(root: str, exchange: str, minute_ns: int, table: MinuteTable = RAW_TABLE) -> str:
    """``{root}/{table}/exchange=X/date=YYYY-MM-DD/hour=HH/minute=MM`` for the minute holding ``minute_ns``."""
    minute = time.gmtime(minute_ns // 10**9).tm_min
    return join(table_exchange_dir(root, exchange, table), *hour_parts(minute_ns), f"minute={minute:02d}")


def part_path(root: str, table: MinuteTable, exchange: str, minute_ns: int, writer_id: str, part: int) -> str:
    """``{minute_dir}/part-<writer>-<n>.parquet``: a writer's n-th file of one minute of one table."""
    return f"{minute_dir(root, exchange, minute_ns, table)}/part-{writer_id}-{part:05d}.parquet"


def parse_minute_dir(path: str) -> tuple[str, int] | None:
    """(exchange, minute start ns) of a minute directory (of any minute table) or of a file inside one; None if
    not one."""
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
