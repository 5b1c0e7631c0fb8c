"""Candles that know what was observed, end to end: real recordings through `mdp import-capture` and
`mdp materialize` (Dagster, in process), read back from DuckDB, checked against the full recording and against
an independent plain-Python computation (tests/transforms/candle_reference.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from candle_reference import (
    H00,
    H23,
    MIN,
    as_agg_trades,
    assert_candles_match,
    candle_rows,
    read_lines,
    read_recording,
    reference_candles,
    spot_files,
    usdm_file,
    write_lines,
)
from click.testing import CliRunner

from assets.cli import materialize as materialize_cli
from mdplatform.capture import import_capture
from mdplatform.schemas import REJECTS, TIMEFRAMES
from mdplatform.warehouse import Warehouse, quarantine_path, read_partition

S = 10**9


@dataclass(frozen=True)
class Run:
    lake: str
    candles: pl.DataFrame
    coverage: pl.DataFrame


def run(lake: Path, files: list[Path], exchange: str) -> Run:
    import_capture(files, exchange, str(lake))
    result = CliRunner().invoke(materialize_cli, ["--lake", str(lake), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # the captures here lose trades on purpose: the WARN check on id continuity says so, nothing else may fail
    failed = [line for line in result.output.splitlines() if line.startswith("check failed")]
    assert all(line.startswith("check failed: trades_id_continuity:") for line in failed), result.output
    wh = Warehouse(str(lake / "warehouse.duckdb"))
    return Run(
        str(lake),
        wh.query("SELECT * FROM candles ORDER BY symbol, timeframe, open_time"),
        wh.query("SELECT * FROM coverage ORDER BY symbol, channel, start_time"),
    )


def keyed(candles: pl.DataFrame) -> dict[tuple[str, str, int], dict[str, object]]:
    return {(r["symbol"], r["timeframe"], r["open_time"]): r for r in candle_rows(candles)}


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory, shared_data: Path, dagster_home: str) -> Run:
    return run(tmp_path_factory.mktemp("full") / "lake", spot_files(shared_data), "binance")


def test_usdm_minutes_equal_the_recording_and_the_first_is_not_complete(
    tmp_path: Path, shared_data: Path, dagster_home: str
) -> None:
    """The USD-M recording (23:54:15 .. 23:59:59 local; depth shows exchange time past 00:00:01): 23:55..23:59
    complete and equal, field by field and exactly, to the recording; 23:54 published but not complete; 00:00 not
    known closed."""
    got = run(tmp_path / "lake", [usdm_file(shared_data)], "binance-usdm")
    rec = read_recording([usdm_file(shared_data)])
    start, end = rec.observed
    one = got.candles.filter((pl.col("symbol") == "BTC-USDT-PERP") & (pl.col("timeframe") == "1m"))
    assert [(f"{t:%H:%M}", c) for t, c in one.select("open_time", "complete").iter_rows()] == [
        ("23:54", False),
        ("23:55", True),
        ("23:56", True),
        ("23:57", True),
        ("23:58", True),
        ("23:59", True),
    ]
    # Binance's official kline for 23:54 has 2,950 trades and 196.112 BTC: the recording saw part of the minute
    first = one.row(0, named=True)
    assert (first["trade_count"], first["volume"]) == (1751, Decimal("125.967"))
    expected = reference_candles(rec.trades, [(start, end)], end, start - start % MIN)
    mine = got.candles.filter(pl.col("symbol") == "BTC-USDT-PERP")
    assert_candles_match(candle_rows(mine), expected)
    assert one.filter(pl.col("complete")).get_column("trade_count").to_list() == [2005, 1992, 4717, 7387, 3461]


#: local receive times cut out of the spot recording, as if the collector had been disconnected
CUTS = {
    "inside hour 23": (H23 + 56 * MIN + 10 * S, H23 + 58 * MIN + 40 * S),
    "across the hour and file boundary": (H23 + 58 * MIN + 30 * S, H00 + 1 * MIN + 30 * S),
    "around midnight, under two minutes": (H23 + 59 * MIN + 20 * S, H00 + 50 * S),
    "inside hour 00": (H00 + 2 * MIN + 5 * S, H00 + 3 * MIN + 15 * S),
}


@pytest.mark.parametrize("cut", list(CUTS), ids=[c.replace(" ", "-") for c in CUTS])
def test_an_outage_makes_every_candle_over_it_incomplete(
    cut: str, full: Run, tmp_path: Path, shared_data: Path, dagster_home: str
) -> None:
    lo, hi = CUTS[cut]
    files = []
    for path in spot_files(shared_data):
        files.append(write_lines([(r, f) for r, f in read_lines(path) if not lo <= r < hi], tmp_path / path.name))
    got = run(tmp_path / "lake", files, "binance")
    rec = read_recording(spot_files(shared_data))
    before = max(t.ts for t in rec.trades if t.recv < lo)
    after = min(t.ts for t in rec.trades if t.recv >= hi)
    lost = sum(1 for t in rec.trades if lo <= t.recv < hi)

    ours, whole = keyed(got.candles), keyed(full.candles)
    assert ours, "no candles"
    touched = 0
    for key, row in ours.items():
        _, tf, open_time = key
        overlaps = open_time <= after and before < open_time + TIMEFRAMES[tf]
        if overlaps:
            touched += 1
            assert row["complete"] is False, (cut, key)
        if row["complete"]:
            assert row == whole[key], (cut, key)
    assert touched >= 2
    # a minute wholly inside the outage has no candle at all (nothing was observed, no flat candle is made up)
    inside = [m for m in range(before - before % MIN + MIN, after - MIN, MIN) if m + MIN <= after]
    assert all(("BTC-USDT", "1m", m) not in ours for m in inside)
    # coverage names the outage: the trade stream's gaps span it, with the trades' missing ids counted
    gaps = got.coverage.filter((pl.col("channel") == "trade") & (pl.col("status") == "gap"))
    spans = [(a.timestamp() * S, b.timestamp() * S) for a, b in gaps.select("start_time", "end_time").iter_rows()]
    assert min(a for a, _ in spans) <= before + S and max(b for _, b in spans) >= after - S
    assert gaps.get_column("missing").sum() == lost
    assert set(gaps.get_column("reason")) <= {"silent", "not connected", "id gap"}


def test_aggtrade_only_capture_gives_the_trade_stream_candles(
    full: Run, tmp_path: Path, shared_data: Path, dagster_home: str
) -> None:
    """A capture of only aggTrade (many users collect it; Binance's archives hold it) gives the same candles,
    trade_count and completeness included, as the trade stream; both streams together count each fill once."""
    for name, keep in (("agg", False), ("both", True)):
        paths = spot_files(shared_data)
        converted = as_agg_trades([read_lines(p) for p in paths], keep_trades=keep)
        files = [write_lines(lines, tmp_path / f"{name}-{p.name}") for lines, p in zip(converted, paths, strict=True)]
        got = run(tmp_path / f"lake-{name}", files, "binance")
        assert keyed(got.candles) == keyed(full.candles), name
    trades = Warehouse(str(tmp_path / "lake-agg" / "warehouse.duckdb")).query(
        "SELECT count(*) AS rows, sum(fills) AS fills FROM trades"
    )
    assert trades.row(0)[1] == 19_904 and trades.row(0)[0] < 19_904


def test_a_trade_dated_a_year_ahead_is_quarantined_and_changes_no_candle(
    full: Run, tmp_path: Path, shared_data: Path, dagster_home: str
) -> None:
    first, second = spot_files(shared_data)
    lines = read_lines(first)
    n, (recv, frame) = next((i, x) for i, x in enumerate(lines) if '@trade"' in x[1][:40] and x[0] > H23 + 57 * MIN)
    obj = json.loads(frame)
    obj["data"]["T"] += 365 * 24 * 3600 * 1000
    obj["data"]["E"] += 365 * 24 * 3600 * 1000
    bogus = json.dumps(obj, separators=(",", ":"))
    files = [write_lines([*lines[: n + 1], (recv + 1000, bogus), *lines[n + 1 :]], tmp_path / first.name), second]
    got = run(tmp_path / "lake", files, "binance")
    assert keyed(got.candles) == keyed(full.candles)
    q = read_partition(quarantine_path(got.lake, "trades", H23), REJECTS)
    assert q is not None
    assert q.get_column("payload").to_list() == [bogus]
    assert "ahead of its receive time" in q.get_column("reason").item()


def test_okx_trade_pushed_from_before_the_subscription_starts_no_coverage(
    tmp_path: Path, shared_data: Path, dagster_home: str
) -> None:
    """The real OKX sample: on subscribing, OKX pushed a BTC-USD-220527 trade of 16:26:39.958, 23 s before the
    connection's first exchange time (16:27:03.003). The trade is kept, but it proves nothing about the rest of its
    minute: coverage starts with the connection and the minute gets no candle."""
    got = run(tmp_path / "lake", [shared_data / "cryptofeed-samples/OKX.ws.1.0.gz"], "okx")
    trades = got.coverage.filter((pl.col("symbol") == "BTC-USD-220527") & (pl.col("channel") == "trades"))
    covered = trades.filter(pl.col("status") == "covered").row(0, named=True)
    assert f"{covered['start_time']:%H:%M:%S.%f}" == "16:27:03.003000"
    wh = Warehouse(str(tmp_path / "lake" / "warehouse.duckdb"))
    early = wh.query("SELECT ts FROM trades WHERE symbol = 'BTC-USD-220527' ORDER BY ts LIMIT 1").item()
    assert f"{early:%H:%M:%S.%f}" == "16:26:39.958000"
    assert got.candles.filter(pl.col("symbol") == "BTC-USD-220527").height == 0
