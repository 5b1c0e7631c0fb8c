"""The bench's test day, small: the bundled recording tiled by bench/testday.py, landed, materialized by
`mdp materialize` (books off) and checked against two independent computations of the candles: the plain-Python
reference (candle_reference, from the capture's lines) and the bench's polars reference
(bench/reference_materialize.py, from the lake), exactly, in every column. Also: the lake bench/testday.py writes
directly holds the raw rows an import of the tiled capture lands, row for row.

Two copies of the recording (2024-08-08 23:54:13 .. 08-09 00:16) cover hour 23 from its 54th minute, hour 00 up
to its 16th (the candles stop where observation does) and the tiling's seam: trade ids, exchange times and the
depth chain run on across it, so every minute after the first is complete."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from candle_reference import H00, H23, HOUR, MIN, assert_candles_match, candle_rows, read_recording, reference_candles

from mdplatform.capture import import_capture
from mdplatform.schemas import CANDLES, TRADES
from mdplatform.warehouse import read_partitions

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import reference_materialize  # noqa: E402
import testday  # noqa: E402

#: hours 23 and 00: two copies (hours=0 covers the first whole hour's lateness only)
HOURS = (H23, H00 + HOUR)


@pytest.fixture(scope="module")
def template() -> testday.Template:
    return testday.template()


@pytest.fixture(scope="module")
def capture(template: testday.Template, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("testday") / "testday.gz"
    stats = testday.write_capture(path, 0, tpl=template)
    assert stats.plan.copies == 2
    assert stats.frames == 2 * 99_574 and stats.trades == 2 * 19_904
    return path


def materialize(lake: str, tmp: Path) -> pl.DataFrame:
    """`mdp materialize` of HOURS (a subprocess, as users run it), the candles read back from the lake."""
    env = {**os.environ, "MDP_BOOKS": "0", "DAGSTER_HOME": str(tmp / "dagster"), "MDP_LAKE": lake}
    env.pop("MDP_START", None)
    lo, hi = (time.strftime("%Y-%m-%dT%H", time.gmtime(h // 10**9)) for h in HOURS)
    done = subprocess.run(
        [sys.executable, "-m", "mdplatform", "materialize", "--from", lo, "--to", hi, "--lake", lake],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return read_partitions(lake, "candles", *HOURS, CANDLES)


@pytest.fixture(scope="module")
def imported(capture: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pl.DataFrame]:
    tmp = tmp_path_factory.mktemp("imported")
    lake = str(tmp / "lake")
    stats = import_capture([capture], "binance", lake)
    assert stats.rows == 2 * 99_574 and stats.read.bad == []
    # the book session followed the depth chain across the seams: synced once, no gap
    assert stats.events.get("synced") == 1 and "gap" not in stats.events
    return lake, materialize(lake, tmp)


def test_tiled_candles_equal_both_references(capture: Path, imported: tuple[str, pl.DataFrame]) -> None:
    lake, candles = imported
    rec = read_recording([capture])
    start, end = rec.observed
    assert len({t.trade_id for t in rec.trades}) == len(rec.trades) == 2 * 19_904  # ids run on across copies
    expected = reference_candles(rec.trades, [(start, end)], end, start - start % MIN)
    assert_candles_match(candle_rows(candles), expected)
    one_minute = candles.filter(pl.col("timeframe") == "1m")
    # 23:54 seen in part, then every minute up to where the second copy ends (00:16) whole
    assert one_minute.height == 22 and one_minute.get_column("complete").sum() == 21

    ref = reference_materialize.materialize(Path(lake), *HOURS)
    assert reference_materialize.compare_frames(candles, ref.candles, ["timeframe", "open_time"]) == []
    trades = read_partitions(lake, "trades", *HOURS, TRADES)
    assert reference_materialize.compare_frames(trades, ref.trades, None) == []


def test_direct_lake_holds_the_imported_raw_rows(
    template: testday.Template, imported: tuple[str, pl.DataFrame], tmp_path: Path
) -> None:
    lake = str(tmp_path / "lake")
    stats = testday.write_lake(lake, 0, tpl=template)
    assert stats.frames == 2 * 99_574 and stats.trades == 2 * 19_904
    got = pl.read_parquet(f"{lake}/raw/**/*.parquet", hive_partitioning=False).sort("conn_id", "seq")
    want = pl.read_parquet(f"{imported[0]}/raw/**/*.parquet", hive_partitioning=False).sort("conn_id", "seq")
    assert got.equals(want)


def test_thinned_trade_lake_candles_equal_reference(template: testday.Template, tmp_path: Path) -> None:
    """Trade frames only, 1 in 2,000 kept (renumbered): a quiet market whose minutes without trades get flat
    candles; alive events every 5 s keep it observed."""
    lake = str(tmp_path / "lake")
    stats = testday.write_lake(lake, 0, channels="trade", density=0.0005, tpl=template)
    assert stats.frames == stats.trades == 2 * 9
    candles = materialize(lake, tmp_path)
    ref = reference_materialize.materialize(Path(lake), *HOURS)
    assert reference_materialize.compare_frames(candles, ref.candles, ["timeframe", "open_time"]) == []
    flat = candles.filter((pl.col("timeframe") == "1m") & (pl.col("trade_count") == 0))
    assert flat.height >= 5 and flat.get_column("complete").all()
