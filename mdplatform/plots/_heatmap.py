"""Trade heatmap (``mdplatform.transforms.trade_heatmap`` rows of one exchange and symbol) -> PNG: minutes across,
price buckets up; green is taker buy volume, red taker sell volume, each cell's brightness its share of the
minute's largest bucket (the heatmap's ``intensity`` scale), yellow where both sides traded."""

from __future__ import annotations

import polars as pl

from ._figure import empty_message, new_figure, png_bytes

__all__ = ["render_trade_heatmap"]


def render_trade_heatmap(heatmap: pl.DataFrame, *, width: int = 1200, height: int = 700, title: str = "") -> bytes:
    """PNG bytes of ``width`` x ``height`` px. ``heatmap``: HEATMAP rows of a single exchange and symbol."""
    fig = new_figure(width, height)
    if heatmap.is_empty():
        return empty_message(fig, f"{title}\nno trades".strip())
    if heatmap.select("exchange", "symbol").n_unique() != 1 or heatmap.get_column("bucket_size").n_unique() != 1:
        raise ValueError("render one exchange and symbol (one bucket size) per picture")
    import matplotlib.dates as mdates
    import numpy as np

    step = float(heatmap.get_column("bucket_size")[0])
    minute_ns = heatmap.get_column("minute").cast(pl.Int64).to_numpy()
    m0 = int(minute_ns.min())
    cols = (minute_ns - m0) // 60_000_000_000
    edges = heatmap.get_column("price_bucket").cast(pl.Float64).to_numpy()
    low = float(edges.min())
    rows = np.rint((edges - low) / step).astype(np.int64)
    n_cols, n_rows = int(cols.max()) + 1, int(rows.max()) + 1
    buy = heatmap.get_column("buy_size").cast(pl.Float64).to_numpy()
    sell = heatmap.get_column("sell_size").cast(pl.Float64).to_numpy()
    peak = (
        heatmap.select((pl.col("buy_size") + pl.col("sell_size")).cast(pl.Float64).max().over("minute"))
        .to_series()
        .to_numpy()
    )
    image = np.zeros((n_rows, n_cols, 3))
    image[rows, cols, 0] = np.sqrt(sell / peak)  # sqrt: small trades stay visible beside the minute's peak
    image[rows, cols, 1] = np.sqrt(buy / peak)
    start = m0 / 86_400e9  # matplotlib dates: days since 1970-01-01
    x0, x1 = start, start + n_cols / 1440
    ax = fig.add_subplot()
    ax.imshow(image, origin="lower", aspect="auto", interpolation="nearest", extent=(x0, x1, low, low + n_rows * step))
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))  # type: ignore[no-untyped-call]
    ax.set_xlabel("minute (UTC)")
    ax.set_ylabel(f"price (buckets of {heatmap.get_column('bucket_size')[0].normalize():f})")
    ex, sym = heatmap.row(0, named=True)["exchange"], heatmap.row(0, named=True)["symbol"]
    ax.set_title(title or f"{ex} {sym} trades: green taker buy, red taker sell")
    fig.tight_layout()
    return png_bytes(fig)
