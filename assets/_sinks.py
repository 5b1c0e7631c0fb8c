"""Where an hour's derived rows go besides the lake: DuckDB always, PostgreSQL/TimescaleDB when ``MDP_PG_DSN`` is
set. Both replace the hour's window in one transaction each (delete, then insert / binary COPY), DuckDB first; the
caller writes the lake files last, so a failed load anywhere fails the hour before its lake file marks it done
and the retry (or the sensor) redoes it in both."""

from __future__ import annotations

import os
from collections.abc import Sequence

from mdplatform.warehouse import Warehouse, Window

__all__ = ["pg_dsn", "store"]


def pg_dsn() -> str | None:
    """``MDP_PG_DSN`` (read at each load: a long-lived process sees the environment it runs in); None: off."""
    return os.environ.get("MDP_PG_DSN") or None


def store(warehouse: Warehouse, windows: Sequence[Window]) -> list[tuple[int, int]]:
    """Replace the windows in DuckDB, then in PostgreSQL if configured; DuckDB's (deleted, inserted) per window."""
    done = warehouse.replace_windows(windows)
    dsn = pg_dsn()
    if dsn is not None:
        from mdplatform.pg import replace_windows  # psycopg is imported only when the sink is on

        replace_windows(windows, dsn=dsn)
    return done
