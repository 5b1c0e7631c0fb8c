"""The exchange-independent half of trade normalization: validation, rejects, symbols, output layout.

Each exchange module only turns its payloads into a few parsed columns (nulls where a field is missing or
unparseable); ``split_trades`` then decides, per row, whether it is a trade or a reject. Rejects keep the raw
row (``mdplatform.schemas.RAW`` columns) plus a ``reason``, so nothing that arrived is silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from ..schemas import RAW, REJECTS, TRADES

__all__ = [
    "PARSED_TRADE_COLUMNS",
    "decode_json",
    "empty_rejects",
    "empty_trades",
    "ms_to_ts",
    "raw_rows",
    "split_trades",
]

#: the columns an exchange module adds to raw rows before calling ``split_trades``
PARSED_TRADE_COLUMNS = ("_symbol", "_ts", "_trade_id", "_price", "_size", "_side")


def empty_trades() -> pl.DataFrame:
    return pl.DataFrame(schema=TRADES)


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTS)


def raw_rows(raw: pl.DataFrame, exchange: str, channels: Sequence[str]) -> pl.DataFrame:
    """The raw rows of one exchange's trade channels, in the RAW layout."""
    missing = [c for c in RAW if c not in raw.columns]
    if missing:
        raise ValueError(f"raw frame lacks columns {missing}; expected mdplatform.schemas.RAW")
    return raw.filter(pl.col("exchange").eq(exchange) & pl.col("channel").is_in(list(channels))).select(
        [pl.col(name).cast(dtype) for name, dtype in RAW.items()]
    )


def decode_json(strings: pl.Series, dtype: pl.DataType) -> tuple[pl.Series, pl.Series]:
    """``str.json_decode`` that survives bad rows: (decoded values, True where the row decoded).

    polars fails the whole column when one value does not fit ``dtype``; the column is decoded in one call
    when it is clean (the normal case) and bisected only around the rows that do not fit.
    """
    try:
        decoded = strings.str.json_decode(dtype)
        return decoded, strings.is_not_null()
    except pl.exceptions.PolarsError:
        if len(strings) <= 1:
            return pl.Series(strings.name, [None] * len(strings), dtype=dtype), pl.Series(
                [False] * len(strings), dtype=pl.Boolean
            )
    mid = len(strings) // 2
    left, left_ok = decode_json(strings.slice(0, mid), dtype)
    right, right_ok = decode_json(strings.slice(mid), dtype)
    return left.append(right), left_ok.append(right_ok)


def _bad_number(name: str) -> pl.Expr:
    col = pl.col(name)
    return col.is_null() | col.is_nan() | col.is_infinite() | (col <= 0)


def split_trades(
    rows: pl.DataFrame,
    *,
    exchange: str,
    normalize_symbol: Callable[[str], str],
    reason: pl.Expr | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(trades in ``mdplatform.schemas.TRADES``, rejects in ``mdplatform.schemas.REJECTS``).

    ``rows``: RAW columns plus ``PARSED_TRADE_COLUMNS``: ``_symbol`` (exchange's id), ``_ts`` (Datetime ns
    UTC), ``_trade_id`` (String), ``_price``/``_size`` (Float64), ``_side`` ("buy"/"sell"); null where a
    field could not be parsed.
    ``reason``: an optional String expression, non-null for rows the exchange already knows are bad (for
    example a payload that is not JSON); it wins over the generic field checks.
    """
    checks: list[tuple[pl.Expr, pl.Expr]] = []
    if reason is not None:
        checks.append((reason.is_not_null(), reason))
    checks += [
        (pl.col("_symbol").is_null() | pl.col("_symbol").eq(""), pl.lit("missing symbol")),
        (pl.col("_ts").is_null(), pl.lit("missing or invalid trade time")),
        (pl.col("_trade_id").is_null() | pl.col("_trade_id").eq(""), pl.lit("missing trade id")),
        (_bad_number("_price"), pl.lit("missing or invalid price")),
        (_bad_number("_size"), pl.lit("missing or invalid size")),
        (pl.col("_side").is_null() | pl.col("_side").is_in(["buy", "sell"]).not_(), pl.lit("invalid side")),
    ]
    # first failing check wins: build when/then from the last check backwards
    reason_expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for cond, value in reversed(checks):
        reason_expr = pl.when(cond).then(value).otherwise(reason_expr)
    rows = rows.with_columns(_reason=reason_expr)

    good = rows.filter(pl.col("_reason").is_null())
    rejects = rows.filter(pl.col("_reason").is_not_null()).select(
        [pl.col(name) for name in RAW] + [pl.col("_reason").alias("reason")]
    )
    # symbols repeat: normalize each distinct id once in Python, then map the column
    ids = good.get_column("_symbol").unique().to_list()
    mapping = {s: normalize_symbol(s) for s in ids}
    trades = good.select(
        pl.lit(exchange).alias("exchange"),
        pl.col("_symbol").replace_strict(mapping, return_dtype=pl.String).alias("symbol"),
        pl.col("_ts").alias("ts"),
        pl.col("recv_ts"),
        pl.col("_trade_id").alias("trade_id"),
        pl.col("_price").alias("price"),
        pl.col("_size").alias("size"),
        pl.col("_side").alias("side"),
    ).cast(dict(TRADES))  # type: ignore[arg-type]
    return trades, rejects.cast(dict(REJECTS))  # type: ignore[arg-type]


def ms_to_ts(expr: pl.Expr) -> pl.Expr:
    """Epoch milliseconds (string or int) -> Datetime ns UTC; null when not an integer."""
    return (expr.cast(pl.Int64, strict=False) * 1_000_000).cast(pl.Datetime("ns", "UTC"))
