"""The cyclic garbage collector held back while a batch command imports its modules and runs its hours.

With the defaults (700, 10, 10), `mdp materialize` of the test day collected the young objects a thousand times and
the whole heap (the imported modules' objects: Dagster's, GX's; a tenth of a second each) seven times: 0.9-1.2 s in
all. With ``BATCH_THRESHOLDS``, 14 young collections and no full one, 0.3 s: the data itself is in polars and Arrow
buffers, which the collector does not track, and peak memory did not grow. Long-running processes (the ingestor,
the UI) keep the defaults: the thresholds are restored after each use."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BATCH_THRESHOLDS", "fewer_collections"]

#: young objects allocated before a collection, and collections of each generation before one of the next
BATCH_THRESHOLDS = (50_000, 20, 100)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """``BATCH_THRESHOLDS`` inside, the thresholds as they were after (nested uses keep the outer one's)."""
    before = gc.get_threshold()
    gc.set_threshold(*BATCH_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
