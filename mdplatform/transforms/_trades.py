"""Raw frames of one time window -> normalized, deduplicated trades (plus what could not be used)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from mdplatform._time import MINUTE_NS
from mdplatform.exchanges import empty_rejects, empty_trades
from mdplatform.schemas import RAW, REJECTS, TRADES

__all__ = [
    "Normalizer",
    "TradesWindow",
    "reject",
    "sort_trades",
    "trades_for_window",
]

#: (exchange id, raw rows of that exchange on its trade channels) -> (TRADES rows, REJECTS rows)
Normalizer = Callable[[str, pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]


@dataclass(frozen=True, slots=True)
class TradesWindow:
    """What one window of raw data yields.

    ``trades``: exchange time in [start, end), deduplicated by (exchange, symbol, trade_id), sorted.
    ``rejects``: raw rows received in [start, end) that could not be parsed, with a reason.
    ``late``: trades received in [start, end) whose own window had already stopped reading
    (receive minute >= their window end + lateness); they are not in any window's ``trades``.
    ``early``: trades received in [start, end) more than ``skew`` before their own window opened
    (an exchange clock far ahead of ours); likewise unwritten.
    ``trade_end``: exchange -> the newest trade time in everything read (any hour): trades arrive in exchange
    order, so every trade before it has been seen; candles use it to know which minutes are closed.
    """

    trades: pl.DataFrame
    rejects: pl.DataFrame
    late: pl.DataFrame
    early: pl.DataFrame
    raw_rows: int
    duplicates: int
    trade_end: dict[str, int]


def reject(raw: pl.DataFrame, reason: str | pl.Expr) -> pl.DataFrame:
    """Raw rows as quarantine rows carrying ``reason``."""
    expr = pl.lit(reason, pl.String()) if isinstance(reason, str) else reason.cast(pl.String())
    return raw.select([pl.col(c).cast(t) for c, t in RAW.items()]).with_columns(reason=expr)


def sort_trades(trades: pl.DataFrame) -> pl.DataFrame:
    """Exchange order: by time, then by trade id (numerically when numbers; several trades share a ms)."""
    return (
        trades.with_columns(_tid=pl.col("trade_id").cast(pl.Int64, strict=False))
        .sort(["exchange", "symbol", "ts", "_tid", "trade_id", "recv_ts"], nulls_last=True)
        .drop("_tid")
    )


def _conform(trades: pl.DataFrame) -> pl.DataFrame:
    return trades.select([pl.col(c).cast(t) for c, t in TRADES.items()])


def _invalid_reason() -> pl.Expr:
    null_any = pl.any_horizontal([pl.col(c).is_null() for c in TRADES])
    return (
        pl.when(null_any)
        .then(pl.lit("null field in normalized trade"))
        .when(~pl.col("price").is_finite() | (pl.col("price") <= 0))
        .then(pl.lit("price not > 0"))
        .when(~pl.col("size").is_finite() | (pl.col("size") <= 0))
        .then(pl.lit("size not > 0"))
        .when(~pl.col("side").is_in(["buy", "sell"]))
        .then(pl.lit("side not buy/sell"))
        .otherwise(pl.lit(None, pl.String()))
    )


def _invalid_as_rejects(bad: pl.DataFrame) -> pl.DataFrame:
    # the raw frame is not known here any more, so the normalized row itself is kept as the payload
    return bad.select(
        recv_ts=pl.col("recv_ts").fill_null(pl.lit(0).cast(RAW["recv_ts"])),
        exchange=pl.col("exchange").fill_null(""),
        channel=pl.lit("", pl.String()),
        symbol=pl.col("symbol").fill_null(""),
        conn_id=pl.lit("", pl.String()),
        seq=pl.lit(-1, pl.Int64()),
        payload=pl.struct([c for c in TRADES]).struct.json_encode(),
        reason=pl.col("_reason"),
    )


def trades_for_window(
    raw: pl.DataFrame,
    start_ns: int,
    end_ns: int,
    lateness_ns: int,
    *,
    normalize: Normalizer,
    skew_ns: int = 0,
) -> TradesWindow:
    """Trades of the exchange-time window [start_ns, end_ns) from raw rows (RAW schema, any exchange/channel).

    ``raw`` is what the window read: receive minutes [start - skew, end + lateness). Windows are assumed
    aligned to multiples of their length (hours), which is how a trade's own window is found. Rows
    outside the read range are ignored, so passing more raw than that is harmless.
    """
    length = end_ns - start_ns
    if length <= 0:
        raise ValueError("empty window")
    read_start, read_end = start_ns - skew_ns, end_ns + lateness_ns

    recv_i = pl.col("recv_ts").cast(pl.Int64)
    recv_minute = recv_i - recv_i % MINUTE_NS
    raw = raw.select([pl.col(c).cast(t) for c, t in RAW.items()]).filter(
        (recv_minute >= read_start) & (recv_minute < read_end)
    )

    trade_parts: list[pl.DataFrame] = []
    reject_parts: list[pl.DataFrame] = []
    for exchange_id in sorted(raw.get_column("exchange").unique().to_list()):
        got_trades, got_rejects = normalize(exchange_id, raw.filter(pl.col("exchange") == exchange_id))
        trade_parts.append(_conform(got_trades))
        reject_parts.append(got_rejects.select([pl.col(c).cast(t) for c, t in REJECTS.items()]))
    trades = pl.concat(trade_parts) if trade_parts else empty_trades()
    rejects = pl.concat(reject_parts) if reject_parts else empty_rejects()

    checked = trades.with_columns(_reason=_invalid_reason())
    bad = checked.filter(pl.col("_reason").is_not_null())
    if bad.height:
        rejects = pl.concat([rejects, _invalid_as_rejects(bad)])
        trades = checked.filter(pl.col("_reason").is_null()).drop("_reason")

    # the first receipt wins: a trade seen again (reconnect overlap, two collectors) is a duplicate
    ts_i = pl.col("ts").cast(pl.Int64)
    own_start = ts_i - ts_i % length
    owned = (recv_i >= start_ns) & (recv_i < end_ns)
    in_window = (ts_i >= start_ns) & (ts_i < end_ns)

    trades = trades.sort("recv_ts", maintain_order=True).with_columns(
        _first=pl.struct("exchange", "symbol", "trade_id").is_first_distinct()
    )
    duplicates = trades.filter(~pl.col("_first") & in_window).height
    trades = trades.filter(pl.col("_first")).drop("_first")

    ends = trades.group_by("exchange").agg(pl.col("ts").max().cast(pl.Int64))
    trade_end = {str(ex): int(ts) for ex, ts in ends.iter_rows()}
    late = trades.filter(owned & (recv_minute >= own_start + length + lateness_ns))
    early = trades.filter(owned & (recv_minute < own_start - skew_ns))
    kept = trades.filter(in_window)
    rejects = rejects.filter(owned).sort(["recv_ts", "exchange", "conn_id", "seq"])
    return TradesWindow(
        trades=sort_trades(kept),
        rejects=rejects,
        late=sort_trades(late),
        early=sort_trades(early),
        raw_rows=raw.height,
        duplicates=duplicates,
        trade_end=trade_end,
    )
