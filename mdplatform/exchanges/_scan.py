"""Cheap string scans of raw frames (no JSON parse), shared by the exchange modules."""

from __future__ import annotations

import re
from typing import Any

import orjson
import polars as pl

__all__ = ["json_object", "ms_after", "ms_after_all"]


def ms_after(frame: str, marker: str) -> int | None:
    """The integer of milliseconds right after the first ``marker`` in ``frame``, in ns; None when absent."""
    i = frame.find(marker)
    if i < 0:
        return None
    start = end = i + len(marker)
    while end < len(frame) and frame[end].isdigit():
        end += 1
    return int(frame[start:end]) * 1_000_000 if end > start else None


def ms_after_all(frames: pl.Series, marker: str) -> pl.Series:
    """``ms_after`` of every frame at once (Int64 ns, null where it gives None), vectorized: for imports."""
    digits = frames.str.extract(re.escape(marker) + "([0-9]*)", 1)
    return digits.cast(pl.Int64, strict=False) * 1_000_000


def json_object(frame: str) -> dict[str, Any] | None:
    """A frame decoded as a JSON object; None when it is not one (control frames are parsed only when rare)."""
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None
