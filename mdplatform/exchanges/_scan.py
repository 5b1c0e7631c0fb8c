"""Cheap string scans of raw frames (no JSON parse), shared by the exchange modules."""

from __future__ import annotations

__all__ = ["ms_after"]


def ms_after(frame: str, marker: str) -> int | None:
    """The integer of milliseconds right after the first ``marker`` in ``frame``, in ns; None when absent."""
    i = frame.find(marker)
    if i < 0:
        return None
    start = end = i + len(marker)
    while end < len(frame) and frame[end].isdigit():
        end += 1
    return int(frame[start:end]) * 1_000_000 if end > start else None
