"""PNG pictures of the derived tables: a trade heatmap (time x price, buy and sell volume), candles (OHLC and
volume, incomplete candles marked) and the book heatmap (resting bids and asks per price bucket over time).
matplotlib (Agg) is imported inside the render functions: importing this package costs nothing."""

from ._book_heatmap import render_book_heatmap
from ._candles import render_candles
from ._heatmap import render_trade_heatmap

__all__ = ["PNG_SIGNATURE", "render_book_heatmap", "render_candles", "render_trade_heatmap"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
