"""Where an hour's derived rows go besides the lake: PostgreSQL/TimescaleDB when ``MDP_PG_DSN`` is set (DuckDB
readers see the lake's partition files themselves, through the warehouse catalog). PostgreSQL replaces the hour's
window in one transaction (delete, then binary COPY), after any other process loading the same hour (advisory
locks) and within bounded waits (``mdplatform.pg.Timeouts``); the caller writes the lake files last, so a failed load
fails the hour before its lake file marks it done and ``failed_hours_sensor`` (sensors/_retry.py) redoes it."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from mdplatform.warehouse import Window

__all__ = ["cancel_sink_loads", "load_sinks", "pg_dsn"]


def pg_dsn() -> str | None:
    """``MDP_PG_DSN`` (read at each load: a long-lived process sees the environment it runs in); None: off."""
    return os.environ.get("MDP_PG_DSN") or None


def load_sinks(windows: Sequence[Window]) -> int:
    """Replace the windows in PostgreSQL if it is configured; the rows it held there before (0 when off)."""
    dsn = pg_dsn()
    if dsn is None:
        return 0
    from mdplatform.pg import replace_windows  # psycopg is imported only when the sink is on

    return sum(r.deleted for r in replace_windows(windows, dsn=dsn))


def cancel_sink_loads(running_for_s: float) -> int:
    """Cancel this process's PostgreSQL loads running for at least ``running_for_s`` (a stop signal must not wait
    out a lock held elsewhere); each fails its hour, leaving the tables as they were. Returns how many."""
    pg = sys.modules.get("mdplatform.pg")  # not imported yet: no load ever ran here, nothing to cancel
    return 0 if pg is None else int(pg.cancel_loads(running_for_s))
