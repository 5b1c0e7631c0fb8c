"""A jump of the exchange's time never makes complete candles over minutes nothing was received in.

The recording is the real Binance spot BTCUSDT file of 2024-08-08 (23:54:13 to 23:59:59), **modified for this
test**: every frame received from 23:56:00 on has its exchange times (``E``, ``T``) moved 8 minutes forward, its
trade ids left as they are (contiguous across the jump), as a live stream whose exchange clock jumped would
deliver it.

- Lagging: receive times moved 10 minutes later too (the stream runs behind the local clock, as a replay that is
  not rebased or a backlog does), so the jumped trades are still not ahead of their receipt. Consecutive ids and
  the unbroken flow of frames made 1m candles complete and flat over the 8 minutes no frame was received in (the
  issue's live stream: 63 of 63 complete, 56 flat); coverage now calls them a ``clock jump`` gap.
- Aligned: receive times as recorded, so the jumped trades run 8 minutes ahead of their receipt: quarantined, as
  an imported stream's always were, and nothing after the jump is complete.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
from candle_reference import H23, MIN, read_lines, write_lines
from click.testing import CliRunner

from assets.cli import materialize
from mdplatform.capture import import_capture
from mdplatform.schemas import CANDLES, COVERAGE, REJECTS
from mdplatform.warehouse import read_partitions

S = 10**9
JUMP_AT = H23 + 56 * MIN  # receive time from which the exchange times are moved
JUMP = 8 * MIN
_TIME = re.compile(r'"([ET])":(\d+)')


def jumped(shared_data: Path, tmp: Path, lag_ns: int) -> Path:
    src = shared_data / "binance-hftbacktest" / "spot" / "btcusdt_20240808.gz"
    ms = JUMP // 10**6

    def moved(frame: str) -> str:
        return _TIME.sub(lambda m: f'"{m.group(1)}":{int(m.group(2)) + ms}', frame)

    lines = [(r + lag_ns, moved(f) if r >= JUMP_AT else f) for r, f in read_lines(src)]
    return write_lines(lines, tmp / src.name)


def materialized(path: Path, lake: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(1m candles, trade coverage, quarantined trade frames) of the lake the modified recording lands in."""
    import_capture([path], "binance", str(lake))
    result = CliRunner().invoke(materialize, ["--lake", str(lake), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lo, hi = H23, H23 + 3 * 60 * MIN
    candles = read_partitions(str(lake), "candles", lo, hi, CANDLES).filter(pl.col("timeframe") == "1m")
    coverage = read_partitions(str(lake), "coverage", lo, hi, COVERAGE).filter(pl.col("channel") == "trade")
    rejects = pl.concat(
        [pl.read_parquet(p) for p in sorted((lake / "quarantine" / "trades").rglob("*.parquet"))]
        or [pl.DataFrame(schema=REJECTS)]
    )
    return candles.sort("open_time"), coverage.sort("start_time"), rejects


def minutes(candles: pl.DataFrame) -> list[str]:
    return [f"{t:%H:%M}" for t in candles.get_column("open_time")]


def test_a_lagging_stream_whose_exchange_time_jumps(shared_data: Path, tmp_path: Path, dagster_home: str) -> None:
    candles, coverage, rejects = materialized(jumped(shared_data, tmp_path, 10 * MIN), tmp_path / "lake")
    assert rejects.height == 0  # nothing ran ahead of its receipt
    # the jumped-over minutes 23:57..00:03 have no trade, and none of them, nor the minutes cut by the jump
    # (23:56, 00:04), is complete
    assert minutes(candles) == ["23:54", "23:55", "23:56", "00:04", "00:05", "00:06", "00:07"]
    assert minutes(candles.filter("complete")) == ["23:55", "00:05", "00:06", "00:07"]
    assert candles.filter(pl.col("complete") & (pl.col("trade_count") == 0)).height == 0
    jump = coverage.filter(pl.col("reason") == "clock jump")
    assert jump.height == 2  # one row per hour it spans
    assert (jump.get_column("status") == "gap").all()
    assert jump.get_column("detail")[0].startswith("exchange time jumped 48")
    start, end = jump.get_column("start_time")[0], jump.get_column("end_time")[-1]
    assert (f"{start:%H:%M:%S}", f"{end:%H:%M:%S}") == ("23:56:01", "00:04:02")


def test_an_aligned_stream_whose_exchange_time_jumps(shared_data: Path, tmp_path: Path, dagster_home: str) -> None:
    candles, coverage, rejects = materialized(jumped(shared_data, tmp_path, 0), tmp_path / "lake")
    reasons = rejects.get_column("reason")
    assert rejects.height > 1000 and reasons.str.contains("s ahead of its receive time").all()
    assert minutes(candles.filter("complete")) == ["23:55"]
    covered = coverage.filter(pl.col("status") == "covered")
    assert f"{covered.get_column('end_time').max():%H:%M:%S}" == "23:56:01"
