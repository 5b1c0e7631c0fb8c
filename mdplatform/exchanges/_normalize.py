"""The exchange-independent half of trade normalization: validation, rejects, symbols, output layout.

Each exchange module only turns its payloads into a few parsed columns (nulls where a field is missing or
unparseable); ``split_trades`` then decides, per row, whether it is a trade or a reject. Rejects keep the raw
row (``mdplatform.schemas.RAW`` columns) plus a ``reason``, so nothing that arrived is silently dropped.

Prices and sizes stay the exchange's strings until ``split_trades`` has proven each one fits
``mdplatform.schemas.PRICE`` exactly (``decimal_reason``): polars' string -> Decimal cast silently rounds a
value with more decimal places than the scale, and a Float64 detour is inexact, so neither is ever relied on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from ..schemas import PRICE, PRICE_SCALE, RAW, REJECTS, TRADE_LINEAGE, TRADES

__all__ = [
    "NORMALIZED_TRADES",
    "PARSED_TRADE_COLUMNS",
    "decimal_reason",
    "decode_json",
    "empty_normalized_trades",
    "empty_rejects",
    "explode_records",
    "live_and_rest",
    "ms_to_ts",
    "raw_rows",
    "single_fills",
    "split_trades",
    "to_price",
]

#: what ``normalize_trades_with_rejects`` returns: the stored trade columns, then the lineage the transforms use
NORMALIZED_TRADES: dict[str, pl.DataType] = {**TRADES, **TRADE_LINEAGE}

#: the columns an exchange module adds to raw rows before calling ``split_trades``
PARSED_TRADE_COLUMNS = (
    "_symbol",
    "_ts",
    "_trade_id",
    "_price",
    "_size",
    "_side",
    "_fills",
    "_seq_id",
    "_fill_first",
    "_fill_last",
)

#: where each TRADE_LINEAGE column comes from: the raw row itself or a parsed column
_LINEAGE_SOURCES = {
    "channel": "channel",
    "conn_id": "conn_id",
    "seq": "seq",
    "seq_id": "_seq_id",
    "fill_first": "_fill_first",
    "fill_last": "_fill_last",
}

# PRICE holds 26 integer digits and 12 decimals
_PRECISION = PRICE.precision or 38
_INT_DIGITS = _PRECISION - PRICE_SCALE
_PLAIN = r"^[0-9]+(?:\.[0-9]+)?$"
_NEGATIVE = r"^-[0-9]+(?:\.[0-9]+)?$"
#: a non-zero digit after the PRICE_SCALE-th decimal (trailing zeros are harmless)
_TOO_PRECISE = rf"\.[0-9]{{{PRICE_SCALE}}}[0-9]*[1-9]"
#: more integer digits than PRICE holds, leading zeros aside
_TOO_LARGE = rf"^0*[1-9][0-9]{{{_INT_DIGITS}}}"
_ZERO = r"^0+(?:\.0+)?$"
#: what ``decimal_reason`` accepts, zero aside: digits, at most 26 after leading zeros, then at most 12 decimals
#: (any further ones zeros)
_EXACT = rf"^0*[0-9]{{1,{_INT_DIGITS}}}(?:\.[0-9]{{1,{PRICE_SCALE}}}0*)?$"
#: how much of an offending value a reason quotes (the raw payload is kept whole anyway)
_QUOTE_CHARS = 64


def empty_normalized_trades() -> pl.DataFrame:
    """No trades, in the layout ``normalize_trades_with_rejects`` returns (``NORMALIZED_TRADES``)."""
    return pl.DataFrame(schema=NORMALIZED_TRADES)


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


#: a normalizer of some rows: (trades, rejects)
Normalizer = Callable[[pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]


def live_and_rest(
    rows: pl.DataFrame, rest_prefix: str, live: Normalizer, rest: Normalizer
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(trades, rejects) of a trade channel's raw rows that hold both live frames and REST history replies (what the
    exchange's ``TradeHistory.encode`` wrote): the payloads starting with ``rest_prefix`` go to ``rest``, the others
    to ``live``."""
    if rows.height == 0:
        return empty_normalized_trades(), empty_rejects()
    is_rest = rows.get_column("payload").str.starts_with(rest_prefix)
    if is_rest.any():
        live_trades, live_rejects = live(rows.filter(is_rest.not_()))
        rest_trades, rest_rejects = rest(rows.filter(is_rest))
        return pl.concat([live_trades, rest_trades]), pl.concat([live_rejects, rest_rejects])
    return live(rows)


def explode_records(rows: pl.DataFrame, ok: pl.Series, records: pl.Series, **extra: pl.Series) -> pl.DataFrame:
    """One row per record of each row's decoded list ``records`` (column ``_items``); a row whose list is empty or
    null stays, its ``_items`` null, so that it becomes a reject. ``_decoded``: the decode's success (``ok``); ``_n``:
    the list's length (0 or null: a frame or reply without trades); ``extra``: more columns, set before exploding."""
    return rows.with_columns(_decoded=ok, **extra, _items=records, _n=records.list.len()).explode(
        "_items", empty_as_null=True, keep_nulls=True
    )


def single_fills(seq: pl.Expr | None = None) -> dict[str, pl.Expr]:
    """The parsed columns of rows that are one fill each: ``_fills`` 1, and ``seq`` (the trade's integer id where the
    exchange numbers trades contiguously per symbol) as ``_seq_id`` and both ends of the fill range; None: the ids
    are not such a chain (null columns)."""
    seq = pl.lit(None, dtype=pl.Int64) if seq is None else seq
    return {"_fills": pl.lit(1, dtype=pl.Int64), "_seq_id": seq, "_fill_first": seq, "_fill_last": seq}


def decode_json(strings: pl.Series, dtype: pl.DataType) -> tuple[pl.Series, pl.Series]:
    """``str.json_decode`` that survives bad rows: (decoded values, True where the row decoded).

    polars fails the whole column when one value does not fit ``dtype``; the column is decoded in one call
    when it is clean (the normal case) and bisected only around the rows that do not fit. The decode runs as an
    expression on a frame, which takes the column's chunks (a raw read's row groups) in parallel: about twice as
    fast as ``Series.str.json_decode`` on two cores.
    """
    try:
        decoded = strings.to_frame("_json").select(pl.col("_json").str.json_decode(dtype)).to_series()
        return decoded.alias(strings.name), strings.is_not_null()
    except pl.exceptions.PolarsError:
        if len(strings) <= 1:
            return pl.Series(strings.name, [None] * len(strings), dtype=dtype), pl.Series(
                [False] * len(strings), dtype=pl.Boolean
            )
    mid = len(strings) // 2
    left, left_ok = decode_json(strings.slice(0, mid), dtype)
    right, right_ok = decode_json(strings.slice(mid), dtype)
    return left.append(right), left_ok.append(right_ok)


def decimal_reason(value: pl.Expr, label: str) -> pl.Expr:
    """Why a decimal string cannot be held exactly as a positive ``PRICE``; null when it can.

    Accepted: ASCII digits with an optional fraction (``"61837.63000000"``, ``"0.10000000000000000000"``: trailing
    zeros do not count as decimal places), more than zero, at most 12 significant decimals and 26 integer digits.
    Everything else is named: missing, negative, not a plain decimal number (exponents, signs, "NaN", spaces,
    "1.", ".5"), too many decimal places (the cast would round them away), too large, zero.
    """
    quoted = value.str.slice(0, _QUOTE_CHARS)
    return (
        pl.when(value.is_null())
        .then(pl.lit(f"missing {label}"))
        .when(value.str.contains(_NEGATIVE))
        .then(pl.format(f"{label} is not positive: {{}}", quoted))
        .when(value.str.contains(_PLAIN).not_())
        .then(pl.format(f"{label} is not a plain decimal number: {{}}", quoted))
        .when(value.str.contains(_TOO_PRECISE))
        .then(pl.format(f"{label} has more than {PRICE_SCALE} decimal places: {{}}", quoted))
        .when(value.str.contains(_TOO_LARGE))
        .then(pl.format(f"{label} is too large for Decimal({_PRECISION}, {PRICE_SCALE}): {{}}", quoted))
        .when(value.str.contains(_ZERO))
        .then(pl.format(f"{label} is not positive: {{}}", quoted))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


def _exact(value: pl.Expr) -> pl.Expr:
    """True where ``decimal_reason`` is null: two regexes instead of its six (the reasons are worked out only for
    the rows that fail it; tests/exchanges check the two agree)."""
    return (value.str.contains(_EXACT) & value.str.contains(_ZERO).not_()).fill_null(False)


def _with_decimal_reasons(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with ``_price_reason``/``_size_reason``: ``decimal_reason`` of ``_price``/``_size``."""
    exact = rows.select(_exact(pl.col("_price")) & _exact(pl.col("_size"))).to_series()
    found = {name: pl.Series(name, [None] * rows.height, dtype=pl.String) for name in ("_price_reason", "_size_reason")}
    if not exact.all():
        where = exact.not_().arg_true()
        odd = rows[where].select(
            _price_reason=decimal_reason(pl.col("_price"), "price"),
            _size_reason=decimal_reason(pl.col("_size"), "size"),
        )
        for name, series in found.items():
            series.scatter(where, odd.get_column(name))
    return rows.with_columns(*found.values())


def to_price(value: pl.Expr) -> pl.Expr:
    """A decimal string -> ``PRICE``, exact for every value ``decimal_reason`` accepts (null for others)."""
    return value.cast(PRICE, strict=False)


def split_trades(
    rows: pl.DataFrame,
    *,
    exchange: str,
    normalize_symbol: Callable[[str], str],
    reason: pl.Expr | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(trades in ``NORMALIZED_TRADES``, rejects in ``mdplatform.schemas.REJECTS``).

    ``rows``: RAW columns plus ``PARSED_TRADE_COLUMNS``: ``_symbol`` (exchange's id), ``_ts`` (Datetime ns
    UTC), ``_trade_id`` (String), ``_price``/``_size`` (String: the exchange's decimal text, validated here with
    ``decimal_reason``), ``_side`` ("buy"/"sell"), ``_fills`` (Int64, >= 1), ``_seq_id``/``_fill_first``/
    ``_fill_last`` (Int64, null when the exchange has none; a fill range must hold exactly ``_fills`` ids);
    null where a field could not be parsed.
    ``reason``: an optional String expression, non-null for rows the exchange already knows are bad (for
    example a payload that is not JSON); it wins over the generic field checks.
    """
    missing = [c for c in PARSED_TRADE_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"split_trades: rows lack parsed columns {missing}")
    unknown = [c for c in TRADE_LINEAGE if c not in _LINEAGE_SOURCES]
    if unknown:
        raise NotImplementedError(f"split_trades: no source for TRADE_LINEAGE columns {unknown}")
    for name in ("_price", "_size"):
        if rows.schema[name] != pl.String:
            raise TypeError(f"split_trades: {name} must be the exchange's decimal string, got {rows.schema[name]}")
    rows = _with_decimal_reasons(rows)
    first, last, fills = pl.col("_fill_first"), pl.col("_fill_last"), pl.col("_fills")
    checks: list[tuple[pl.Expr, pl.Expr]] = []
    if reason is not None:
        checks.append((reason.is_not_null(), reason))
    checks += [
        (pl.col("_symbol").is_null() | pl.col("_symbol").eq(""), pl.lit("missing symbol")),
        (pl.col("_ts").is_null(), pl.lit("missing or invalid trade time")),
        (pl.col("_trade_id").is_null() | pl.col("_trade_id").eq(""), pl.lit("missing trade id")),
        (pl.col("_price_reason").is_not_null(), pl.col("_price_reason")),
        (pl.col("_size_reason").is_not_null(), pl.col("_size_reason")),
        (pl.col("_side").is_null() | pl.col("_side").is_in(["buy", "sell"]).not_(), pl.lit("invalid side")),
        (fills.is_null() | (fills < 1), pl.lit("missing or invalid fills count")),
        (
            first.is_null().xor(last.is_null()) | (last - first + 1 != fills).fill_null(False),
            pl.format("fill id range {}..{} does not hold {} fills", first, last, fills),
        ),
    ]
    # first failing check wins: build when/then from the last check backwards
    reason_expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for cond, value in reversed(checks):
        reason_expr = pl.when(cond).then(value).otherwise(reason_expr)
    rows = rows.with_columns(_reason=reason_expr)

    rejects = rows.filter(pl.col("_reason").is_not_null()).select(
        [pl.col(name) for name in RAW] + [pl.col("_reason").alias("reason")]
    )
    # lazily, so the filter copies only the columns the trades keep (not the payloads)
    good = rows.lazy().filter(pl.col("_reason").is_null())
    # symbols repeat: normalize each distinct id once in Python, then map the column
    ids = good.select(pl.col("_symbol").unique()).collect().to_series().to_list()
    mapping = {s: normalize_symbol(s) for s in ids}
    trades = good.select(
        pl.lit(exchange).alias("exchange"),
        pl.col("_symbol").replace_strict(mapping, return_dtype=pl.String).alias("symbol"),
        pl.col("_ts").alias("ts"),
        pl.col("recv_ts"),
        pl.col("_trade_id").alias("trade_id"),
        to_price(pl.col("_price")).alias("price"),
        to_price(pl.col("_size")).alias("size"),
        pl.col("_side").alias("side"),
        pl.col("_fills").alias("fills"),
        *(pl.col(_LINEAGE_SOURCES[name]).alias(name) for name in TRADE_LINEAGE),
    ).cast(dict(NORMALIZED_TRADES))  # type: ignore[arg-type]
    return trades.collect(), rejects.cast(dict(REJECTS))  # type: ignore[arg-type]


def ms_to_ts(expr: pl.Expr) -> pl.Expr:
    """Epoch milliseconds (string or int) -> Datetime ns UTC; null when not an integer."""
    return (expr.cast(pl.Int64, strict=False) * 1_000_000).cast(pl.Datetime("ns", "UTC"))
