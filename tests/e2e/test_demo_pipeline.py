"""The demo end to end (replay -> live ingestor over a socket -> Dagster -> DuckDB), then the same capture through
`mdp import-capture` + `mdp materialize` at the recording's own times: both give the same 1m candles."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
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


def test_the_demo_checks_are_in_its_dagster_instance(demo_dir: Path) -> None:
    """The Great Expectations suites ran with the demo's hourly runs, and their results are what the Dagster UI of
    the demo (`make dagster`, the same instance) shows on every asset, for each of the demo's hours."""
    from dagster import AssetCheckKey, AssetKey, DagsterInstance

    from assets import CHECKS

    home = demo_dir.parent.parent / "demo-dagster"
    env = (demo_dir / "env.sh").read_text()
    span = re.search(r"export FROM=(\S+) TO=(\S+)", env)
    assert span is not None
    start, stop = (datetime.fromisoformat(t) for t in span.groups())
    hours = [
        (start + timedelta(hours=i)).strftime("%Y-%m-%d-%H:00")
        for i in range(int((stop - start).total_seconds() // 3600))
    ]
    assert hours
    edges = [(start + timedelta(hours=i)).strftime("%Y-%m-%d-%H:00") for i in (-1, len(hours))]
    specs = [spec for checks in CHECKS for spec in checks.check_specs]
    assert {s.asset_key.path[0] for s in specs} >= {"trades", "coverage", "candles", "book_snapshots"}
    with DagsterInstance.from_config(str(home)) as instance:
        for spec in specs:
            key = AssetCheckKey(AssetKey(spec.asset_key.path), spec.name)
            history = instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
            # each hour's check has its result under the hour's partition (none left "planned")
            per_hour = {r.partition: r.status.value for r in history if r.partition is not None}
            assert {h: per_hour.get(h) for h in hours} == dict.fromkeys(hours, "SUCCEEDED"), key.to_user_string()
            # `mdp materialize` also runs the hour before the lake's first trade when the demo started within the
            # lateness of an hour's start (that hour may hold trades received late), and the hour after its last
            # one within the clock-skew bound: those hours, empty, pass too; no other hour has a result
            assert set(per_hour) - set(hours) <= set(edges), (key.to_user_string(), per_hour)
            assert all(per_hour[h] == "SUCCEEDED" for h in per_hour), (key.to_user_string(), per_hour)
