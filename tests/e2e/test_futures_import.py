"""USD-M and COIN-M recordings through `mdp import-capture` + `mdp materialize` (subprocesses, as a user runs
them): their trades, and every candle against the independent reference, exactly, completeness included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from candle_reference import MIN, assert_candles_match, candle_rows, read_recording, reference_candles

from mdplatform.warehouse import Warehouse

NAMES = {"BTCUSDT": "BTC-USDT-PERP", "ETHUSDT": "ETH-USDT-PERP", "BTCUSD_PERP": "BTC-USD-PERP"}
COUNTS = {"BTC-USDT-PERP": 21_313, "ETH-USDT-PERP": 14_076, "BTC-USD-PERP": 5_235}


@pytest.mark.timeout(300)
def test_usdm_and_coinm_trades_and_candles(tmp_path: Path, shared_data: Path) -> None:
    lake = tmp_path / "lake"
    env = {**os.environ, "MDP_LAKE": str(lake), "DAGSTER_HOME": str(tmp_path / "dagster")}
    mdp = [sys.executable, "-m", "mdplatform"]
    base = shared_data / "binance-hftbacktest"
    # one recording per symbol: its files (COIN-M's two run on from one another)
    recordings = {
        ("binance-usdm", "BTC-USDT-PERP"): [base / "usdm/btcusdt_20240808.gz"],
        ("binance-usdm", "ETH-USDT-PERP"): [base / "usdm/ethusdt_20240808.gz"],
        ("binance-coinm", "BTC-USD-PERP"): sorted((base / "cm").glob("*.gz")),
    }
    for exchange in ("binance-usdm", "binance-coinm"):
        files = [str(f) for (ex, _), fs in recordings.items() if ex == exchange for f in fs]
        subprocess.run([*mdp, "import-capture", *files, "--exchange", exchange], env=env, check=True)
    out = subprocess.run([*mdp, "materialize", "--no-progress"], env=env, check=True, capture_output=True, text=True)
    assert "check failed" not in out.stderr

    wh = Warehouse(str(lake / "warehouse.duckdb"))
    for (exchange, name), files in recordings.items():
        rec = read_recording(files)
        got = wh.query(
            "SELECT count(*), count(DISTINCT trade_id), sum(size), sum(fills) FROM trades "
            "WHERE exchange = ? AND symbol = ?",
            [exchange, name],
        ).row(0)
        assert got == (COUNTS[name], COUNTS[name], sum(t.size for t in rec.trades), COUNTS[name])
        candles = wh.query("SELECT * FROM candles WHERE exchange = ? AND symbol = ?", [exchange, name])
        start, end = rec.observed
        assert_candles_match(
            candle_rows(candles), reference_candles(rec.trades, [(start, end)], end, start - start % MIN)
        )
        one = candles.filter(pl.col("timeframe") == "1m").sort("open_time")
        # the first minute is partial; every later one is complete
        assert one.get_column("complete").to_list() == [False] + [True] * (one.height - 1)
        assert one.height >= 6
