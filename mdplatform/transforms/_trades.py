"""Raw frames of one time window -> normalized, deduplicated trades (plus what could not be used)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from mdplatform._time import MINUTE_NS, SECOND_NS
from mdplatform.exchanges import NORMALIZED_TRADES, empty_normalized_trades, empty_rejects
from mdplatform.schemas import BACKFILL_CONN_PREFIX, RAW, REJECTS, TRADES

from ._window import WINDOW as _W
from ._window import split_windows, stamp_window

__all__ = [
    "NormalizedRaw",
    "Normalizer",
    "TradesReads",
    "TradesWindow",
    "normalize_raw",
    "received_rows",
    "reject",
    "sort_trades",
    "trades_for_window",
    "window_trades",
    "window_trades_many",
]

#: (exchange id, raw rows of that exchange) -> (TRADES + TRADE_LINEAGE rows, REJECTS rows)
Normalizer = Callable[[str, pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]


@dataclass(frozen=True, slots=True)
class TradesWindow:
    """What one window of raw data yields.

    ``trades``: TRADES with exchange time in [start, end), each fill once, sorted.
    ``observed``: every trade read (any time), TRADES + TRADE_LINEAGE, each message once per channel: the evidence
    coverage is computed from (ids per channel, receive times per connection).
    ``rejects``: raw rows received in [start, end) that could not be used, with a reason (unparseable, or dated
    further ahead of their receive time than the clock-skew bound).
    ``late``: trades received in [start, end) whose own window had already stopped reading (receive minute >=
    their window end + lateness); they are not in any window's ``trades``.
    ``duplicates``: trades of the window received again on the same channel (reconnect overlap, two collectors);
    ``overlaps``: aggregated trades of the window dropped because their fills were also received one by one.
    """

    trades: pl.DataFrame
    observed: pl.DataFrame
    rejects: pl.DataFrame
    late: pl.DataFrame
    raw_rows: int
    duplicates: int
    overlaps: int


def reject(raw: pl.DataFrame, reason: str | pl.Expr) -> pl.DataFrame:
    """Raw rows as quarantine rows carrying ``reason``."""
    expr = pl.lit(reason, pl.String()) if isinstance(reason, str) else reason.cast(pl.String())
    return raw.select([pl.col(c).cast(t) for c, t in RAW.items()]).with_columns(reason=expr)


def _leading_number(trade_id: pl.Series) -> pl.Series:
    """The number a trade id starts with (its leading ASCII or Unicode digits, as Int64; null when there are none or
    it does not fit). An id of ASCII digits only (most exchanges' ids) is cast as it is; only the others go through
    the regex, which cost two thirds of an hour's sort when it ran on every id."""
    cast = trade_id.cast(pl.Int64, strict=False)
    # the cast also reads "+5" and "-5", which do not start with a digit: it answers only for ids that do
    plain = (cast.is_not_null() & trade_id.str.slice(0, 1).is_between("0", "9")) | trade_id.is_null()
    if plain.all():
        return cast
    ids = pl.DataFrame({"id": trade_id, "cast": cast, "plain": plain})
    others = pl.when(~pl.col("plain")).then(pl.col("id")).str.extract(r"^(\d+)").cast(pl.Int64, strict=False)
    return ids.select(pl.when("plain").then("cast").otherwise(others)).to_series().alias(trade_id.name)


def sort_trades(trades: pl.DataFrame, first: Sequence[str] = ()) -> pl.DataFrame:
    """Exchange order: by time, then by trade id (numerically when it starts with a number; an aggregated row's
    id "first-last" sorts by its first fill). ``first``: columns sorted on before those."""
    return (
        trades.with_columns(_tid=_leading_number(trades.get_column("trade_id")))
        # stable: polars' multi-column sort is faster so (a third on an hour of trades) and rows equal in every
        # key keep their order
        .sort([*first, "exchange", "symbol", "ts", "_tid", "trade_id", "recv_ts"], nulls_last=True, maintain_order=True)
        .drop("_tid")
    )


def _conform(trades: pl.DataFrame) -> pl.DataFrame:
    return trades.select([pl.col(c).cast(t) for c, t in NORMALIZED_TRADES.items()])


def _invalid_reason(skew_ns: int) -> pl.Expr:
    null_any = pl.any_horizontal([pl.col(c).is_null() for c in TRADES])
    ahead = pl.col("ts").cast(pl.Int64) - pl.col("recv_ts").cast(pl.Int64)
    return (
        pl.when(null_any)
        .then(pl.lit("null field in normalized trade"))
        .when(pl.col("price") <= 0)
        .then(pl.lit("price not > 0"))
        .when(pl.col("size") <= 0)
        .then(pl.lit("size not > 0"))
        .when(~pl.col("side").is_in(["buy", "sell"]))
        .then(pl.lit("side not buy/sell"))
        .when(pl.col("fills") < 1)
        .then(pl.lit("fills not >= 1"))
        # a trade cannot be received before it happened by more than the clocks can disagree: a broken clock or
        # frame, which must neither enter a candle nor make later minutes look closed
        .when(ahead > skew_ns)
        .then(
            pl.format(
                "trade time is {} s ahead of its receive time (clock-skew bound {} s)",
                (ahead / SECOND_NS).round(3),
                pl.lit(skew_ns / SECOND_NS),
            )
        )
        .otherwise(pl.lit(None, pl.String()))
    )


def _invalid_as_rejects(bad: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
    """The raw frames the bad trades came from, with the reason (naming the trade: a frame may hold several)."""
    keys = ["exchange", "conn_id", "seq"]
    reasons = bad.group_by(keys, maintain_order=True).agg(
        pl.format("trade {}: {}", pl.col("trade_id"), pl.col("_reason")).str.join("; ").alias("reason")
    )
    return raw.join(reasons, on=keys).select(list(REJECTS))


def _first_receipts(trades: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """``trades`` (sorted by receive time) with ``_first``: the first receipt of each ``keys`` value."""
    return trades.with_columns(_first=pl.struct(keys).is_first_distinct())


def _covered_by_single_fills(trades: pl.DataFrame) -> pl.Series:
    """True for rows aggregating several fills when one of those fills was also received on its own (Binance
    ``trade`` beside ``aggTrade``) in the same window: keeping both would count those fills twice."""
    multi = (pl.col("fill_first") < pl.col("fill_last")).fill_null(False)
    none = pl.repeat(False, trades.height, dtype=pl.Boolean, eager=True)
    if not trades.select(multi.any()).item():
        return none  # no aggregate of several fills (a trade stream alone): nothing to weigh
    singles = (
        trades.filter((pl.col("fill_first") == pl.col("fill_last")).fill_null(False))
        .select(_W, "exchange", "symbol", _fill=pl.col("fill_first"))
        .unique()
        .sort(_W, "exchange", "symbol", "_fill")
    )
    rows = trades.with_row_index("_row").filter(multi).sort(_W, "exchange", "symbol", "fill_first")
    if rows.height == 0 or singles.height == 0:
        return none
    hit = rows.join_asof(
        singles,
        left_on="fill_first",
        right_on="_fill",
        by=[_W, "exchange", "symbol"],
        strategy="forward",
        check_sortedness=False,  # both sides are sorted by (window, exchange, symbol, fill) above
    ).filter(pl.col("_fill") <= pl.col("fill_last"))
    return pl.int_range(trades.height, eager=True).is_in(hit.get_column("_row").cast(pl.Int64)).alias("_covered")


@dataclass(frozen=True, slots=True)
class NormalizedRaw:
    """Raw rows normalized once, to be windowed later (a range of hours reads each raw file once).

    ``trades``: NORMALIZED_TRADES of the rows, the invalid ones (``_invalid_reason``) left out; ``rejects``:
    REJECTS of the rows that could not be used; ``minutes``: raw rows per receive minute (``minute`` Int64 ns,
    ``rows``)."""

    trades: pl.DataFrame
    rejects: pl.DataFrame
    minutes: pl.DataFrame


def normalize_raw(raw: pl.DataFrame, *, normalize: Normalizer, skew_ns: int) -> NormalizedRaw:
    """Every row of ``raw`` (RAW schema, any exchange/channel) normalized: row by row, so the result of a
    concatenation of raw frames is the concatenation of their results."""
    raw = raw.select([pl.col(c).cast(t) for c, t in RAW.items()])
    trade_parts: list[pl.DataFrame] = []
    reject_parts: list[pl.DataFrame] = []
    for exchange_id in sorted(raw.get_column("exchange").unique().to_list()):
        got_trades, got_rejects = normalize(exchange_id, raw.filter(pl.col("exchange") == exchange_id))
        trade_parts.append(_conform(got_trades))
        reject_parts.append(got_rejects.select([pl.col(c).cast(t) for c, t in REJECTS.items()]))
    trades = pl.concat(trade_parts) if trade_parts else empty_normalized_trades()
    rejects = pl.concat(reject_parts) if reject_parts else empty_rejects()

    checked = trades.with_columns(_reason=_invalid_reason(skew_ns))
    bad = checked.filter(pl.col("_reason").is_not_null())
    if bad.height:
        rejects = pl.concat([rejects, _invalid_as_rejects(bad, raw)])
        trades = checked.filter(pl.col("_reason").is_null()).drop("_reason")
    recv_i = pl.col("recv_ts").cast(pl.Int64)
    minutes = raw.group_by(minute=recv_i - recv_i % MINUTE_NS).agg(rows=pl.len())
    return NormalizedRaw(trades, rejects, minutes)


def _received_in(df: pl.DataFrame, lo: int, hi: int) -> pl.DataFrame:
    recv_i = pl.col("recv_ts").cast(pl.Int64)
    recv_minute = recv_i - recv_i % MINUTE_NS
    return df.filter((recv_minute >= lo) & (recv_minute < hi))


def trades_for_window(
    raw: pl.DataFrame,
    start_ns: int,
    end_ns: int,
    lateness_ns: int,
    *,
    normalize: Normalizer,
    skew_ns: int,
    backfill: pl.DataFrame | None = None,
) -> TradesWindow:
    """Trades of the exchange-time window [start_ns, end_ns) from raw rows (RAW schema, any exchange/channel).

    ``raw`` is what the window read: receive minutes [start - lateness, end + lateness) (the head as well as the
    tail, so that id chains reach across the window's edges). Windows are aligned to multiples of their length
    (hours), which is how a trade's own window is found. Rows outside the read range are ignored.
    ``skew_ns``: a trade dated further ahead of its receive time than this is quarantined.
    ``backfill``: REST history records for exchange-time minutes [start - lateness, end + lateness) (RAW plus
    ``minute``, from ``read_backfill``); received whenever the backfill ran, they are never late, lose to a live
    receipt of the same trade, and their rejects belong to the window holding their minute.
    """
    read_start = start_ns - lateness_ns
    raw = _received_in(raw, read_start, end_ns + lateness_ns)
    return window_trades(
        [normalize_raw(raw, normalize=normalize, skew_ns=skew_ns)],
        start_ns,
        end_ns,
        lateness_ns,
        normalize=normalize,
        skew_ns=skew_ns,
        backfill=backfill,
    )


def window_trades(
    parts: Sequence[NormalizedRaw],
    start_ns: int,
    end_ns: int,
    lateness_ns: int,
    *,
    normalize: Normalizer,
    skew_ns: int,
    backfill: pl.DataFrame | None = None,
) -> TradesWindow:
    """``trades_for_window`` over raw rows already normalized (``normalize_raw``), in receive order: ``parts`` may
    hold more than the window's read range (rows received outside it are ignored), so consecutive windows share
    the normalized receive hours they overlap on. ``normalize``/``skew_ns`` apply to ``backfill`` only."""
    got = window_trades_many(
        [TradesReads(start_ns, parts, backfill)], end_ns - start_ns, lateness_ns, normalize=normalize, skew_ns=skew_ns
    )
    return got[start_ns]


@dataclass(frozen=True, slots=True)
class TradesReads:
    """What one window [start, start + length) read (``window_trades``' ``parts`` and ``backfill``)."""

    start: int
    parts: Sequence[NormalizedRaw]
    backfill: pl.DataFrame | None = None


def received_rows(parts: Sequence[NormalizedRaw], lo: int, hi: int) -> int:
    """Raw rows of ``parts`` received in minutes [lo, hi)."""
    minutes = [p.minutes.filter((pl.col("minute") >= lo) & (pl.col("minute") < hi)) for p in parts]
    return sum(int(m["rows"].sum()) for m in minutes)


def window_trades_many(
    windows: Sequence[TradesReads], length: int, lateness_ns: int, *, normalize: Normalizer, skew_ns: int
) -> dict[int, TradesWindow]:
    """``window_trades`` of several windows of ``length`` at once: start -> its window. Each window's rows are
    stamped with its start (``_w``: a row two windows read is in both, once for each) and every sort, grouping
    and join is keyed by it, so each window gets exactly what it gets alone, from a few dozen polars calls for all
    of them instead of for each (a range of quiet hours spent most of an hour's windowing on the calls)."""
    if length <= 0:
        raise ValueError("empty window")
    recv_i = pl.col("recv_ts").cast(pl.Int64)
    recv_minute = recv_i - recv_i % MINUTE_NS
    trade_parts: list[pl.DataFrame] = []
    reject_parts: list[pl.DataFrame] = []
    # the backfill rows whose rejects each window reports: those of its own minutes
    owned_parts: list[pl.DataFrame] = []
    raw_rows: dict[int, int] = {}
    for window in windows:
        start = window.start
        read_start, read_end = start - lateness_ns, start + length + lateness_ns
        trade_parts += [stamp_window(_received_in(p.trades, read_start, read_end), start) for p in window.parts]
        reject_parts += [stamp_window(_received_in(p.rejects, read_start, read_end), start) for p in window.parts]
        raw_rows[start] = received_rows(window.parts, read_start, read_end)
        backfill = window.backfill
        if backfill is not None and backfill.height:
            backfill = backfill.filter((pl.col("minute") >= read_start) & (pl.col("minute") < read_end))
            own_minutes = backfill.filter((pl.col("minute") >= start) & (pl.col("minute") < start + length))
            owned_parts.append(stamp_window(own_minutes.select("exchange", "conn_id", "seq"), start))
            fetched = normalize_raw(backfill, normalize=normalize, skew_ns=skew_ns)
            trade_parts.append(stamp_window(fetched.trades, start))
            reject_parts.append(stamp_window(fetched.rejects, start))
            raw_rows[start] += backfill.height
    trades = pl.concat(trade_parts) if trade_parts else stamp_window(empty_normalized_trades(), 0)
    rejects = pl.concat(reject_parts) if reject_parts else stamp_window(empty_rejects(), 0)
    owned_backfill = (
        pl.concat(owned_parts)
        if owned_parts
        else pl.DataFrame(schema={"exchange": pl.String, "conn_id": pl.String, "seq": pl.Int64, _W: pl.Int64})
    )

    ts_i = pl.col("ts").cast(pl.Int64)
    own_start = ts_i - ts_i % length
    start_c, end_c = pl.col(_W), pl.col(_W) + length
    owned = (recv_i >= start_c) & (recv_i < end_c)
    in_window = (ts_i >= start_c) & (ts_i < end_c)

    # the first receipt wins: a message seen again on its channel (reconnect overlap, two collectors) is a duplicate
    trades = _first_receipts(
        trades.sort([_W, "recv_ts"], maintain_order=True), [_W, "exchange", "symbol", "channel", "trade_id"]
    )
    duplicates = _counts(trades.filter(~pl.col("_first") & in_window))
    observed = trades.filter(pl.col("_first")).drop("_first")

    # one fill once across channels: a single fill under the same id on two channels (trade and a one-fill
    # aggTrade) is kept once; an aggregate whose fills also came one by one gives way to them
    unique = _first_receipts(observed, [_W, "exchange", "symbol", "trade_id"])
    unique = unique.with_columns(_covered=_covered_by_single_fills(unique))
    overlaps = _counts(unique.filter((~pl.col("_first") | pl.col("_covered")) & in_window))
    trades = unique.filter(pl.col("_first") & ~pl.col("_covered")).drop("_first", "_covered")

    live = ~pl.col("conn_id").str.starts_with(BACKFILL_CONN_PREFIX)
    late = trades.filter(owned & live & (recv_minute >= own_start + length + lateness_ns))
    kept = trades.filter(in_window)
    rejects = pl.concat(
        [
            rejects.filter(live & owned),
            rejects.filter(~live).join(owned_backfill.unique(), on=[_W, "exchange", "conn_id", "seq"], how="semi"),
        ]
    ).sort([_W, "recv_ts", "exchange", "conn_id", "seq"], maintain_order=True)
    starts = [w.start for w in windows]
    kept_by, late_by = (split_windows(sort_trades(df.select(_W, *TRADES), first=[_W]), starts) for df in (kept, late))
    observed_by, rejects_by = split_windows(observed, starts), split_windows(rejects, starts)
    return {
        w.start: TradesWindow(
            trades=kept_by[w.start],
            observed=observed_by[w.start],
            rejects=rejects_by[w.start],
            late=late_by[w.start],
            raw_rows=raw_rows[w.start],
            duplicates=duplicates.get(w.start, 0),
            overlaps=overlaps.get(w.start, 0),
        )
        for w in windows
    }


def _counts(df: pl.DataFrame) -> dict[int, int]:
    """window start -> rows of ``df``."""
    return {int(w): int(n) for w, n in df.group_by(_W).len().iter_rows()}
