"""The demo end to end (replay -> live ingestor over a socket -> Dagster -> DuckDB), then the same capture through
`mdp import-capture` + `mdp materialize` at the recording's own times: both give the same 1m candles."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
FIELDS = (
    "open, high, low, close, volume, quote_volume, trade_count, taker_buy_volume, taker_buy_quote_volume, vwap, "
    "complete"
)


def _candles_1m(warehouse: Path, shift_ns: int) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.sql(
            f"select exchange, symbol, epoch_ns(open_time) - {shift_ns}, epoch_ns(close_time) - {shift_ns}, {FIELDS} "
            "from candles where timeframe = '1m' order by all"
        ).fetchall()
    finally:
        con.close()


@pytest.mark.timeout(300)
def test_demo_then_import_give_the_same_candles(tmp_path: Path, demo_dir: Path) -> None:
    """The demo is the run's shared one (``demo_dir``: built once, as `make demo` builds it)."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "DAGSTER_DISABLE_TELEMETRY": "1"}
    out = (demo_dir.parent.parent / "demo.log").read_text()
    assert out.startswith("exit 0\n"), out[-4000:]
    assert "all demo checks passed" in out
    sent = int(re.search(r"REPLAY_SENT=(\d+)", out).group(1))  # type: ignore[union-attr]
    shift = int(re.search(r"REPLAY_SHIFT_NS=(-?\d+)", out).group(1))  # type: ignore[union-attr]
    assert shift % (60 * 10**9) == 0 and shift > 0
    # every WebSocket frame of the four files (BTC + ETH spot), nothing else
    assert sent == 179_316
    assert f"raw frames in the lake: {sent:,} (replay sent {sent:,})" in out
    assert "trades BTC-USDT: 19,904 in DuckDB, 19,904 in the recording" in out

    lake = tmp_path / "imported"
    captures = sorted(str(p) for p in (REPO / "demo/data/binance-spot").glob("*.gz"))
    env_import = {**env, "MDP_LAKE": str(lake)}
    mdp = [sys.executable, "-m", "mdplatform"]
    subprocess.run([*mdp, "import-capture", *captures, "--exchange", "binance"], env=env_import, check=True)
    subprocess.run([*mdp, "materialize", "--no-progress"], env=env_import, check=True, capture_output=True)

    live = _candles_1m(demo_dir / "lake" / "warehouse.duckdb", shift)
    imported = _candles_1m(lake / "warehouse.duckdb", 0)
    assert len(imported) == 22  # 11 closed minutes x 2 symbols, 23:54 .. 00:04 (00:05 is not known closed)
    assert imported[0][2] == 1_723_161_240 * 10**9  # 2024-08-08 23:54 UTC
    assert [c[-1] for c in imported] == ([False] + [True] * 10) * 2  # the first minute was seen only in part
    assert live == imported
