"""Pure transforms (polars in, polars out; no I/O): raw -> trades and coverage -> candles, and their quality rules."""

from .._time import DAY_NS, HOUR_NS, MINUTE_NS, SECOND_NS, ceil_ns, floor_ns, from_ns, to_ns
from ._candles import (
    build_candles,
    candle_range_start,
    candles_1m,
    empty_candles,
    publishing_hours,
    resample,
    sort_candles,
)
from ._checks import (
    validate_book_heatmap,
    validate_book_snapshots,
    validate_candles,
    validate_coverage,
    validate_trades,
)
from ._coverage import (
    COVERED,
    GAP_STATUS,
    CoverageRules,
    StreamKinds,
    compute_coverage,
    empty_coverage,
    symbol_coverage,
    trade_gaps,
)
from ._heatmap import HEATMAP, USD_LIKE, HeatmapBuckets, empty_heatmap, one_bp_bucket, trade_heatmap
from ._normalize import registry_normalizer, registry_stream_kinds, registry_trade_channels
from ._trades import (
    Normalizer,
    TradesWindow,
    reject,
    sort_trades,
    trades_for_window,
)

__all__ = [
    "COVERED",
    "DAY_NS",
    "GAP_STATUS",
    "HEATMAP",
    "HOUR_NS",
    "MINUTE_NS",
    "SECOND_NS",
    "USD_LIKE",
    "CoverageRules",
    "HeatmapBuckets",
    "Normalizer",
    "StreamKinds",
    "TradesWindow",
    "build_candles",
    "candle_range_start",
    "candles_1m",
    "ceil_ns",
    "compute_coverage",
    "empty_candles",
    "empty_coverage",
    "empty_heatmap",
    "floor_ns",
    "from_ns",
    "one_bp_bucket",
    "publishing_hours",
    "registry_normalizer",
    "registry_stream_kinds",
    "registry_trade_channels",
    "reject",
    "resample",
    "sort_candles",
    "sort_trades",
    "symbol_coverage",
    "to_ns",
    "trade_gaps",
    "trade_heatmap",
    "trades_for_window",
    "validate_book_heatmap",
    "validate_book_snapshots",
    "validate_candles",
    "validate_coverage",
    "validate_trades",
]
