"""PNG pictures of the derived tables: a trade heatmap (time x price, buy and sell volume) and candles (OHLC and
volume, incomplete candles marked). matplotlib (Agg) is imported inside the render functions: importing this
package costs nothing."""

from ._candles import render_candles
from ._heatmap import render_trade_heatmap

__all__ = ["PNG_SIGNATURE", "render_candles", "render_trade_heatmap"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
