"""A window of one table's rows to replace: what a sink (PostgreSQL) deletes, then inserts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

__all__ = ["Window"]


@dataclass(frozen=True, slots=True)
class Window:
    """Rows replacing those of ``table`` whose ``column`` lies in [start, end) ("left") or (start, end] ("right")."""

    table: str
    rows: pl.DataFrame
    column: str
    start_ns: int
    end_ns: int
    closed: Literal["left", "right"] = "left"
