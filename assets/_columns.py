"""The column schemas of the assets' tables, as Dagster shows them (``dagster/column_schema``): each column's
type from the layouts the lake is written with (``mdplatform.schemas``, ``mdplatform.book``) and what it holds."""

from __future__ import annotations

from typing import Any

import polars as pl
from dagster import MetadataValue, TableColumn, TableSchema

__all__ = ["COLUMNS", "column_schema", "table_metadata"]

_BANDS = (10, 25, 50, 100)
_DEPTH = {
    **{f"bid_depth_{b}bps": f"bid size resting within {b} bp below the mid" for b in _BANDS},
    **{f"ask_depth_{b}bps": f"ask size resting within {b} bp above the mid" for b in _BANDS},
    **{f"imbalance_{b}bps": f"(bid - ask) / (bid + ask) depth within {b} bp, in [-1, 1]" for b in _BANDS},
}

#: table -> column -> what it holds
COLUMNS: dict[str, dict[str, str]] = {
    "raw": {
        "recv_ts": "local receive time of the frame (UTC, ns)",
        "exchange": "exchange id (binance, okx, ...)",
        "channel": "the exchange's own channel name (trade, depth, bookTicker, ...)",
        "symbol": "the exchange's own symbol (BTCUSDT)",
        "conn_id": "the connection that received the frame",
        "seq": "frame counter of the connection",
        "payload": "the frame as received (JSON text)",
    },
    "trades": {
        "exchange": "exchange id",
        "symbol": "normalized symbol BASE-QUOTE[-SUFFIX]",
        "ts": "exchange trade time (UTC, ns)",
        "recv_ts": "local receive time of the frame that carried it (UTC, ns)",
        "trade_id": "the exchange's trade id ('first-last' for a row aggregating fills with ids of their own)",
        "price": "trade price, exact DECIMAL(38,12)",
        "size": "traded size in the base asset, exact DECIMAL(38,12)",
        "side": "taker side: buy or sell",
        "fills": "matches the row aggregates (1 for a single fill)",
    },
    "coverage": {
        "exchange": "exchange id",
        "symbol": "normalized symbol, as in trades",
        "channel": "the exchange's own channel name",
        "start_time": "start of the stretch (exchange time, UTC)",
        "end_time": "end of the stretch (exclusive)",
        "status": "covered or gap",
        "reason": "why a gap: not connected, lost on crash, silent, id gap, sequence gap, ...",
        "detail": "more on the gap (ids, connection)",
        "missing": "id gaps: how many ids are missing",
        "filled": "gaps: share observed through another stream of the same symbol",
    },
    "candles": {
        "exchange": "exchange id",
        "symbol": "normalized symbol",
        "timeframe": "1m 5m 15m 1h 4h 1d",
        "open_time": "start of the candle (UTC)",
        "close_time": "end of the candle (exclusive; the hour partition holds close_time in (H, H+1h])",
        "open": "first trade price",
        "high": "highest trade price",
        "low": "lowest trade price",
        "close": "last trade price (the previous close on a flat, observed candle)",
        "volume": "base volume",
        "quote_volume": "quote volume (price x size), DECIMAL(38,18)",
        "trade_count": "fills (an aggregated trade counts its matches)",
        "taker_buy_volume": "base volume of taker buys",
        "taker_buy_quote_volume": "quote volume of taker buys",
        "vwap": "volume-weighted average price",
        "complete": "every moment of the span was observed (above 1m: every minute complete)",
        "coverage": "share of the span observed, 0..1",
    },
    "book_snapshots": {
        "ts": "sample time (exchange time, every MDP_BOOK_INTERVAL_S)",
        "exchange": "exchange id",
        "symbol": "normalized symbol",
        "update_id": "the book's last applied update id",
        "book_ts": "exchange time of the book's last update (<= ts)",
        "bid_price": "best bid",
        "bid_size": "size at the best bid",
        "ask_price": "best ask",
        "ask_size": "size at the best ask",
        "mid": "(bid + ask) / 2",
        "spread": "ask - bid",
        "spread_bps": "spread in basis points of the mid",
        "microprice": "size-weighted mid of the top level",
        "bid_floor": "lowest bid price the book holds",
        "ask_ceiling": "highest ask price the book holds",
        **_DEPTH,
        "bid_px": "top 25 bid prices, best first",
        "bid_sz": "sizes at bid_px",
        "ask_px": "top 25 ask prices, best first",
        "ask_sz": "sizes at ask_px",
    },
    "book_heatmap": {
        "ts": "start of the step (UTC)",
        "step": "1s or 1m (the mean over the minute's valid seconds)",
        "exchange": "exchange id, '*' for the consolidated heatmap of a base",
        "symbol": "normalized symbol ('BTC-USD*' consolidated over USD-like quotes)",
        "side": "bid or ask",
        "price": "lower edge of the price bucket, exact",
        "bucket": "bucket width, exact",
        "size": "resting size in the bucket",
        "intensity": "size relative to the step's largest bucket, (0, 1]",
        "exchange_count": "books summed (1 for a single book)",
        "samples": "seconds averaged",
        "complete": "1m: the book was valid for all 60 seconds",
    },
    "trade_heatmap": {
        "minute": "start of the minute (UTC)",
        "exchange": "exchange id",
        "symbol": "normalized symbol",
        "price_bucket": "lower edge of the price bucket, exact",
        "bucket_size": "bucket width, exact",
        "buy_size": "taker buy volume in the bucket",
        "sell_size": "taker sell volume in the bucket",
        "buy_count": "taker buy fills",
        "sell_count": "taker sell fills",
        "intensity": "volume relative to the minute's largest bucket, (0, 1]",
    },
    "consolidated_book": {
        "ts": "sample time (UTC)",
        "base": "base asset (BTC)",
        "best_bid": "highest bid across the books",
        "best_bid_exchange": "the exchange that has it",
        "best_ask": "lowest ask across the books",
        "best_ask_exchange": "the exchange that has it",
        "mid": "(best_bid + best_ask) / 2",
        "crossed": "best_bid >= best_ask across exchanges",
        **_DEPTH,
        "exchange_count": "books that contributed",
        "exchanges": "their exchanges",
        "symbols": "their symbols",
        "staleness_ms": "per book, how old its sample was (ms)",
    },
}


def _layouts() -> dict[str, dict[str, pl.DataType]]:
    from mdplatform.book import BOOK_HEATMAP, CONSOLIDATED_BOOK, samples_schema
    from mdplatform.schemas import CANDLES, COVERAGE, RAW, TRADES
    from mdplatform.transforms import HEATMAP

    return {
        "raw": RAW,
        "trades": TRADES,
        "coverage": COVERAGE,
        "candles": CANDLES,
        "book_snapshots": samples_schema(),
        "book_heatmap": BOOK_HEATMAP,
        "trade_heatmap": HEATMAP,
        "consolidated_book": CONSOLIDATED_BOOK,
    }


def _type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Decimal):
        return f"decimal({dtype.precision},{dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        return "timestamp(ns, UTC)"
    if isinstance(dtype, pl.List):
        return f"list<{_type(dtype.inner)}>"  # type: ignore[arg-type]
    return str(dtype).lower()


def column_schema(table: str) -> TableSchema:
    """Every column of ``table``'s layout, in order, with its type and what it holds (a column without a
    description is an error: the test of the definitions reads every asset's schema)."""
    docs = COLUMNS[table]
    layout = _layouts()[table]
    missing = set(layout) ^ set(docs)
    if missing:
        raise KeyError(f"{table}: columns and descriptions differ: {sorted(missing)}")
    return TableSchema(
        columns=[TableColumn(name, _type(dtype), description=docs[name]) for name, dtype in layout.items()]
    )


def table_metadata(table: str) -> dict[str, Any]:
    """An asset's definition metadata: its column schema and its lake folder."""
    return {"dagster/column_schema": column_schema(table), "lake_table": MetadataValue.text(f"{table}/")}
