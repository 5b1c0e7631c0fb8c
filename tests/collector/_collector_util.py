"""Helpers for the collector tests: waiting in the ingestor's event loop, batches of frames as the compiled
receive path makes them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


async def until(predicate: Callable[[], bool], timeout: float) -> None:
    """Wait until ``predicate()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@dataclass
class Batch:
    """A ``FrameBatch`` made in Python, as the compiled receive path lays one out."""

    rows: int
    data: memoryview
    offsets: memoryview
    routes: memoryview
    recv: memoryview
    min_recv: int
    max_recv: int


def batch_of(payloads: list[str], recv: list[int], routes: list[int]) -> Batch:
    encoded = [p.encode() for p in payloads]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int32)
    return Batch(
        len(payloads),
        memoryview(b"".join(encoded)),
        memoryview(offsets.tobytes()),
        memoryview(np.array(routes, np.int32).tobytes()),
        memoryview(np.array(recv, np.int64).tobytes()),
        min(recv),
        max(recv),
    )
