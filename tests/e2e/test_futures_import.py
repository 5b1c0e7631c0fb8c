"""USD-M and COIN-M recordings through `mdp import-capture` + `mdp materialize`: their trades and 1m candles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "demo"))
from verify import MINUTE_NS, compare_candles, recorded_trades, reference_candles_1m  # noqa: E402

FIELDS = (
    "open", "high", "low", "close", "volume", "quote_volume", "trade_count", "taker_buy_volume",
    "taker_buy_quote_volume", "vwap",
)  # fmt: skip


@pytest.mark.timeout(300)
def test_usdm_and_coinm_trades_and_candles(tmp_path: Path, shared_data: Path) -> None:
    lake = tmp_path / "lake"
    env = {**os.environ, "MDP_LAKE": str(lake), "DAGSTER_HOME": str(tmp_path / "dagster")}
    mdp = [sys.executable, "-m", "mdplatform"]
    markets = {
        "binance-usdm": sorted((shared_data / "binance-hftbacktest/usdm").glob("*.gz")),
        "binance-coinm": sorted((shared_data / "binance-hftbacktest/cm").glob("*.gz")),
    }
    for exchange, files in markets.items():
        subprocess.run([*mdp, "import-capture", *map(str, files), "--exchange", exchange], env=env, check=True)
    subprocess.run([*mdp, "materialize", "--no-progress"], env=env, check=True, capture_output=True)

    con = duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True)
    names = {"BTCUSDT": "BTC-USDT-PERP", "ETHUSDT": "ETH-USDT-PERP", "BTCUSD_PERP": "BTC-USD-PERP"}
    expected_counts = {"BTC-USDT-PERP": 21_313, "ETH-USDT-PERP": 14_076, "BTC-USD-PERP": 5_235}
    for exchange, files in markets.items():
        for symbol, trades in recorded_trades(files).items():
            name = names[symbol]
            got = con.execute(
                "select count(*), count(distinct trade_id), sum(size) from trades where exchange = ? and symbol = ?",
                [exchange, name],
            ).fetchall()[0]
            assert got[0] == got[1] == len(trades) == expected_counts[name]
            assert got[2] == pytest.approx(sum(t[3] for t in trades), rel=1e-12)
            rows = con.execute(
                f"select epoch_ns(open_time), {', '.join(FIELDS)} from candles "
                "where exchange = ? and symbol = ? and timeframe = '1m' order by open_time",
                [exchange, name],
            ).fetchall()
            ours = {int(r[0]): dict(zip(FIELDS, map(float, r[1:]), strict=True)) for r in rows}
            # closed: minutes ending at or before the exchange's newest trade less the 1 s grace
            newest = max(t[0] for ts in recorded_trades(files).values() for t in ts)
            until = (newest - 10**9) - (newest - 10**9) % MINUTE_NS
            reference = reference_candles_1m(trades, until)
            assert len(ours) >= 5
            assert compare_candles(ours, reference) == []
