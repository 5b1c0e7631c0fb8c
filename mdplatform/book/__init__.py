"""A generic L2 (price-level) order book, fed by the exchange modules' sync logic, and its offline rebuild from the
raw layer with fixed-interval samples and metrics."""

from ._checkpoint import BookCheckpoint
from ._l2 import L2Book, Level, RawLevel, Side
from ._metrics import DEPTH_BPS, TOP_N, book_metrics, samples_schema
from ._rebuild import BookSamples, InvalidInterval, Rebuild, book_samples, invalid_schema, lake_book_samples

__all__ = [
    "DEPTH_BPS",
    "TOP_N",
    "BookCheckpoint",
    "BookSamples",
    "InvalidInterval",
    "L2Book",
    "Level",
    "RawLevel",
    "Rebuild",
    "Side",
    "book_metrics",
    "book_samples",
    "invalid_schema",
    "lake_book_samples",
    "samples_schema",
]
