"""Whether a REST history page is believable before it lands: its records parse, and its prices lie in a band around
the trades received live either side of the gap (a host answering price 1.0 for the missing ids of a 60,000 USDT
market would otherwise make complete candles with a low of 1.0)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from ..exchanges import Exchange, HistoryPage, TradeHistory
from ..schemas import RAW

__all__ = ["PriceBand", "page_problem"]


@dataclass(frozen=True, slots=True)
class PriceBand:
    """Prices a page may hold: [lo, hi], ``share`` beyond the lowest and highest of the neighbouring trades."""

    lo: Decimal
    hi: Decimal
    neighbours: tuple[Decimal, ...]
    share: Decimal

    @classmethod
    def around(cls, neighbours: tuple[Decimal, ...], share: float) -> PriceBand | None:
        """The band around the last trade before the gap and the first after it (None: no neighbour known)."""
        if not neighbours:
            return None
        s = Decimal(str(share))
        return cls(min(neighbours) * (1 - s), max(neighbours) * (1 + s), neighbours, s)

    def describe(self) -> str:
        around = " and ".join(_plain(p) for p in self.neighbours)
        pct = _plain(self.share * 100)
        return f"{_plain(self.lo)}..{_plain(self.hi)} (±{pct}% of the neighbouring trades' {around})"


def _plain(d: Decimal) -> str:
    """``d`` without trailing zeros nor exponent (61765.990000000000 -> 61765.99)."""
    return f"{d.normalize():f}"


def page_problem(exchange: Exchange, history: TradeHistory, page: HistoryPage, band: PriceBand | None) -> str | None:
    """Why ``page`` must not land (None: it may): records that do not parse as the live channel's trades, or prices
    outside ``band``."""
    if not page.records:
        return None
    raw = pl.DataFrame(
        {
            "recv_ts": [page.recv_ns],
            "exchange": [exchange.id],
            "channel": [page.channel],
            "symbol": [page.symbol],
            "conn_id": ["plausibility"],
            "seq": [1],
            "payload": [history.encode(page.records)],
        },
        schema=RAW,
    )
    trades, rejects = exchange.normalize_trades_with_rejects(raw)
    if rejects.height:
        return f"unreadable records: {rejects.get_column('reason')[0]}"
    if band is None or trades.height == 0:
        return None
    price = pl.col("price")
    outside = trades.filter((price < band.lo) | (price > band.hi))
    if outside.height == 0:
        return None
    first = outside.row(0, named=True)
    return (
        f"{outside.height} of {trades.height} prices outside {band.describe()}, "
        f"e.g. {_plain(first['price'])} for trade {first['trade_id']}"
    )
