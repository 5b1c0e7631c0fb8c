"""Trades -> trade heatmap: traded volume per price bucket per minute by taker side (a volume profile over time).

One row per (minute, exchange, symbol, price bucket) that had trades. ``price_bucket`` is the bucket's lower edge:
``floor(price / bucket) * bucket``, computed on integers (units of 1e-12, the price scale), so edges and sums are
exact decimals. ``buy_count``/``sell_count`` count fills (an aggregated trade counts its matches), as candles do.
``intensity`` is the bucket's traded size (buy + sell) over the largest bucket's of the same exchange, symbol and
minute: 0..1, 1 for that minute's largest bucket.

Bucket size per symbol (``HeatmapBuckets.size_for``), first that applies:

1. ``sizes``: configured for the symbol (``BTC-USDT``) or for its base (``BTC``);
2. the defaults for USD-like quotes (``USD_LIKE``): 10 for BTC, 1 for ETH (USD);
3. about 1 bp of the reference price (the symbol's first trade in the input, by time): with a known tick size
   (``ticks``, per symbol or base, from the exchange's instrument rules) rounded half up to a multiple of the tick,
   at least one tick; without one, rounded to the nearest power of ten (in log scale: 6 -> 10, 3 -> 1). The tick is
   never guessed from the prices seen: a price ending in zeros says nothing about the tick.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import polars as pl

from mdplatform._time import MINUTE_NS
from mdplatform.schemas import PRICE, PRICE_SCALE, TS

__all__ = ["HEATMAP", "USD_LIKE", "HeatmapBuckets", "empty_heatmap", "one_bp_bucket", "trade_heatmap"]

HEATMAP: dict[str, pl.DataType] = {
    "minute": TS,
    "exchange": pl.String(),
    "symbol": pl.String(),
    "price_bucket": PRICE,  # lower edge
    "bucket_size": PRICE,
    "buy_size": PRICE,
    "sell_size": PRICE,
    "buy_count": pl.Int64(),
    "sell_count": pl.Int64(),
    "intensity": pl.Float64(),
}

#: quotes whose default bucket sizes are in USD
USD_LIKE = frozenset({"USD", "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USDP", "DAI"})

_ONE_BP = Decimal("0.0001")
_UNIT = Decimal(1).scaleb(-PRICE_SCALE)


def _decimal(value: Decimal | int | str) -> Decimal:
    d = Decimal(value)
    if not d.is_finite() or d <= 0:
        raise ValueError(f"a bucket or tick size must be a positive number, not {value!r}")
    if d != d.quantize(_UNIT):
        raise ValueError(f"{value!r} has more than {PRICE_SCALE} decimal places")
    return d


@dataclass(frozen=True)
class HeatmapBuckets:
    """Bucket sizes per symbol: configured (``sizes``), the defaults for USD-like quotes, or ~1 bp of price."""

    sizes: Mapping[str, Decimal] = field(default_factory=dict)
    ticks: Mapping[str, Decimal] = field(default_factory=dict)
    defaults: Mapping[str, Decimal] = field(default_factory=lambda: {"BTC": Decimal(10), "ETH": Decimal(1)})

    @classmethod
    def from_spec(cls, spec: str) -> HeatmapBuckets:
        """``"BTC=10,ETH=1,SOL-USDT=0.05"`` (per base or symbol; empty: the defaults only). A malformed entry
        raises ValueError naming it."""
        sizes: dict[str, Decimal] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"heatmap bucket {item!r}: expected NAME=SIZE (BTC=10, SOL-USDT=0.05)")
            try:
                sizes[key.strip().upper()] = _decimal(value.strip())
            except (ArithmeticError, ValueError) as exc:
                raise ValueError(f"heatmap bucket {item!r}: {exc}") from None
        return cls(sizes=sizes)

    @staticmethod
    def _lookup(table: Mapping[str, Decimal], symbol: str) -> Decimal | None:
        base = symbol.split("-")[0]
        for key in (symbol, base):
            if key in table:
                return _decimal(table[key])
        return None

    def size_for(self, symbol: str, ref_price: Decimal) -> Decimal:
        got = self._lookup(self.sizes, symbol)
        if got is not None:
            return got
        parts = symbol.split("-")
        if len(parts) > 1 and parts[1] in USD_LIKE and parts[0] in self.defaults:
            return _decimal(self.defaults[parts[0]])
        return one_bp_bucket(ref_price, self._lookup(self.ticks, symbol))


def one_bp_bucket(price: Decimal, tick: Decimal | None) -> Decimal:
    """About 1 bp of ``price``: a multiple of ``tick`` (at least one), else the nearest power of ten."""
    if price <= 0:
        raise ValueError(f"no bucket for a price of {price}")
    bp = price * _ONE_BP
    if tick is not None:
        ticks = (bp / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return max(ticks, Decimal(1)) * tick
    exp = round(math.log10(bp))
    return max(Decimal(1).scaleb(exp), _UNIT)


def empty_heatmap() -> pl.DataFrame:
    return pl.DataFrame(schema=HEATMAP)


def trade_heatmap(
    trades: pl.DataFrame,
    bucket: Decimal | HeatmapBuckets | None = None,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> pl.DataFrame:
    """HEATMAP rows of TRADES rows (``ts`` in [start_ns, end_ns) when given). ``bucket``: one size for every
    symbol, or per-symbol rules (default ``HeatmapBuckets()``). Sorted by exchange, symbol, minute, bucket."""
    rules = bucket if isinstance(bucket, HeatmapBuckets) else HeatmapBuckets()
    ts_i = pl.col("ts").cast(pl.Int64)
    if start_ns is not None:
        trades = trades.filter(ts_i >= start_ns)
    if end_ns is not None:
        trades = trades.filter(ts_i < end_ns)
    if trades.is_empty():
        return empty_heatmap()
    firsts = trades.sort("ts", maintain_order=True).group_by("exchange", "symbol", maintain_order=True).first()
    sizes = {
        (ex, sym): (_decimal(bucket) if isinstance(bucket, Decimal | int) else rules.size_for(sym, price))
        for ex, sym, price in firsts.select("exchange", "symbol", pl.col("price").cast(PRICE)).iter_rows()
    }
    keyed = pl.DataFrame(
        {
            "exchange": [k[0] for k in sizes],
            "symbol": [k[1] for k in sizes],
            "bucket_size": list(sizes.values()),
            "_units": [int(v.scaleb(PRICE_SCALE)) for v in sizes.values()],
        },
        schema={"exchange": pl.String(), "symbol": pl.String(), "bucket_size": PRICE, "_units": pl.Int128()},
    )
    buy = pl.col("side") == "buy"
    units = (pl.col("price").cast(PRICE) * 10**PRICE_SCALE).cast(pl.Int128)
    size = pl.col("size").cast(PRICE)
    fills = pl.col("fills").cast(pl.Int64)
    grouped = (
        trades.join(keyed, on=["exchange", "symbol"], how="left")
        .with_columns(
            _m=ts_i - ts_i % MINUTE_NS,
            _k=(units // pl.col("_units")),
        )
        .group_by("exchange", "symbol", "_m", "_k")
        .agg(
            bucket_size=pl.col("bucket_size").first(),
            buy_size=size.filter(buy).sum(),
            sell_size=size.filter(~buy).sum(),
            buy_count=fills.filter(buy).sum(),
            sell_count=fills.filter(~buy).sum(),
        )
    )
    total = (pl.col("buy_size") + pl.col("sell_size")).cast(pl.Float64)
    return (
        grouped.select(
            minute=pl.from_epoch(pl.col("_m"), time_unit="ns").dt.replace_time_zone("UTC").cast(TS),
            exchange=pl.col("exchange"),
            symbol=pl.col("symbol"),
            price_bucket=(pl.col("_k").cast(pl.Decimal(38, 0)) * pl.col("bucket_size")).cast(PRICE),
            bucket_size=pl.col("bucket_size"),
            buy_size=pl.col("buy_size").cast(PRICE),
            sell_size=pl.col("sell_size").cast(PRICE),
            buy_count=pl.col("buy_count").cast(pl.Int64),
            sell_count=pl.col("sell_count").cast(pl.Int64),
            intensity=pl.when(total > 0).then(total / total.max().over("exchange", "symbol", "_m")).otherwise(0.0),
        )
        .sort("exchange", "symbol", "minute", "price_bucket")
        .cast(HEATMAP)  # type: ignore[arg-type]
    )
