"""The hourly assets: ``trades`` and ``coverage`` (one pass over the raw hour), then ``candles``."""

# no `from __future__ import annotations`: Dagster inspects the real annotation of `context`
import warnings
from collections.abc import Iterator

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
    multi_asset,
)

from mdplatform.transforms import GAP_STATUS

from ._hourly import by_symbol, materialize_candles_hour, materialize_trades_hour
from ._resources import MdpResource
from .partitions import HOURLY, hour_ns

__all__ = ["CANDLES_KEY", "COVERAGE_KEY", "TRADES_KEY", "candles", "trades_and_coverage"]

# allow_nonexistent_upstream_partitions is "beta" in Dagster 1.13; it keeps the first hour after MDP_START valid
warnings.filterwarnings("ignore", message=".*allow_nonexistent_upstream_partitions.*")

TRADES_KEY = AssetKey("trades")
COVERAGE_KEY = AssetKey("coverage")
CANDLES_KEY = AssetKey("candles")


@multi_asset(
    specs=[
        AssetSpec(
            TRADES_KEY,
            group_name="market_data",
            kinds={"polars", "parquet", "duckdb"},
            description=(
                "Normalized trades with exchange time in the hour (prices and sizes exact, DECIMAL(38,12); "
                "aggregated trades carry their fill count), each fill once across channels. Read from raw receive "
                "minutes [H - lateness, H + 1h + lateness). Lake: trades/date=/hour=/data.parquet; DuckDB: trades."
            ),
        ),
        AssetSpec(
            COVERAGE_KEY,
            group_name="market_data",
            kinds={"polars", "parquet", "duckdb"},
            description=(
                "Per stream (exchange, symbol, channel), the stretches of the hour that were observed and the gaps "
                "with their reason (not connected, lost on crash, silent, id gap, sequence gap...), from the "
                "collector's events and the trades' ids. Lake: coverage/date=/hour=/data.parquet; DuckDB: coverage."
            ),
        ),
    ],
    partitions_def=HOURLY,
)
def trades_and_coverage(context: AssetExecutionContext, mdp: MdpResource) -> Iterator[MaterializeResult[None]]:
    hour = hour_ns(context.partition_key)
    done = materialize_trades_hour(mdp.settings(), hour)
    w = done.window
    gaps = done.coverage.filter(done.coverage["status"] == GAP_STATUS)
    context.log.info(
        f"{w.trades.height} trades from {w.raw_rows} raw rows; late {w.late.height}, duplicates {w.duplicates}, "
        f"overlaps {w.overlaps}, rejects {w.rejects.height}; {gaps.height} coverage gaps"
    )
    yield MaterializeResult(
        asset_key=TRADES_KEY,
        metadata={
            "dagster/row_count": w.trades.height,
            "rows_by_symbol": MetadataValue.json(done.rows_by_symbol),
            "raw_rows_read": w.raw_rows,
            "late_trades": w.late.height,
            "late_by_symbol": MetadataValue.json(by_symbol(w.late)),
            "duplicates": w.duplicates,
            "aggregates_dropped_for_their_fills": w.overlaps,
            "rejects": w.rejects.height,
            "rejects_by_reason": MetadataValue.json(done.rejects_by_reason),
            "path": MetadataValue.path(done.path),
            "quarantine": MetadataValue.path(done.quarantine) if done.quarantine else MetadataValue.text(""),
            "warehouse_rows_replaced": done.warehouse_deleted,
        },
    )
    yield MaterializeResult(
        asset_key=COVERAGE_KEY,
        metadata={
            "dagster/row_count": done.coverage.height,
            "streams": done.coverage.select("exchange", "symbol", "channel").unique().height,
            "gaps": gaps.height,
            "gap_seconds_by_reason": MetadataValue.json(done.gaps_by_reason),
            "path": MetadataValue.path(done.coverage_path),
        },
    )


@asset(
    key=CANDLES_KEY,
    partitions_def=HOURLY,
    group_name="market_data",
    kinds={"polars", "parquet", "duckdb"},
    deps=[
        TRADES_KEY,
        COVERAGE_KEY,
        # the previous hour's 1m candles: the price carried into flat minutes, and the minutes of 4h/1d candles
        AssetDep(
            CANDLES_KEY,
            partition_mapping=TimeWindowPartitionMapping(
                start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
            ),
        ),
    ],
    description=(
        "OHLCV candles (1m 5m 15m 1h 4h 1d) whose close_time is in (H, H + 1h] and that are known closed, each "
        "saying whether it is complete (its whole span observed) and its observed share; no candle over what was "
        "not observed. Lake: candles/date=/hour=/data.parquet; DuckDB: candles."
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
            "incomplete_by_timeframe": MetadataValue.json(done.incomplete_by_timeframe),
            "trades_read": done.trades_read,
            "path": MetadataValue.path(done.path),
            "warehouse_rows_replaced": done.warehouse_deleted,
        }
    )
