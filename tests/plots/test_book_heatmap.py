"""The book heatmap picture (``render_book_heatmap``) and ``mdp plot heatmap``: the PNG signature and size, pixels
that carry the meaning (a strong bid bucket in the bid colormap where the bucket is, an invalid span grey, trades
green), the step chosen, the real Binance spot recording drawn, and the command on a tiny hand-written lake."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from test_plot_render import decode, ihdr_size

from mdplatform.book import BOOK_HEATMAP, BookHeatmapSpec, book_samples, invalid_schema, samples_schema
from mdplatform.capture import import_capture
from mdplatform.cli import cli
from mdplatform.exchanges import get_exchange
from mdplatform.lake import read_raw
from mdplatform.plots import render_book_heatmap
from mdplatform.plots._book_heatmap import pick_step
from mdplatform.schemas import TRADES
from mdplatform.transforms import registry_normalizer, trades_for_window
from mdplatform.warehouse import partition_path, write_partition

D = Decimal
T0 = datetime(2024, 8, 9, 10, tzinfo=UTC)
HOUR_NS = 3_600 * 10**9
T0_NS = int(T0.timestamp()) * 10**9
STEPS = 60
STRONG = 59950  # the one bid bucket at intensity 1
Px = np.ndarray[Any, Any]


def heatmap(
    steps: int = STEPS,
    *,
    step: str = "1s",
    skip: range = range(0),
    exchange: str = "binance",
    symbol: str = "BTC-USDT",
) -> pl.DataFrame:
    """Bids 59900..59990 (weak, but STRONG at 1), asks 60000..60090 at 0.5, one step apart; none in ``skip``."""
    dt = timedelta(seconds=1) if step == "1s" else timedelta(minutes=1)
    rows = []
    for i in (i for i in range(steps) if i not in skip):
        for k in range(10):
            bid = 59900 + 10 * k
            rows.append((T0 + i * dt, "bid", D(bid), 1.0 if bid == STRONG else 0.05))
            rows.append((T0 + i * dt, "ask", D(60000 + 10 * k), 0.5))
    return pl.DataFrame(
        {
            "ts": [r[0] for r in rows],
            "step": step,
            "exchange": exchange,
            "symbol": symbol,
            "side": [r[1] for r in rows],
            "price": [r[2] for r in rows],
            "bucket": D(10),
            "size": [r[3] * 4 for r in rows],
            "intensity": [r[3] for r in rows],
            "exchange_count": 1,
            "samples": 1,
            "complete": True,
        }
    ).cast(BOOK_HEATMAP)  # type: ignore[arg-type]


def invalid(start_s: float, end_s: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "exchange": ["binance"],
            "symbol": ["BTC-USDT"],
            "start": [T0 + timedelta(seconds=start_s)],
            "end": [T0 + timedelta(seconds=end_s)],
            "reason": ["gap"],
        }
    ).cast(invalid_schema())  # type: ignore[arg-type]


def trades(n: int = STEPS, start: datetime = T0) -> pl.DataFrame:
    """A buy at 60000 and a sell at 59995 every second."""
    rows = [
        (start + timedelta(seconds=i), D(60000) if i % 2 else D(59995), "buy" if i % 2 else "sell") for i in range(n)
    ]
    return pl.DataFrame(
        {
            "exchange": "binance",
            "symbol": "BTC-USDT",
            "ts": [r[0] for r in rows],
            "recv_ts": [r[0] for r in rows],
            "trade_id": [str(i) for i in range(n)],
            "price": [r[1] for r in rows],
            "size": D("0.5"),
            "side": [r[2] for r in rows],
            "fills": 1,
        }
    ).cast(TRADES)  # type: ignore[arg-type]


def snapshots(n: int = STEPS, exchange: str = "binance", symbol: str = "BTC-USDT") -> pl.DataFrame:
    """``samples_schema`` rows: mid 59997.5 every second, the snapshot's range 59890..60110, the rest null."""
    got = pl.DataFrame(
        {
            "ts": [T0 + timedelta(seconds=i) for i in range(n)],
            "exchange": exchange,
            "symbol": symbol,
            "bid_price": 59995.0,
            "ask_price": 60000.0,
            "mid": 59997.5,
            "bid_floor": 59890.0,
            "ask_ceiling": 60110.0,
        }
    )
    schema = samples_schema()
    return (
        got.with_columns(pl.lit(None).alias(c) for c in schema if c not in got.columns)
        .select(list(schema))
        .cast(
            schema  # type: ignore[arg-type]
        )
    )


def cells(px: Px) -> tuple[Px, Px, Px]:
    """Masks of the heatmap's bid (blue) and ask (orange) pixels left of the colourbars, and of grey pixels."""
    rgb = px[..., :3].copy()
    rgb[:, int(rgb.shape[1] * 0.85) :] = 1.0  # the colourbars sit at the right
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    blue = (b > r + 0.15) & (b > 0.3)
    orange = (r > b + 0.3) & (r > 0.8)
    grey = (np.abs(r - 0.55) < 0.03) & (np.abs(g - 0.55) < 0.03) & (np.abs(b - 0.55) < 0.03)
    return blue, orange, grey


def test_png_and_bid_bucket_where_it_is() -> None:
    import matplotlib

    png = render_book_heatmap(heatmap(), width=800, height=500)
    assert ihdr_size(png) == (800, 500)
    px = decode(png)
    blue, orange, _ = cells(px)
    assert blue.sum() > 10_000 and orange.sum() > 10_000
    ys, xs = np.nonzero(blue | orange)
    top, bottom = ys.min(), ys.max()
    assert np.median(np.nonzero(orange)[0]) < np.median(np.nonzero(blue)[0])  # asks above bids
    # the strong bucket [59950, 59960) of the range 59900..60100: 70..75 % down from the top of the cells
    row = top + int((bottom - top) * 0.725)
    left, right = xs.min(), xs.max()
    strong = px[row, left + 5 : right - 5, :3]
    top_blue = np.array(matplotlib.colormaps["Blues"](1.0)[:3])
    assert np.abs(strong - top_blue).max() < 0.02  # the darkest blue, the whole width of the window
    weak = px[top + int((bottom - top) * 0.9), (left + right) // 2, :3]
    assert np.abs(weak - top_blue).max() > 0.3 and weak[2] > weak[0]  # a weak bid: a pale blue


def test_invalid_span_is_grey_and_trades_dots() -> None:
    hm = heatmap(skip=range(20, 30))
    bare = decode(render_book_heatmap(hm, width=800, height=500))
    shaded = decode(render_book_heatmap(hm, invalid=invalid(20, 30), width=800, height=500))
    blue, orange, grey = cells(shaded)
    ys, xs = np.nonzero(blue | orange)
    col = xs.min() + int((xs.max() - xs.min()) * 25 / STEPS)  # the middle of the span
    assert grey[ys.min() + 5 : ys.max() - 5, col].all()
    # without the invalid span: the empty background (white, but for a grid line or two)
    assert np.mean(np.all(bare[ys.min() + 5 : ys.max() - 5, col, :3] > 0.95, axis=-1)) > 0.9
    assert not cells(bare)[2][:, col].any()

    def green(px: Px) -> int:
        r, g, b = px[..., 0], px[..., 1], px[..., 2]
        return int(((g > 0.5) & (r < 0.45) & (b < 0.45)).sum())

    with_trades = decode(render_book_heatmap(hm, trades=trades(), samples=snapshots(), width=800, height=500))
    assert green(with_trades) > 50 and green(bare) == 0  # the taker buys, green dots


def test_step_choice_empty_and_mixed() -> None:
    both_short = pl.concat([heatmap(), heatmap(1, step="1m")])
    assert pick_step(both_short) == "1s"
    both_long = pl.concat([heatmap(), heatmap(180, step="1m")])  # 3 hours
    assert pick_step(both_long) == "1m" and pick_step(heatmap(5, step="1m")) == "1m"
    empty = render_book_heatmap(heatmap().clear(), width=300, height=200)
    assert ihdr_size(empty) == (300, 200) and float(decode(empty)[..., :3].var()) > 0  # says "no book heatmap"
    with pytest.raises(ValueError, match="one exchange"):
        render_book_heatmap(pl.concat([heatmap(5), heatmap(5, exchange="okx")]))


def test_real_recording(shared_data: Path) -> None:
    """The Binance BTCUSDT spot book rebuilt from the recording (its first 4 minutes: the rebuild is the slow
    part, the picture is the same kind), 1 s steps, trades overlaid."""
    files = [shared_data / "binance-hftbacktest" / "spot" / f"btcusdt_2024080{d}.gz" for d in (8, 9)]
    with tempfile.TemporaryDirectory() as lake:
        import_capture(files, "binance", lake)
        raw = read_raw(lake, 0, 1 << 62, exchanges=["binance"])
    raw = raw.filter(pl.col("recv_ts") < pl.col("recv_ts").min() + timedelta(minutes=4))
    got = book_samples(raw, get_exchange("binance"), "BTCUSDT", heatmap=BookHeatmapSpec(D(10), 100))
    hour = 1723158000 * 10**9  # 2024-08-08 23:00
    traded = trades_for_window(
        raw, hour, hour + 2 * HOUR_NS, 15 * 60 * 10**9, normalize=registry_normalizer, skew_ns=10 * 10**9
    ).trades
    assert got.heatmap.get_column("ts").n_unique() > 200 and traded.height > 1000
    png = render_book_heatmap(
        got.heatmap, trades=traded, samples=got.samples, invalid=got.invalid, width=1000, height=550
    )
    assert ihdr_size(png) == (1000, 550)
    blue, orange, _ = cells(decode(png))
    assert blue.sum() > 20_000 and orange.sum() > 20_000


@pytest.fixture
def tiny_lake(tmp_path: Path) -> str:
    """One hour of book_heatmap (1 s and 1 m steps, binance and the consolidated book), book_snapshots,
    book_invalid and trades."""
    root = str(tmp_path / "lake")
    hour = T0_NS
    book = pl.concat(
        [
            heatmap(skip=range(20, 30)),
            heatmap(1, step="1m"),
            heatmap(exchange="*", symbol="BTC-USD*"),
        ]
    )
    write_partition(partition_path(root, "book_heatmap", hour), book)
    write_partition(partition_path(root, "book_snapshots", hour), pl.concat([snapshots(), snapshots(exchange="okx")]))
    write_partition(partition_path(root, "book_invalid", hour), invalid(20, 30))
    okx = trades().with_columns(exchange=pl.lit("okx"), price=pl.lit(D(59990)).cast(TRADES["price"]))
    write_partition(partition_path(root, "trades", hour), pl.concat([trades(), okx]))
    return root


def test_cli_plot_heatmap(tiny_lake: str, tmp_path: Path) -> None:
    out = tmp_path / "book.png"
    window = ["--from", "2024-08-09T10:00", "--to", "2024-08-09T11:00", "--lake", tiny_lake]
    args = ["plot", "heatmap", "--exchange", "binance", *window, "-o", str(out), "--width", "700", "--height", "400"]
    result = CliRunner().invoke(cli, [*args, "--symbol", "BTCUSDT"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "binance BTC-USDT, 50 1s steps, 60 book samples, 60 trades" in result.output
    assert ihdr_size(out.read_bytes()) == (700, 400)
    grey = cells(decode(out.read_bytes()))[2]
    assert grey.sum() > 500  # the invalid span from book_invalid
    result = CliRunner().invoke(cli, [*args, "--symbol", "BTC-USDT", "--step", "1m", "--no-trades"])
    assert result.exit_code == 0 and "1 1m steps, 60 book samples, 0 trades" in result.output, result.output
    # the consolidated book: the trades of both venues
    args[3] = "*"
    result = CliRunner().invoke(cli, [*args, "--symbol", "BTC"])
    assert result.exit_code == 0 and "* BTC-USD*, 60 1s steps" in result.output and "120 trades" in result.output


def test_cli_errors_cleanly(tiny_lake: str, tmp_path: Path) -> None:
    out = tmp_path / "none.png"
    args = ["plot", "heatmap", "--exchange", "binance", "--symbol", "BTCUSDT", "--lake", tiny_lake, "-o", str(out)]
    result = CliRunner().invoke(cli, [*args, "--from", "2024-08-09T12:00", "--to", "2024-08-09T13:00"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # a click error, no traceback
    assert "no book heatmap for binance BTCUSDT between 2024-08-09T12:00 and 2024-08-09T13:00" in result.output
    assert "materialize book_heatmap first (mdp materialize" in result.output and not out.exists()
    result = CliRunner().invoke(cli, [*args, "--from", "2024-08-09T10:00", "--to", "2024-08-09T11:00", "--step", "x"])
    assert result.exit_code == 2 and "--step" in result.output
