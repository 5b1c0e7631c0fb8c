"""The derived tables the platform serves, and the window of exchange time each hour partition of them holds.

One rule in one place: the hourly assets write a table's hour with the rows of this window (and PostgreSQL
replaces this window), and the DuckDB catalog bounds each day of the table by the same column, so a query's time
filter skips every other day's files without opening them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from ._window import Window

__all__ = ["SERVED", "Served", "hour_window"]

_DAY_NS = 86_400 * 10**9


@dataclass(frozen=True, slots=True)
class Served:
    """``column`` of every row of the hour partition H lies in [H, H + 1h) ("left") or (H, H + 1h] ("right").
    ``implied``: other columns bounded by the same window, as (column, ns before its start, ns after its end):
    every row of a window [a, b) has ``a - before <= column < b + after``, so a filter on them prunes too."""

    column: str
    closed: Literal["left", "right"] = "left"
    implied: tuple[tuple[str, int, int], ...] = ()


#: table -> the column (and its side) that places a row in its hour partition
SERVED: dict[str, Served] = {
    "trades": Served("ts"),
    "coverage": Served("start_time"),
    # a candle belongs to the hour its close falls in: close_time in (H, H + 1h]; it opened at most a day (the
    # longest timeframe) before it closed, and before it closed: open_time in [H - 1d, H + 1h)
    "candles": Served("close_time", "right", implied=(("open_time", _DAY_NS, 0),)),
    "book_snapshots": Served("ts"),
    "book_invalid": Served("start"),
    "book_heatmap": Served("ts"),
    "trade_heatmap": Served("minute"),
    "consolidated_book": Served("ts"),
    "quarantine_rows": Served("hour_start"),
}


def hour_window(table: str, rows: pl.DataFrame, hour_ns: int, hours: int = 1) -> Window:
    """The rows of ``table``'s partition for the hour starting at ``hour_ns`` as the window they replace."""
    served = SERVED[table]
    return Window(table, rows, served.column, hour_ns, hour_ns + hours * 3_600_000_000_000, served.closed)
