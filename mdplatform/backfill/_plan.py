"""Which trade gaps a range of the lake has, and what the exchange's REST history needs to fill each one."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from .._time import HOUR_NS, floor_ns
from ..exchanges import SUBSCRIBED, get_exchange
from ..lake import lake_root, raw_minute_bounds, read_events
from ..schemas import COVERAGE, TRADES
from ..transforms import COVERED, registry_trade_channels, trade_gaps
from ..warehouse import read_partitions

__all__ = ["Gap", "find_gaps"]


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch [start_ns, end_ns) of exchange time with no trade channel of the symbol covered.

    ``symbol``: the platform's BASE-QUOTE form; ``exchange_symbol``: the exchange's own id the REST history
    wants; ``channel``: the trade channel to heal (the one that covered most of the range); ``after_id``: the
    last fill id received before the gap, where ids are numbers (where the exchange pages by id, the fetch
    starts right after it); ``closed``: the stream was covered again after it (a gap still open at the end of
    what coverage knows may grow); ``neighbours``: the prices of the last trade stored before the gap and the first
    after it (what the fetched prices are checked against)."""

    exchange: str
    symbol: str
    exchange_symbol: str
    channel: str
    start_ns: int
    end_ns: int
    after_id: int | None
    closed: bool = True
    neighbours: tuple[Decimal, ...] = ()


def find_gaps(
    root: str | None,
    start_ns: int,
    end_ns: int,
    *,
    exchanges: set[str] | None = None,
    symbols: set[str] | None = None,
) -> list[Gap]:
    """The trade gaps of [start_ns, end_ns) according to the lake's ``coverage`` partitions (hours not yet
    materialized have none: materialize first). ``symbols`` match the platform form or the exchange's id.

    Time before a stream was first observed is no gap: the first hour of a collection is a gap from the hour's
    start to its first frame in coverage, and nothing was lost there (healing it would fetch history the
    collection never had)."""
    root = lake_root(root)
    coverage = read_partitions(root, "coverage", floor_ns(start_ns, HOUR_NS), end_ns, COVERAGE)
    if exchanges is not None:
        coverage = coverage.filter(pl.col("exchange").is_in(sorted(exchanges)))
    spans = trade_gaps(coverage, registry_trade_channels(), start_ns, end_ns)
    out: list[Gap] = []
    natives: dict[tuple[str, str], str | None] = {}  # one lookup per stream, however many gaps it has
    began: dict[tuple[str, str], int | None] = {}
    for exchange, symbol, channels, start, end, closed in spans.iter_rows():
        if (exchange, symbol) not in began:
            began[(exchange, symbol)] = _first_observed(root, coverage, exchange, symbol, start)
        first = began[(exchange, symbol)]
        if first is None or end <= first:
            continue  # before the stream was first observed
        start = max(start, first)
        if (exchange, symbol) not in natives:
            natives[(exchange, symbol)] = _exchange_symbol(root, exchange, symbol, channels, start)
        native = natives[(exchange, symbol)]
        if symbols is not None and symbol not in symbols and (native is None or native not in symbols):
            continue
        if native is None:
            continue  # no event named the stream: nothing says what to ask the exchange for
        channel = _main_channel(coverage, exchange, symbol, channels)
        after_id, neighbours = _neighbours(root, exchange, symbol, start, end)
        out.append(Gap(exchange, symbol, native, channel, start, end, after_id, closed, neighbours))
    return out


def _covered(coverage: pl.DataFrame, exchange: str, symbol: str) -> pl.DataFrame:
    trade = registry_trade_channels().get(exchange, frozenset())
    return coverage.filter(
        (pl.col("exchange") == exchange)
        & (pl.col("symbol") == symbol)
        & (pl.col("status") == COVERED)
        & pl.col("channel").is_in(sorted(trade))
    )


def _first_observed(root: str, coverage: pl.DataFrame, exchange: str, symbol: str, gap_ns: int) -> int | None:
    """When the symbol's trades were first observed, as far as a gap starting at ``gap_ns`` needs to know: a
    covered stretch before it in ``coverage`` (the range's) answers at once; otherwise the hours before the range
    are searched back to the lake's first minute for one; failing that, the first covered stretch of the range
    (None: none at all, nothing was ever observed)."""
    starts = _covered(coverage, exchange, symbol).get_column("start_time").dt.epoch("ns")
    if starts.len() and int(starts.min()) < gap_ns:  # type: ignore[arg-type]
        return int(starts.min())  # type: ignore[arg-type]
    bounds = raw_minute_bounds(root)
    earliest = floor_ns(bounds[0], HOUR_NS) - HOUR_NS if bounds is not None else gap_ns
    hour = floor_ns(gap_ns, HOUR_NS) - HOUR_NS
    while hour >= earliest:
        before = _covered(read_partitions(root, "coverage", hour, hour + HOUR_NS, COVERAGE), exchange, symbol)
        if before.height:
            return int(before.get_column("start_time").dt.epoch("ns").min())  # type: ignore[arg-type]
        hour -= HOUR_NS
    return int(starts.min()) if starts.len() else None  # type: ignore[arg-type]


def _main_channel(coverage: pl.DataFrame, exchange: str, symbol: str, channels: list[str]) -> str:
    """The trade channel that covered most of the symbol's time (the one the collector relied on); ties by name."""
    ex = get_exchange(exchange)
    usable = [c for c in channels if ex.trade_history(c) is not None] or channels
    rows = coverage.filter(
        (pl.col("exchange") == exchange) & (pl.col("symbol") == symbol) & (pl.col("status") == COVERED)
    )
    seconds = {
        str(ch): int(ns)
        for ch, ns in rows.group_by("channel")
        .agg((pl.col("end_time") - pl.col("start_time")).dt.total_nanoseconds().sum())
        .iter_rows()
    }
    return max(sorted(usable), key=lambda c: seconds.get(c, 0))


def _exchange_symbol(root: str, exchange: str, symbol: str, channels: list[str], at_ns: int) -> str | None:
    """The exchange's own id of ``symbol``, from the streams the collector recorded around ``at_ns``."""
    ex = get_exchange(exchange)
    for lo, hi in ((at_ns - HOUR_NS, at_ns + HOUR_NS), (at_ns - 24 * HOUR_NS, at_ns + 24 * HOUR_NS)):
        events = read_events(root, lo, hi, exchanges=[exchange])
        names = (
            events.filter((pl.col("kind") == SUBSCRIBED) & pl.col("channel").is_in(channels))
            .get_column("symbol")
            .unique()
            .to_list()
        )
        for name in sorted(names):
            if ex.normalize_symbol(name) == symbol:
                return str(name)
    return None


def _neighbours(
    root: str, exchange: str, symbol: str, start_ns: int, end_ns: int
) -> tuple[int | None, tuple[Decimal, ...]]:
    """(the newest numeric fill id of the symbol's stored trades before ``start_ns``, the prices of the last trade
    before ``start_ns`` and the first at/after ``end_ns``), from the hour either side of each edge."""
    cols = ["exchange", "symbol", "ts", "trade_id", "price"]

    def stored(lo: int, hi: int) -> pl.DataFrame:
        trades = read_partitions(root, "trades", lo, hi, TRADES, cols)
        return trades.filter((pl.col("exchange") == exchange) & (pl.col("symbol") == symbol)).with_columns(
            t=pl.col("ts").cast(pl.Int64)
        )

    hour = floor_ns(start_ns, HOUR_NS)
    before = stored(hour - HOUR_NS, hour + HOUR_NS).filter(pl.col("t") < start_ns)
    ids = before.select(pl.col("trade_id").str.extract(r"(\d+)$").cast(pl.Int64, strict=False).max()).item()
    hour = floor_ns(end_ns, HOUR_NS)
    after = stored(hour, hour + 2 * HOUR_NS).filter(pl.col("t") >= end_ns)
    prices = []
    if before.height:
        prices.append(before.sort("t", maintain_order=True).get_column("price")[-1])
    if after.height:
        prices.append(after.sort("t", maintain_order=True).get_column("price")[0])
    return (None if ids is None else int(ids)), tuple(Decimal(p) for p in prices)
