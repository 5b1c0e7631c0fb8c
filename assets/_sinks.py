"""Where an hour's derived rows go besides the lake: PostgreSQL/TimescaleDB when ``MDP_PG_DSN`` is set (DuckDB
readers see the lake's partition files themselves, through the warehouse catalog). PostgreSQL replaces the hour's
window in one transaction (delete, then binary COPY); the caller writes the lake files last, so a failed load
fails the hour before its lake file marks it done and the retry (or the sensor) redoes it."""

from __future__ import annotations

import os
from collections.abc import Sequence

from mdplatform.warehouse import Window

__all__ = ["load_sinks", "pg_dsn"]


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
