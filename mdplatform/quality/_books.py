"""The suites of the book partitions: book snapshots, the book and trade heatmaps, the consolidated book."""

from __future__ import annotations

import polars as pl

from mdplatform.transforms import HEATMAP

from ._rules import (
    HOUR_S,
    Rule,
    Suite,
    between,
    flag,
    in_set,
    not_null,
    offset_s,
    schema_matches,
    schema_suite,
    unique,
)

__all__ = ["book_heatmap_suites", "book_snapshots_suites", "consolidated_book_suites", "trade_heatmap_suites"]


def _ns(col: str) -> pl.Expr:
    return pl.col(col).dt.epoch("ns")


def _imbalances(columns: list[str]) -> list[Rule]:
    return [between(c, -1, 1, f"{c} in [-1, 1]") for c in columns if c.startswith("imbalance_")]


def book_snapshots_suites(df: pl.DataFrame, start_ns: int, invalid: pl.DataFrame | None = None) -> list[Suite]:
    """Schema; no nulls but where a band or level may be absent; ts in the hour and growing per book (one sample
    per book and second); never crossed or locked, best sizes > 0; the top level is the best; book_ts <= ts;
    imbalances in [-1, 1]; with the hour's ``invalid`` spans (``book_invalid``), no sample inside one."""
    from mdplatform.book import samples_schema

    expected = samples_schema()
    schema = schema_suite("book_snapshots", df, expected)
    if not schema_matches(df, expected):
        return [schema]
    book = ["exchange", "symbol"]
    frame = df.with_columns(
        ts_offset_s=offset_s("ts", start_ns),
        ts_step_s=(_ns("ts") - _ns("ts").shift(1).over(book)) / 1e9,
        book_lag_s=(_ns("ts") - _ns("book_ts")) / 1e9,
        top_is_best=(pl.col("bid_px").list.first() == pl.col("bid_price"))
        & (pl.col("ask_px").list.first() == pl.col("ask_price")),
    )
    if invalid is not None and invalid.height:
        inside = (
            frame.select(*book, "ts")
            .with_row_index("_i")
            .join(invalid, on=book)
            .filter((pl.col("ts") >= pl.col("start")) & (pl.col("ts") < pl.col("end")))
            .get_column("_i")
        )
        frame = frame.with_columns(outside_invalid_spans=~pl.int_range(pl.len(), dtype=pl.UInt32).is_in(inside))
    else:
        frame = frame.with_columns(outside_invalid_spans=pl.lit(True))
    nullable = {
        c for c in df.columns if "depth" in c or "imbalance" in c or c in ("update_id", "bid_floor", "ask_ceiling")
    }
    rules = (
        *not_null([c for c in df.columns if c not in nullable and not c.endswith(("_px", "_sz"))]),
        between("ts_offset_s", 0, HOUR_S, "ts in the partition's hour", strict_hi=True),
        between("ts_step_s", 0, None, "ts grows per book (one sample per book and step)", strict_lo=True),
        Rule(
            "ExpectColumnPairValuesAToBeGreaterThanB",
            {"column_A": "ask_price", "column_B": "bid_price", "or_equal": False},
            "never crossed or locked (bid < ask)",
        ),
        between("bid_size", 0, None, "best bid size > 0", strict_lo=True),
        between("ask_size", 0, None, "best ask size > 0", strict_lo=True),
        flag("top_is_best", "the top level of each side is its best price"),
        between("book_lag_s", 0, None, "book_ts <= ts"),
        *_imbalances(df.columns),
        flag("outside_invalid_spans", "no sample inside a span of book_invalid"),
    )
    shown = ("ts", "exchange", "symbol", "bid_price", "ask_price", "bid_size", "ask_size", "book_ts")
    return [schema, Suite("book_snapshots", frame, rules, shown=shown, rows="samples")]


def book_heatmap_suites(df: pl.DataFrame, start_ns: int) -> list[Suite]:
    """Schema; no nulls; ts in the hour; steps 1s/1m; sides bid/ask; sizes > 0; intensity in (0, 1], 1 at the
    largest bucket of each step; prices exact bucket edges; counts >= 1, one sample per 1 s step; one row per
    (exchange, symbol, step, ts, side, price)."""
    from mdplatform.book import BOOK_HEATMAP

    schema = schema_suite("book_heatmap", df, BOOK_HEATMAP)
    if not schema_matches(df, BOOK_HEATMAP):
        return [schema]
    step = ["exchange", "symbol", "step", "ts"]
    frame = df.with_columns(
        ts_offset_s=offset_s("ts", start_ns),
        on_bucket_edge=(pl.col("price") % pl.col("bucket")) == 0,
        step_peaks_at_1=pl.col("intensity").max().over(step) == 1.0,
    )
    rules = (
        *not_null(list(BOOK_HEATMAP)),
        between("ts_offset_s", 0, HOUR_S, "ts in the partition's hour", strict_hi=True),
        in_set("step", ["1s", "1m"], "step is 1s or 1m"),
        in_set("side", ["bid", "ask"], "side is bid or ask"),
        between("size", 0, None, "size > 0", strict_lo=True),
        between("intensity", 0, 1, "intensity in (0, 1]", strict_lo=True),
        flag("step_peaks_at_1", "the largest bucket of each step has intensity 1"),
        flag("on_bucket_edge", "price is an exact multiple of the bucket"),
        between("exchange_count", 1, None, "exchange_count >= 1"),
        between("samples", 1, None, "samples >= 1"),
        between("samples", 1, 1, "a 1 s step holds one sample", where='step=="1s"'),
        unique([*step, "side", "price"], "one row per (exchange, symbol, step, ts, side, price)"),
    )
    return [schema, Suite("book_heatmap", frame, rules, rows="heatmap rows")]


def trade_heatmap_suites(df: pl.DataFrame, start_ns: int, trades: pl.DataFrame | None = None) -> list[Suite]:
    """Schema; no nulls; minutes of the hour, on the minute; sizes >= 0 and something traded; counts >= 0;
    price buckets exact multiples of their size; intensity in [0, 1]; one row per (exchange, symbol, minute,
    bucket). With the hour's ``trades``: per (exchange, symbol) the buckets hold exactly the traded size."""
    schema = schema_suite("trade_heatmap", df, HEATMAP)
    if not schema_matches(df, HEATMAP):
        return [schema]
    frame = df.with_columns(
        minute_offset_s=offset_s("minute", start_ns),
        on_the_minute=_ns("minute") % 60_000_000_000 == 0,
        traded=(pl.col("buy_size") + pl.col("sell_size")) > 0,
        on_bucket_edge=(pl.col("price_bucket") % pl.col("bucket_size")) == 0,
    )
    rules: list[Rule] = [
        *not_null(list(HEATMAP)),
        between("minute_offset_s", 0, HOUR_S, "minute in the partition's hour", strict_hi=True),
        flag("on_the_minute", "minute is a whole minute"),
        between("buy_size", 0, None, "buy_size >= 0"),
        between("sell_size", 0, None, "sell_size >= 0"),
        flag("traded", "a bucket holds some traded size"),
        between("buy_count", 0, None, "buy_count >= 0"),
        between("sell_count", 0, None, "sell_count >= 0"),
        flag("on_bucket_edge", "price_bucket is an exact multiple of bucket_size"),
        between("intensity", 0, 1, "intensity in [0, 1]"),
        unique(["exchange", "symbol", "minute", "price_bucket"], "one row per (exchange, symbol, minute, bucket)"),
    ]
    if trades is not None:
        traded = trades.group_by("exchange", "symbol").agg(traded_size=pl.col("size").sum())
        binned = df.group_by("exchange", "symbol").agg(binned_size=(pl.col("buy_size") + pl.col("sell_size")).sum())
        match = binned.join(traded, on=["exchange", "symbol"], how="full", coalesce=True).select(
            "exchange", "symbol", volume_matches_trades=pl.col("binned_size").eq_missing(pl.col("traded_size"))
        )
        frame = frame.join(match, on=["exchange", "symbol"], how="left").with_columns(
            pl.col("volume_matches_trades").fill_null(False)
        )
        rules.append(flag("volume_matches_trades", "per (exchange, symbol) the buckets hold the hour's traded size"))
    return [schema, Suite("trade_heatmap", frame, tuple(rules), rows="heatmap rows")]


def consolidated_book_suites(df: pl.DataFrame, start_ns: int) -> list[Suite]:
    """Schema; no nulls but depth bands; ts in the hour; one row per (base, ts); best prices > 0; ``crossed``
    exactly when best_bid >= best_ask; exchange_count >= 1 and the length of each per-book list; staleness
    >= 0; imbalances in [-1, 1]."""
    from mdplatform.book import CONSOLIDATED_BOOK

    schema = schema_suite("consolidated_book", df, CONSOLIDATED_BOOK)
    if not schema_matches(df, CONSOLIDATED_BOOK):
        return [schema]
    n = pl.col("exchange_count")
    frame = df.with_columns(
        ts_offset_s=offset_s("ts", start_ns),
        crossed_when_bid_ge_ask=pl.col("crossed") == (pl.col("best_bid") >= pl.col("best_ask")),
        one_entry_per_book=(pl.col("exchanges").list.len() == n)
        & (pl.col("symbols").list.len() == n)
        & (pl.col("staleness_ms").list.len() == n),
        staleness_not_negative=pl.col("staleness_ms").list.min() >= 0,
    )
    required = [c for c in CONSOLIDATED_BOOK if "depth" not in c and "imbalance" not in c]
    rules = (
        *not_null([c for c in required if c not in ("exchanges", "symbols", "staleness_ms")]),
        between("ts_offset_s", 0, HOUR_S, "ts in the partition's hour", strict_hi=True),
        unique(["base", "ts"], "one row per (base, ts)"),
        between("best_bid", 0, None, "best_bid > 0", strict_lo=True),
        between("best_ask", 0, None, "best_ask > 0", strict_lo=True),
        flag("crossed_when_bid_ge_ask", "crossed exactly when best_bid >= best_ask"),
        between("exchange_count", 1, None, "exchange_count >= 1"),
        flag("one_entry_per_book", "exchanges, symbols and staleness_ms hold one entry per book"),
        flag("staleness_not_negative", "staleness_ms >= 0"),
        *_imbalances(df.columns),
    )
    shown = ("ts", "base", "best_bid", "best_bid_exchange", "best_ask", "best_ask_exchange", "crossed")
    return [schema, Suite("consolidated_book", frame, rules, shown=shown, rows="steps")]
