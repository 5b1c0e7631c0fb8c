"""`mdp plot candles` and `mdp plot trade-heatmap` on a lake materialized from the real Binance spot recording
(raw layer by `import-capture`; the hourly `trades` and `candles` partitions written by the pure transforms hour by
hour, as the assets chain them)."""

from __future__ import annotations

import struct
from pathlib import Path

import polars as pl
import pytest
from candle_reference import H00, H23, HOUR, MIN, spot_files
from click.testing import CliRunner
from test_plot_render import decode, ihdr_size

from mdplatform.capture import import_capture
from mdplatform.cli import _TIMEFRAMES, cli
from mdplatform.lake import read_events, read_raw
from mdplatform.schemas import CANDLES, TIMEFRAMES, TRADES
from mdplatform.transforms import (
    build_candles,
    compute_coverage,
    registry_normalizer,
    registry_stream_kinds,
    registry_trade_channels,
    symbol_coverage,
    trades_for_window,
)
from mdplatform.warehouse import partition_path, write_partition

LATENESS, SKEW = 15 * MIN, 10 * 10**9


@pytest.fixture(scope="module")
def lake(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("plot") / "lake")
    import_capture(spot_files(shared_data), "binance", root)
    earlier: pl.DataFrame | None = None
    for hour in (H23, H00):
        lo, hi = hour - LATENESS, hour + HOUR + LATENESS
        window = trades_for_window(
            read_raw(root, lo, hi), hour, hour + HOUR, LATENESS, normalize=registry_normalizer, skew_ns=SKEW
        )
        cov = compute_coverage(
            read_events(root, lo, hi), window.observed, hour, hour + HOUR, kinds=registry_stream_kinds()
        )
        covered, horizon = symbol_coverage(cov, registry_trade_channels())
        got = build_candles(
            window.trades, covered, horizon, publish_start_ns=hour, publish_end_ns=hour + HOUR, earlier_1m=earlier
        )
        write_partition(partition_path(root, "trades", hour), window.trades.select(list(TRADES)))
        write_partition(partition_path(root, "candles", hour), got.select(list(CANDLES)))
        earlier = pl.concat([earlier, got]) if earlier is not None else got
    return root


def run(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


RANGE = ["--exchange", "binance", "--from", "2024-08-08T23:00", "--to", "2024-08-09T01:00"]


def test_plot_candles(lake: str, tmp_path: Path) -> None:
    out = tmp_path / "candles.png"
    said = run(["plot", "candles", *RANGE, "--symbol", "BTCUSDT", "--lake", lake, "-o", str(out), "--width", "900"])
    # 23:54 .. 00:04, the first seen only in part (as the candle tests find)
    assert "11 1m candles (1 incomplete)" in said
    png = out.read_bytes()
    assert ihdr_size(png) == (900, 700)
    assert float(decode(png)[..., :3].var()) > 0
    said = run(["plot", "candles", *RANGE, "--symbol", "BTC-USDT", "--lake", lake, "-o", str(out), "--timeframe", "5m"])
    assert "3 5m candles (1 incomplete)" in said
    # nothing there: an error, no file
    result = CliRunner().invoke(
        cli, ["plot", "candles", *RANGE, "--symbol", "ETHUSDT", "--lake", lake, "-o", str(tmp_path / "x.png")]
    )
    assert result.exit_code != 0 and "no 1m candles" in result.output and not (tmp_path / "x.png").exists()


def test_plot_trade_heatmap(lake: str, tmp_path: Path) -> None:
    out = tmp_path / "heatmap.png"
    said = run(
        ["plot", "trade-heatmap", *RANGE, "--symbol", "BTCUSDT", "--lake", lake, "-o", str(out), "--height", "500"]
    )
    assert ": 12 minutes," in said and "buckets of 10," in said  # 23:54 .. 00:05
    png = out.read_bytes()
    assert struct.unpack(">II", png[16:24]) == (1200, 500)
    px = decode(png)
    assert float(px[..., :3].var()) > 0
    rgb = px[..., :3]
    assert ((rgb[..., 1] > 0.5) & (rgb[..., 0] < 0.2)).sum() > 50  # taker buys drawn
    assert ((rgb[..., 0] > 0.5) & (rgb[..., 1] < 0.2)).sum() > 50  # taker sells drawn
    said = run(
        ["plot", "trade-heatmap", "--exchange", "binance", "--symbol", "BTC-USDT", "--from", "2024-08-09T00:00",
         "--to", "2024-08-09T00:02", "--bucket", "2.5", "--lake", lake, "-o", str(out)]
    )  # fmt: skip
    assert ": 2 minutes," in said and "buckets of 2.5," in said


def test_timeframes_spelled_out() -> None:
    assert tuple(TIMEFRAMES) == _TIMEFRAMES
