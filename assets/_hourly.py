"""The work of one hour partition, as plain functions (the Dagster assets are thin wrappers around these)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from mdplatform.lake import list_exchanges, read_raw
from mdplatform.schemas import CANDLES, TIMEFRAMES, TRADES
from mdplatform.transforms import (
    HOUR_NS,
    TradesWindow,
    build_candles,
    candle_range_start,
    last_close,
    registry_normalizer,
    trades_for_window,
)
from mdplatform.warehouse import (
    Warehouse,
    partition_path,
    quarantine_path,
    read_partition_metadata,
    read_partitions,
    remove_file,
    write_partition,
)

from ._settings import Settings

__all__ = [
    "TRADE_END_KEY",
    "CandlesHour",
    "MissingUpstreamError",
    "TradesHour",
    "by_symbol",
    "materialize_candles_hour",
    "materialize_trades_hour",
    "trade_channels",
]

#: Parquet footer key of a trades partition: exchange -> latest receive time (ns) in the raw it was built from
TRADE_END_KEY = "mdp:trade_end"
READ_RANGE_KEY = "mdp:raw_read_range"


class MissingUpstreamError(RuntimeError):
    pass


def trade_channels(exchanges: list[str]) -> list[str] | None:
    """Channels carrying trades for these exchanges (None: read everything, some exchange is unknown)."""
    from mdplatform.exchanges import EXCHANGES

    channels: set[str] = set()
    for exchange_id in exchanges:
        if exchange_id not in EXCHANGES:
            return None
        channels |= EXCHANGES[exchange_id].capabilities.trade_channels
    return sorted(channels)


def by_symbol(df: pl.DataFrame) -> dict[str, int]:
    """ "exchange/symbol" -> rows."""
    if not df.height:
        return {}
    counts = df.group_by("exchange", "symbol").len().sort("exchange", "symbol")
    return {f"{ex}/{sym}": int(n) for ex, sym, n in counts.iter_rows()}


@dataclass(frozen=True, slots=True)
class TradesHour:
    hour: int
    window: TradesWindow
    path: str
    quarantine: str | None
    warehouse_deleted: int

    @property
    def rows_by_symbol(self) -> dict[str, int]:
        return by_symbol(self.window.trades)

    @property
    def rejects_by_reason(self) -> dict[str, int]:
        return dict(Counter(self.window.rejects.get_column("reason").to_list()))


def materialize_trades_hour(settings: Settings, hour: int, warehouse: Warehouse | None = None) -> TradesHour:
    """Trades with exchange ts in [hour, hour + 1h), from raw receive minutes
    [hour - skew, hour + 1h + lateness), written to the lake partition (replacing it), the quarantine and
    DuckDB ``trades`` (window replaced)."""
    root = settings.root
    end = hour + HOUR_NS
    read_start, read_end = hour - settings.skew_ns, end + settings.lateness_ns
    raw = read_raw(root, read_start, read_end, channels=trade_channels(list_exchanges(root)))
    window = trades_for_window(
        raw, hour, end, settings.lateness_ns, normalize=registry_normalizer, skew_ns=settings.skew_ns
    )
    path = partition_path(root, "trades", hour)
    write_partition(
        path,
        window.trades,
        {
            TRADE_END_KEY: json.dumps(window.trade_end, sort_keys=True),
            READ_RANGE_KEY: json.dumps([read_start, read_end]),
        },
    )
    qpath: str | None = quarantine_path(root, "trades", hour)
    assert qpath is not None
    if window.rejects.height:
        write_partition(qpath, window.rejects)
    else:
        remove_file(qpath)
        qpath = None
    wh = warehouse or Warehouse(settings.warehouse_path)
    deleted, _ = wh.replace_window("trades", window.trades, "ts", hour, end)
    if not wh.has_relation("raw"):
        # the view globs the lake when queried, so creating it once is enough
        wh.create_raw_view(root)
    return TradesHour(hour, window, path, qpath, deleted)


@dataclass(frozen=True, slots=True)
class CandlesHour:
    hour: int
    candles: pl.DataFrame
    watermarks: dict[str, int]
    path: str
    trades_read: int
    warehouse_deleted: int
    by_timeframe: dict[str, int] = field(default_factory=dict)

    @property
    def rows_by_symbol(self) -> dict[str, int]:
        return by_symbol(self.candles)


def candle_watermarks(settings: Settings, hour: int) -> dict[str, int]:
    """exchange -> the time up to which this hour's candles are known closed: min(hour end, trade end - grace),
    trade end being the newest trade the trades partition's raw read saw (any hour). Exchange time, not receive
    time: the candles are then a function of the data alone, whether it arrived live or by import."""
    meta = read_partition_metadata(partition_path(settings.root, "trades", hour))
    if meta is None:
        raise MissingUpstreamError(f"trades partition for hour {hour} is not materialized")
    trade_end: dict[str, int] = json.loads(meta.get(TRADE_END_KEY, "{}"))
    end = hour + HOUR_NS
    return {ex: min(end, int(ts) - settings.grace_ns) for ex, ts in trade_end.items()}


def materialize_candles_hour(settings: Settings, hour: int, warehouse: Warehouse | None = None) -> CandlesHour:
    """Candles with close_time in (hour, hour + 1h] that are closed, from the trades partitions of the lake,
    written to the lake partition and DuckDB ``candles`` (window replaced)."""
    root = settings.root
    end = hour + HOUR_NS
    watermarks = candle_watermarks(settings, hour)
    start = candle_range_start(hour, end, TIMEFRAMES)
    trades = read_partitions(root, "trades", start, end, TRADES)
    earlier = read_partitions(
        root,
        "trades",
        start - settings.lookback_ns,
        start,
        TRADES,
        columns=["exchange", "symbol", "ts", "price"],
    )
    candles = build_candles(
        trades,
        publish_start_ns=hour,
        publish_end_ns=end,
        limits=watermarks,
        prev_close=last_close(earlier, start),
    )
    path = partition_path(root, "candles", hour)
    write_partition(path, candles.select(list(CANDLES)))
    wh = warehouse or Warehouse(settings.warehouse_path)
    deleted, _ = wh.replace_window("candles", candles, "close_time", hour, end, closed="right")
    counts = candles.group_by("timeframe").len()
    by_tf = {str(tf): int(n) for tf, n in counts.iter_rows()}
    return CandlesHour(
        hour, candles, watermarks, path, trades.height, deleted, {tf: by_tf.get(tf, 0) for tf in TIMEFRAMES}
    )
