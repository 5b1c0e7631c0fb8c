"""Pure transforms (polars in, polars out; no I/O): raw -> trades -> candles, and their quality rules."""

from .._time import DAY_NS, HOUR_NS, MINUTE_NS, SECOND_NS, ceil_ns, floor_ns, from_ns, to_ns
from ._candles import (
    PREV_CLOSE,
    build_candles,
    candle_range_start,
    candles_1m,
    empty_candles,
    last_close,
    resample,
    sort_candles,
)
from ._checks import validate_candles, validate_trades
from ._normalize import registry_normalizer
from ._trades import (
    Normalizer,
    TradesWindow,
    reject,
    sort_trades,
    trades_for_window,
)

__all__ = [
    "DAY_NS",
    "HOUR_NS",
    "MINUTE_NS",
    "PREV_CLOSE",
    "SECOND_NS",
    "Normalizer",
    "TradesWindow",
    "build_candles",
    "candle_range_start",
    "candles_1m",
    "ceil_ns",
    "empty_candles",
    "floor_ns",
    "from_ns",
    "last_close",
    "registry_normalizer",
    "reject",
    "resample",
    "sort_candles",
    "sort_trades",
    "to_ns",
    "trades_for_window",
    "validate_candles",
    "validate_trades",
]
