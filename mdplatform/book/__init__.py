"""A generic L2 (price-level) order book, fed by the exchange modules' sync logic, and its offline rebuild from the
raw layer with fixed-interval samples, metrics, heatmaps and a cross-exchange view. The levels, the reads a sample
makes and the reading of Binance diffs are compiled code (``_native.c``, built with the package)."""

from ._checkpoint import BookCheckpoint
from ._consolidated import CONSOLIDATED_BOOK, consolidated_book, consolidated_schema
from ._heatmap import (
    BOOK_HEATMAP,
    CONSOLIDATED,
    BookHeatmapSpec,
    bucket_levels,
    consolidate_heatmap,
    rollup_heatmap,
    spot_base,
)
from ._l2 import L2Book, Level, RawLevel, Side
from ._metrics import DEPTH_BPS, TOP_N, book_metrics, samples_schema
from ._rebuild import InvalidInterval, Rebuild, book_channels, invalid_schema
from ._rows import BookRows
from ._samples import BookSamples, Clock, book_clock, book_samples, lake_book_rows, lake_book_samples, step_label

__all__ = [
    "BOOK_HEATMAP",
    "CONSOLIDATED",
    "CONSOLIDATED_BOOK",
    "DEPTH_BPS",
    "TOP_N",
    "BookCheckpoint",
    "BookHeatmapSpec",
    "BookRows",
    "BookSamples",
    "Clock",
    "InvalidInterval",
    "L2Book",
    "Level",
    "RawLevel",
    "Rebuild",
    "Side",
    "book_channels",
    "book_clock",
    "book_metrics",
    "book_samples",
    "bucket_levels",
    "consolidate_heatmap",
    "consolidated_book",
    "consolidated_schema",
    "invalid_schema",
    "lake_book_rows",
    "lake_book_samples",
    "rollup_heatmap",
    "samples_schema",
    "spot_base",
    "step_label",
]
