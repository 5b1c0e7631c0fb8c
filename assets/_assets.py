"""The hourly ``trades`` and ``candles`` assets."""

# no `from __future__ import annotations`: Dagster inspects the real annotation of `context`
import warnings

from dagster import (
    AssetDep,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
)

from mdplatform.schemas import TIMEFRAMES
from mdplatform.transforms import HOUR_NS, from_ns

from ._hourly import by_symbol, materialize_candles_hour, materialize_trades_hour
from ._resources import MdpResource
from ._settings import Settings
from .partitions import HOURLY, hour_ns

__all__ = ["CANDLE_TRADES_OFFSET", "candles", "trades"]

# allow_nonexistent_upstream_partitions is "beta" in Dagster 1.13; it keeps the hours after MDP_START valid
warnings.filterwarnings("ignore", message=".*allow_nonexistent_upstream_partitions.*")

#: candles(H) reads trades back to the start of the day's 1d candle (H - 23 h) and a lookback before that
CANDLE_TRADES_OFFSET = -(max(TIMEFRAMES.values()) // HOUR_NS - 1) - Settings().lookback_ns // HOUR_NS


def _iso(ns: int) -> str:
    return from_ns(ns).isoformat()


@asset(
    partitions_def=HOURLY,
    group_name="market_data",
    kinds={"polars", "parquet", "duckdb"},
    description=(
        "Normalized trades with exchange time in the hour, from raw receive minutes "
        "[H - skew, H + 1h + lateness); "
        "deduplicated by (exchange, symbol, trade_id). Lake: trades/date=/hour=/data.parquet; DuckDB: trades."
    ),
)
def trades(context: AssetExecutionContext, mdp: MdpResource) -> MaterializeResult[None]:
    hour = hour_ns(context.partition_key)
    done = materialize_trades_hour(mdp.settings(), hour)
    w = done.window
    context.log.info(
        f"{w.trades.height} trades from {w.raw_rows} raw rows; late {w.late.height}, early {w.early.height}, "
        f"duplicates {w.duplicates}, rejects {w.rejects.height}"
    )
    return MaterializeResult(
        metadata={
            "dagster/row_count": w.trades.height,
            "rows_by_symbol": MetadataValue.json(done.rows_by_symbol),
            "raw_rows_read": w.raw_rows,
            "late_trades": w.late.height,
            "late_by_symbol": MetadataValue.json(by_symbol(w.late)),
            "early_trades": w.early.height,
            "duplicates": w.duplicates,
            "rejects": w.rejects.height,
            "rejects_by_reason": MetadataValue.json(done.rejects_by_reason),
            "trade_end": MetadataValue.json({ex: _iso(ts) for ex, ts in sorted(done.window.trade_end.items())}),
            "path": MetadataValue.path(done.path),
            "quarantine": MetadataValue.path(done.quarantine) if done.quarantine else MetadataValue.text(""),
            "warehouse_rows_replaced": done.warehouse_deleted,
        }
    )


@asset(
    partitions_def=HOURLY,
    group_name="market_data",
    kinds={"polars", "parquet", "duckdb"},
    deps=[
        AssetDep(
            trades,
            partition_mapping=TimeWindowPartitionMapping(
                start_offset=CANDLE_TRADES_OFFSET, end_offset=0, allow_nonexistent_upstream_partitions=True
            ),
        )
    ],
    description=(
        "OHLCV candles (1m 5m 15m 1h 4h 1d) whose close_time is in (H, H + 1h] and that are closed "
        "(close_time <= min(H + 1h, newest trade seen - grace)); flat minutes at the previous close. "
        "Lake: candles/date=/hour=/data.parquet; DuckDB: candles."
    ),
)
def candles(context: AssetExecutionContext, mdp: MdpResource) -> MaterializeResult[None]:
    hour = hour_ns(context.partition_key)
    done = materialize_candles_hour(mdp.settings(), hour)
    context.log.info(f"{done.candles.height} candles {done.by_timeframe} from {done.trades_read} trades")
    return MaterializeResult(
        metadata={
            "dagster/row_count": done.candles.height,
            "rows_by_symbol": MetadataValue.json(done.rows_by_symbol),
            "rows_by_timeframe": MetadataValue.json(done.by_timeframe),
            "watermarks": MetadataValue.json({ex: _iso(ts) for ex, ts in sorted(done.watermarks.items())}),
            "trades_read": done.trades_read,
            "complete": all(ts >= hour + HOUR_NS for ts in done.watermarks.values()),
            "path": MetadataValue.path(done.path),
            "warehouse_rows_replaced": done.warehouse_deleted,
        }
    )
