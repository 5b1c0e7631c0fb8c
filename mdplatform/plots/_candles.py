"""Candles (CANDLES rows of one exchange, symbol and timeframe) -> PNG: OHLC bodies and wicks over volume bars.
Complete candles are filled (green up, red down); incomplete ones (``complete`` false: part of the span was not
observed) are drawn hollow in grey with dashed edges and their volume bars hatched."""

from __future__ import annotations

import polars as pl

from mdplatform.schemas import TIMEFRAMES

from ._figure import empty_message, new_figure, png_bytes

__all__ = ["render_candles"]


def render_candles(candles: pl.DataFrame, *, width: int = 1200, height: int = 700, title: str = "") -> bytes:
    """PNG bytes of ``width`` x ``height`` px. ``candles``: one exchange, symbol and timeframe."""
    fig = new_figure(width, height)
    if candles.is_empty():
        return empty_message(fig, f"{title}\nno candles".strip())
    if candles.select("exchange", "symbol", "timeframe").n_unique() != 1:
        raise ValueError("render one exchange, symbol and timeframe per picture")
    import matplotlib.dates as mdates
    from matplotlib.patches import Patch

    candles = candles.sort("open_time")
    first = candles.row(0, named=True)
    width_days = TIMEFRAMES[first["timeframe"]] / 86_400e9
    body_w = width_days * 0.7
    price_ax, vol_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for c in candles.iter_rows(named=True):
        x = c["open_time"].timestamp() / 86_400 + width_days / 2  # matplotlib dates: days since 1970-01-01
        o, h, lo, cl, vol = (float(c[k]) for k in ("open", "high", "low", "close", "volume"))
        up = cl >= o
        color = ("tab:green" if up else "tab:red") if c["complete"] else "grey"
        price_ax.vlines(x, lo, h, color=color, linewidth=1)
        bottom, span = min(o, cl), max(abs(cl - o), (h - lo) * 0.01 or 1e-9)
        if c["complete"]:
            price_ax.bar(x, span, body_w, bottom, color=color)
            vol_ax.bar(x, vol, body_w, color=color)
        else:
            price_ax.bar(x, span, body_w, bottom, facecolor="none", edgecolor=color, linestyle="--", linewidth=1.2)
            vol_ax.bar(x, vol, body_w, facecolor="none", edgecolor=color, hatch="///")
    incomplete = candles.filter(~pl.col("complete")).height
    price_ax.legend(
        handles=[
            Patch(color="tab:green", label="complete, up"),
            Patch(color="tab:red", label="complete, down"),
            Patch(facecolor="none", edgecolor="grey", linestyle="--", label=f"incomplete ({incomplete})"),
        ],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),  # above the axes, clear of the candles
        ncols=3,
        fontsize="small",
        frameon=False,
    )
    price_ax.set_title(title or f"{first['exchange']} {first['symbol']} {first['timeframe']} candles", loc="left")
    price_ax.set_ylabel("price")
    vol_ax.set_ylabel("volume")
    vol_ax.xaxis_date()
    vol_ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))  # type: ignore[no-untyped-call]
    vol_ax.set_xlabel("open time (UTC)")
    fig.tight_layout()
    return png_bytes(fig)
