"""The suites of the trades, coverage and candles partitions: the ERROR suites (a partition that fails one is
wrong) and the WARN suites of trades (facts worth a look: lost trade ids, a venue's price away from the others',
many rows quarantined or late)."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from mdplatform.schemas import CANDLES, COVERAGE, TIMEFRAMES, TRADES
from mdplatform.transforms import (
    COVERED,
    GAP_STATUS,
    HOUR_NS,
    WINDOW,
    registry_stream_kinds,
    stamp_window,
    symbol_coverage,
)

from ._rules import (
    HOUR_S,
    Rule,
    Suite,
    between,
    contract_part,
    flag,
    hour_start,
    in_set,
    not_null,
    offset_s,
    schema_matches,
    schema_suite,
    unique,
)

__all__ = [
    "candles_suites",
    "coverage_suites",
    "cross_exchange_suites",
    "id_continuity_suites",
    "quarantine_counts_suites",
    "trades_suites",
]

#: how far a venue's median trade price of a minute may be from the median over the venues (bp) before it warns
MAX_DEVIATION_BPS = 50.0
#: shares of quarantined raw rows (of the rows read) and of late trades (of the hour's trades) that warn
MAX_REJECTED_SHARE = 0.001
MAX_LATE_SHARE = 0.01

_STREAM = ["exchange", "symbol"]


def _ns(col: str) -> pl.Expr:
    return pl.col(col).dt.epoch("ns")


def trades_suites(df: pl.DataFrame, start_ns: int | None, skew_ns: int = 10 * 10**9) -> list[Suite]:
    """Schema; no nulls; price, size > 0; side; fills >= 1; one row per (exchange, symbol, trade_id); ts in the
    hour, never decreasing per (exchange, symbol) in the partition's order, at most ``skew_ns`` ahead of receipt.
    ``start_ns``: the partition's hour; None: ``df`` holds several hours, each row stamped with its own
    (``hour_start``), all the hours' files of the contract's schema."""
    schema = schema_suite("trades", contract_part(df), TRADES)
    if not schema_matches(contract_part(df), TRADES):
        return [schema]
    df, start = hour_start(df, start_ns)
    frame = df.with_columns(
        ts_offset_s=offset_s("ts", start),
        # a stream's first row has nothing to step back from: 0, not null (GX filters a column's nulls out of the
        # batch before each of its metrics, a copy of the whole frame for every metric when one row is null)
        ts_step_s=((_ns("ts") - _ns("ts").shift(1).over([*_STREAM, WINDOW])) / 1e9).fill_null(0.0),
        ahead_of_receipt_s=(_ns("ts") - _ns("recv_ts")) / 1e9,
    ).drop(WINDOW)
    rules = (
        *not_null(list(TRADES)),
        between("price", 0, None, "price > 0", strict_lo=True),
        between("size", 0, None, "size > 0", strict_lo=True),
        in_set("side", ["buy", "sell"], "side is buy or sell"),
        between("fills", 1, None, "fills >= 1"),
        unique(["exchange", "symbol", "trade_id"], "one row per (exchange, symbol, trade_id)"),
        between("ts_offset_s", 0, HOUR_S, "ts in the partition's hour", strict_hi=True),
        between("ts_step_s", 0, None, "ts never decreases per (exchange, symbol)"),
        between("ahead_of_receipt_s", None, skew_ns / 1e9, f"ts at most {skew_ns / 1e9:g} s ahead of recv_ts"),
    )
    return [schema, Suite("trades", frame, rules, rows="trades")]


def _fill_ids(df: pl.DataFrame) -> pl.DataFrame:
    """(first, last) fill id of each row: ``"123"`` or an aggregate's ``"120-123"``; null if not numeric."""
    parts = pl.col("trade_id").str.split("-")
    return df.with_columns(
        first_id=parts.list.first().cast(pl.Int64, strict=False),
        last_id=parts.list.last().cast(pl.Int64, strict=False),
    )


def id_continuity_suites(df: pl.DataFrame) -> list[Suite]:
    """Where the exchange numbers trades contiguously per symbol (``Capabilities.contiguous_ids``), no fill id
    is missing or repeated between consecutive rows of a symbol (by id). A missing id is a lost trade; coverage
    has it as an ``id gap``. Rows: each row after the first of its symbol."""
    contiguous = [x for x, kinds in registry_stream_kinds().items() if kinds.contiguous_ids]
    # several hours at once (rows stamped with their hour, ``hour_start``): each hour's ids apart, in hour order
    hours = [WINDOW] if WINDOW in df.columns else []
    rows = (
        _fill_ids(
            df.filter(pl.col("exchange").is_in(contiguous)).select(*hours, "exchange", "symbol", "ts", "trade_id")
        )
        .sort([*hours, *_STREAM, "first_id"])
        .with_columns(ids_missing_before=pl.col("first_id") - pl.col("last_id").shift(1).over([*hours, *_STREAM]) - 1)
        .filter(pl.col("ids_missing_before").is_not_null())
        .drop(hours)
    )
    rules = (between("ids_missing_before", 0, 0, "no fill id missing or repeated before a trade"),)
    return [Suite("trades.id_continuity", rows, rules, rows="trades")]


def cross_exchange_suites(df: pl.DataFrame, max_bps: float = MAX_DEVIATION_BPS) -> list[Suite]:
    """Per symbol traded on several exchanges and minute: each exchange's median price is within ``max_bps``
    of the median over the exchanges (a symbol names one instrument: suffixes set perpetuals and futures
    apart). Rows: (minute, symbol, exchange) where at least two exchanges traded the symbol."""
    if df.get_column("exchange").n_unique() < 2:
        df = df.clear()  # one exchange: no rows, without the medians of every minute of its trades
    medians = (
        df.group_by(minute=pl.col("ts").dt.truncate("1m"), exchange=pl.col("exchange"), symbol=pl.col("symbol"))
        .agg(median_price=pl.col("price").cast(pl.Float64).median())
        .with_columns(
            venues=pl.len().over("minute", "symbol"),
            across=pl.col("median_price").median().over("minute", "symbol"),
        )
        .filter(pl.col("venues") >= 2)
        .with_columns(deviation_bps=((pl.col("median_price") - pl.col("across")).abs() / pl.col("across") * 1e4))
        .sort("minute", "symbol", "exchange")
    )
    rules = (
        between("deviation_bps", 0, max_bps, f"each venue's median price within {max_bps:g} bp of the venues' median"),
    )
    return [Suite("trades.cross_exchange", medians, rules, rows="venue minutes")]


def quarantine_counts_suites(
    counts: Mapping[str, int],
    max_rejected_share: float = MAX_REJECTED_SHARE,
    max_late_share: float = MAX_LATE_SHARE,
) -> list[Suite]:
    """The hour's quarantined raw rows and late trades against what was read: ``counts`` has ``rows`` (trades),
    ``raw_rows_read``, ``rejects``, ``late_trades`` (the trades asset's numbers for the hour)."""
    rows, raw, rejects, late = (int(counts.get(k, 0)) for k in ("rows", "raw_rows_read", "rejects", "late_trades"))
    frame = pl.DataFrame(
        {
            "trades": [rows],
            "raw_rows_read": [raw],
            "quarantined": [rejects],
            "late_trades": [late],
            "quarantined_share": [rejects / raw if raw else 0.0],
            "late_share": [late / rows if rows else 0.0],
        }
    )
    rules = (
        between(
            "quarantined_share", 0, max_rejected_share, f"at most {max_rejected_share:.1%} of raw rows quarantined"
        ),
        between("late_share", 0, max_late_share, f"at most {max_late_share:.0%} of trades late"),
    )
    return [Suite("trades.quarantine_and_late", frame, rules, rows="hours")]


def coverage_suites(df: pl.DataFrame, start_ns: int | None) -> list[Suite]:
    """Schema; no nulls where a row needs a value; status covered/gap, a gap has a reason and a covered row
    none; filled in [0, 1]; per stream the rows tile the hour from its start, each ending after it starts.
    ``start_ns``: as ``trades_suites``'."""
    schema = schema_suite("coverage", contract_part(df), COVERAGE)
    if not schema_matches(contract_part(df), COVERAGE):
        return [schema]
    df, start = hour_start(df, start_ns)
    keys = [WINDOW, "exchange", "symbol", "channel"]
    frame = (
        df.sort([*keys, "start_time"], maintain_order=True)
        .with_columns(
            duration_s=(_ns("end_time") - _ns("start_time")) / 1e9,
            end_offset_s=offset_s("end_time", start),
            tile_error_s=(_ns("start_time") - _ns("end_time").shift(1).over(keys).fill_null(start)) / 1e9,
        )
        .drop(WINDOW)
        .with_row_index("row")
    )
    rules = (
        *not_null([c for c in COVERAGE if c not in ("reason", "detail", "missing")]),
        in_set("status", [COVERED, GAP_STATUS], f"status is {COVERED} or {GAP_STATUS}"),
        Rule(
            "ExpectColumnValuesToNotBeNull",
            {"column": "reason", "row_condition": f'status=="{GAP_STATUS}"', "condition_parser": "pandas"},
            "a gap has a reason",
        ),
        Rule(
            "ExpectColumnValuesToBeNull",
            {"column": "reason", "row_condition": f'status=="{COVERED}"', "condition_parser": "pandas"},
            "a covered row has no reason",
        ),
        between("filled", 0, 1, "filled in [0, 1]"),
        between("duration_s", 0, None, "end_time after start_time", strict_lo=True),
        between("end_offset_s", None, HOUR_S, "end_time within the partition's hour"),
        between("tile_error_s", 0, 0, "rows tile each stream from the hour's start (no hole, no overlap)"),
    )
    return [schema, Suite("coverage", frame.drop("row"), rules, rows="coverage rows")]


def _covered_share(candles: pl.DataFrame, coverage: pl.DataFrame) -> pl.DataFrame:
    """Each candle's share of its span observed on the symbol's trade channels (its hour's coverage: both frames'
    rows stamped with their hour, ``WINDOW``)."""
    trade_channels = {x: kinds.trade_channels for x, kinds in registry_stream_kinds().items()}
    covered, _horizon = symbol_coverage(coverage, trade_channels, by=[WINDOW])
    spans = candles.select(WINDOW, "exchange", "symbol", "timeframe", "open_time").with_row_index("_i")
    o, c = _ns("open_time"), _ns("open_time") + pl.col("timeframe").replace_strict(TIMEFRAMES, return_dtype=pl.Int64)
    spans = spans.with_columns(_o=o, _c=c)
    overlap = (
        spans.join(covered, on=[WINDOW, "exchange", "symbol"])
        .with_columns(_n=(pl.min_horizontal("_c", "end") - pl.max_horizontal("_o", "start")).clip(lower_bound=0))
        .group_by("_i")
        .agg(pl.col("_n").sum())
    )
    return (
        spans.join(overlap, on="_i", how="left")
        .select(observed_share=(pl.col("_n").fill_null(0) / (pl.col("_c") - pl.col("_o"))))
        .get_column("observed_share")
        .to_frame()
    )


def candles_suites(df: pl.DataFrame, start_ns: int | None, coverage: pl.DataFrame | None = None) -> list[Suite]:
    """Schema; no nulls; low > 0; OHLC in order, vwap in [low, high]; volumes >= 0, taker buy <= total; no
    volume exactly when no trade, and then flat; coverage in [0, 1], 1 when complete; a flat 1m candle only
    where observed; known timeframe, aligned span; one candle per (exchange, symbol, timeframe, open_time);
    close_time in (H, H + 1h]. With the hour's ``coverage``: a complete candle of 1h or less (their spans lie
    in the hour) was wholly observed on the symbol's trade channels. ``start_ns``: as ``trades_suites``' (None:
    ``coverage``'s rows stamped with their hour too)."""
    schema = schema_suite("candles", contract_part(df), CANDLES)
    if not schema_matches(contract_part(df), CANDLES):
        return [schema]
    df, start = hour_start(df, start_ns)
    o, h, lo, c = pl.col("open"), pl.col("high"), pl.col("low"), pl.col("close")
    flat = pl.col("trade_count") == 0
    length = pl.col("timeframe").replace_strict(TIMEFRAMES, default=None, return_dtype=pl.Int64)
    open_i, close_i = _ns("open_time"), _ns("close_time")
    frame = df.with_columns(
        ohlc_in_order=(lo <= o) & (lo <= c) & (o <= h) & (c <= h),
        vwap_in_range=(pl.col("vwap") >= lo) & (pl.col("vwap") <= h),
        taker_buy_within_volume=(pl.col("taker_buy_volume") <= pl.col("volume"))
        & (pl.col("taker_buy_quote_volume") <= pl.col("quote_volume")),
        no_volume_iff_no_trade=flat == (pl.col("volume") == 0),
        flat_when_no_trade=~flat | ((o == c) & (h == c) & (lo == c)),
        flat_1m_observed=~(flat & ~pl.col("complete") & (pl.col("timeframe") == "1m")),
        span_aligned=(close_i - open_i == length) & (open_i % length == 0),
        close_offset_s=offset_s("close_time", start),
    )
    rules: list[Rule] = [
        *not_null(list(CANDLES)),
        between("low", 0, None, "low > 0", strict_lo=True),
        flag("ohlc_in_order", "OHLC in order (low <= open, close <= high)"),
        flag("vwap_in_range", "vwap in [low, high]"),
        *[between(v, 0, None, f"{v} >= 0") for v in ("volume", "quote_volume", "taker_buy_volume")],
        between("trade_count", 0, None, "trade_count >= 0"),
        flag("taker_buy_within_volume", "taker buy volumes <= volumes"),
        flag("no_volume_iff_no_trade", "volume is 0 exactly when trade_count is 0"),
        flag("flat_when_no_trade", "a candle without trades is flat (open = high = low = close)"),
        between("coverage", 0, 1, "coverage in [0, 1]"),
        between("coverage", 1, 1, "a complete candle has coverage 1", where="complete==True"),
        flag("flat_1m_observed", "a flat 1m candle is complete (only an observed minute says nobody traded)"),
        in_set("timeframe", list(TIMEFRAMES), f"timeframe in {', '.join(TIMEFRAMES)}"),
        flag("span_aligned", "close_time - open_time is the timeframe, open_time aligned to it"),
        unique(["exchange", "symbol", "timeframe", "open_time"], "one candle per (exchange, symbol, timeframe, open)"),
        between("close_offset_s", 0, HOUR_S, "close_time in (H, H + 1h]", strict_lo=True),
    ]
    if coverage is not None:
        short = [tf for tf, n in TIMEFRAMES.items() if n <= HOUR_NS]
        hours = coverage if start_ns is None else stamp_window(coverage, start_ns)
        frame = pl.concat([frame, _covered_share(df, hours)], how="horizontal").with_columns(
            within_hour=pl.col("timeframe").is_in(short)
        )
        rules.append(
            between(
                "observed_share",
                1,
                1,
                "a complete candle of 1h or less was wholly observed (coverage of its trade channels)",
                where="complete==True and within_hour==True",
            )
        )
    return [schema, Suite("candles", frame.drop(WINDOW), tuple(rules), rows="candles")]
