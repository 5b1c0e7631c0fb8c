"""Which trade gaps a range of the lake has, and what the exchange's REST history needs to fill each one."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from .._time import HOUR_NS, floor_ns
from ..exchanges import SUBSCRIBED, get_exchange
from ..lake import lake_root, read_events
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
    what coverage knows may grow)."""

    exchange: str
    symbol: str
    exchange_symbol: str
    channel: str
    start_ns: int
    end_ns: int
    after_id: int | None
    closed: bool = True


def find_gaps(
    root: str | None,
    start_ns: int,
    end_ns: int,
    *,
    exchanges: set[str] | None = None,
    symbols: set[str] | None = None,
) -> list[Gap]:
    """The trade gaps of [start_ns, end_ns) according to the lake's ``coverage`` partitions (hours not yet
    materialized have none: materialize first). ``symbols`` match the platform form or the exchange's id."""
    root = lake_root(root)
    coverage = read_partitions(root, "coverage", floor_ns(start_ns, HOUR_NS), end_ns, COVERAGE)
    if exchanges is not None:
        coverage = coverage.filter(pl.col("exchange").is_in(sorted(exchanges)))
    spans = trade_gaps(coverage, registry_trade_channels(), start_ns, end_ns)
    out: list[Gap] = []
    natives: dict[tuple[str, str], str | None] = {}  # one lookup per stream, however many gaps it has
    for exchange, symbol, channels, start, end, closed in spans.iter_rows():
        if (exchange, symbol) not in natives:
            natives[(exchange, symbol)] = _exchange_symbol(root, exchange, symbol, channels, start)
        native = natives[(exchange, symbol)]
        if symbols is not None and symbol not in symbols and (native is None or native not in symbols):
            continue
        if native is None:
            continue  # no event named the stream: nothing says what to ask the exchange for
        channel = _main_channel(coverage, exchange, symbol, channels)
        after_id = _last_fill_id(root, exchange, symbol, start)
        out.append(Gap(exchange, symbol, native, channel, start, end, after_id, closed))
    return out


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


def _last_fill_id(root: str, exchange: str, symbol: str, before_ns: int) -> int | None:
    """The newest numeric fill id of the symbol's stored trades before ``before_ns`` (the hour and the one before)."""
    hour = floor_ns(before_ns, HOUR_NS)
    trades = read_partitions(
        root, "trades", hour - HOUR_NS, hour + HOUR_NS, TRADES, ["exchange", "symbol", "ts", "trade_id"]
    )
    ids = (
        trades.filter(
            (pl.col("exchange") == exchange) & (pl.col("symbol") == symbol) & (pl.col("ts").cast(pl.Int64) < before_ns)
        )
        .select(pl.col("trade_id").str.extract(r"(\d+)$").cast(pl.Int64, strict=False).max())
        .item()
    )
    return None if ids is None else int(ids)
