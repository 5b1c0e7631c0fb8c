"""PNG pictures: the signature, the requested size, and content (pixels that vary, the colors that mean buy, sell
and incomplete)."""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import polars as pl
import pytest

from mdplatform.plots import PNG_SIGNATURE, render_candles, render_trade_heatmap
from mdplatform.schemas import CANDLES, TRADES
from mdplatform.transforms import trade_heatmap

D = Decimal
T0 = datetime(2024, 8, 9, tzinfo=UTC)


def decode(png: bytes) -> np.ndarray:  # type: ignore[type-arg]
    import matplotlib.image

    assert png[:8] == PNG_SIGNATURE
    return np.asarray(matplotlib.image.imread(io.BytesIO(png), format="png"))


def ihdr_size(png: bytes) -> tuple[int, int]:
    assert png[12:16] == b"IHDR"
    w, h = struct.unpack(">II", png[16:24])
    return w, h


def is_grey(rgb: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
    """matplotlib's "grey" (0.5, 0.5, 0.5)"""
    return np.all(np.abs(rgb - 0.5) < 0.05, axis=-1)


def trades() -> pl.DataFrame:
    rows = []
    for m in range(5):
        for i in range(4):
            t = T0 + timedelta(minutes=m, seconds=10 * i)
            rows.append((t, D(60000 + 10 * m + 7 * i), D("0.1") * (i + 1), "buy" if i % 2 else "sell"))
    return pl.DataFrame(
        {
            "exchange": "binance",
            "symbol": "BTC-USDT",
            "ts": [r[0] for r in rows],
            "recv_ts": [r[0] for r in rows],
            "trade_id": [str(i) for i in range(len(rows))],
            "price": [r[1] for r in rows],
            "size": [r[2] for r in rows],
            "side": [r[3] for r in rows],
            "fills": 1,
        }
    ).cast(TRADES)  # type: ignore[arg-type]


def candles(n: int = 6) -> pl.DataFrame:
    rows = []
    price = D(60000)
    for i in range(n):
        o, c = price, price + (D(15) if i % 2 else D(-9))
        rows.append(
            {
                "exchange": "binance",
                "symbol": "BTC-USDT",
                "timeframe": "1m",
                "open_time": T0 + timedelta(minutes=i),
                "close_time": T0 + timedelta(minutes=i + 1),
                "open": o,
                "high": max(o, c) + 3,
                "low": min(o, c) - 4,
                "close": c,
                "volume": D("1.5") + i,
                "quote_volume": D(0),
                "trade_count": 10,
                "taker_buy_volume": D(1),
                "taker_buy_quote_volume": D(0),
                "vwap": c,
                "complete": i != 0,  # the first minute seen only in part
                "coverage": 0.7 if i == 0 else 1.0,
            }
        )
        price = c
    return pl.DataFrame(rows).cast(CANDLES)  # type: ignore[arg-type]


def test_trade_heatmap_png() -> None:
    png = render_trade_heatmap(trade_heatmap(trades()), width=640, height=400)
    assert ihdr_size(png) == (640, 400)
    px = decode(png)
    assert px.shape[:2] == (400, 640)
    assert float(px[..., :3].var()) > 0
    rgb = px[..., :3]
    green = (rgb[..., 1] > 0.5) & (rgb[..., 0] < 0.2) & (rgb[..., 2] < 0.2)
    red = (rgb[..., 0] > 0.5) & (rgb[..., 1] < 0.2) & (rgb[..., 2] < 0.2)
    assert green.sum() > 100 and red.sum() > 100  # buy and sell cells are drawn


def test_candles_png_marks_incomplete() -> None:
    png = render_candles(candles(), width=800, height=500)
    assert ihdr_size(png) == (800, 500)
    px = decode(png)
    assert px.shape[:2] == (500, 800) and float(px[..., :3].var()) > 0
    rgb = px[..., :3]
    grey = is_grey(rgb)
    assert grey.sum() > 20  # the incomplete candle's grey outline and hatch
    all_complete = decode(render_candles(candles().with_columns(complete=pl.lit(True)), width=800, height=500))
    rgb2 = all_complete[..., :3]
    grey2 = is_grey(rgb2)
    assert grey2.sum() < grey.sum()


def test_empty_and_mixed() -> None:
    png = render_candles(candles().clear(), width=300, height=200)
    assert ihdr_size(png) == (300, 200) and float(decode(png)[..., :3].var()) > 0  # says "no candles"
    two = pl.concat([candles(), candles().with_columns(symbol=pl.lit("ETH-USDT"))])
    with pytest.raises(ValueError, match="one exchange"):
        render_candles(two)
    with pytest.raises(ValueError, match="too small"):
        render_trade_heatmap(trade_heatmap(trades()), width=50, height=50)


def test_import_is_lazy() -> None:
    import subprocess
    import sys

    code = "import sys, mdplatform.plots, mdplatform.transforms; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
