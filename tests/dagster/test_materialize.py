"""The Dagster assets end to end on the real Binance spot recording: raw lake -> trades/candles in the lake
and in DuckDB, through `mdp materialize` (the CLI) and `dagster.materialize`, with the asset checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from candle_reference import (
    H00,
    H23,
    HOUR,
    MIN,
    assert_candles_match,
    candle_rows,
    quiet_files,
    read_recording,
    reference_candles,
    spot_files,
)
from click.testing import CliRunner
from dagster import (
    AssetChecksDefinition,
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    DagsterInstance,
    Definitions,
    define_asset_job,
    materialize,
)

from assets import (
    HOURLY,
    MdpResource,
    candles,
    candles_valid,
    hour_key,
    hourly_assets,
    hourly_checks,
    hourly_partitions,
    trades_and_coverage,
    trades_valid,
)
from assets.cli import materialize as materialize_cli
from mdplatform.capture import import_capture
from mdplatform.lake import RawWriter
from mdplatform.schemas import CANDLES, COVERAGE, TRADES
from mdplatform.warehouse import Warehouse, partition_path, quarantine_path, read_partition, write_partition

# the recording's hours: the partitions loaded for $MDP_LAKE start elsewhere (an empty ./lake: a few days back)
SPOT = hourly_partitions(datetime(2024, 8, 8, tzinfo=UTC))
ALL = [*hourly_assets(SPOT), *hourly_checks(SPOT)]


def _ts(ns: int) -> object:
    return pl.Series([ns]).cast(pl.Datetime("ns", "UTC")).to_list()[0]


def _candle_rows(wh: Warehouse, hour: int) -> list[dict[str, object]]:
    df = wh.query("SELECT * FROM candles WHERE close_time > ? AND close_time <= ?", [_ts(hour), _ts(hour + HOUR)])
    return candle_rows(df)


def _reference(rec_trades: list, observed: tuple[int, int], hour: int) -> list[dict[str, object]]:  # type: ignore[type-arg]
    start, end = observed
    every = reference_candles(rec_trades, [(start, end)], end, start - start % MIN)
    return [c for c in every if hour < int(c["close_time"]) <= hour + HOUR]  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def spot_run(tmp_path_factory: pytest.TempPathFactory, shared_data: Path, dagster_home: str) -> tuple[str, str]:
    """The spot recording imported and materialized by `mdp materialize` (default range: the lake's hours)."""
    root = str(tmp_path_factory.mktemp("spot") / "lake")
    import_capture(spot_files(shared_data), "binance", root)
    result = CliRunner().invoke(materialize_cli, ["--lake", root, "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root, result.output


@pytest.fixture
def spot_lake(spot_run: tuple[str, str]) -> str:
    return spot_run[0]


def test_cli_materializes_the_recording(spot_run: tuple[str, str], dagster_home: str) -> None:
    out = spot_run[1]
    assert "materialized 2 hour(s) 2024-08-08 23:00 .. 2024-08-09 01:00" in out
    line = next(x for x in out.splitlines() if x.startswith("binance/BTC-USDT"))
    # trades, fills, complete/published per timeframe, coverage gaps: hour 23 before the recording began on the
    # three streams (3 x 3,255 s), and 1 s of each book stream between the two files (no ids bridge them)
    assert line.split() == [
        "binance/BTC-USDT", "19904", "19904", "10/11", "2/3", "0/1", "0/1", "0/1", "0/1", "5", "(9768", "s)"
    ]  # fmt: skip
    assert "check failed" not in out
    # the range is one run over its two hours
    runs = DagsterInstance.get().get_runs()
    assert [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in runs
    ] == [("2024-08-08-23:00", "2024-08-09-00:00")]
    assert all(r.is_success for r in runs)


def test_warehouse_holds_the_recording(spot_lake: str, shared_data: Path) -> None:
    rec = read_recording(spot_files(shared_data))
    wh = Warehouse(str(Path(spot_lake) / "warehouse.duckdb"))
    counts = wh.query(
        "SELECT exchange, symbol, count(*) AS n, count(DISTINCT trade_id) AS ids FROM trades GROUP BY ALL"
    )
    assert counts.rows() == [("binance", "BTC-USDT", 19_904, 19_904)]
    for hour in (H23, H00):
        expected = _reference(rec.trades, rec.observed, hour)
        assert_candles_match(_candle_rows(wh, hour), expected)
        lake = read_partition(partition_path(spot_lake, "candles", hour), CANDLES)
        assert lake is not None and lake.height == len(expected)
        cov = read_partition(partition_path(spot_lake, "coverage", hour), COVERAGE)
        assert cov is not None and set(cov.get_column("channel")) == {"trade", "depth", "bookTicker"}
    assert wh.query("SELECT count(*) FROM raw").item() == 99_574  # the raw lake view
    gaps = wh.query("SELECT channel, reason, count(*) AS n FROM coverage_gaps GROUP BY ALL ORDER BY ALL")
    # before the recording began in hour 23; the book streams between the two files (no ids bridge them)
    assert gaps.rows() == [
        ("bookTicker", "not connected", 2),
        ("depth", "not connected", 2),
        ("trade", "not connected", 1),
    ]


def test_rerun_replaces_and_checks_pass(spot_lake: str, dagster_home: str) -> None:
    wh = Warehouse(str(Path(spot_lake) / "warehouse.duckdb"))
    before = wh.query("SELECT count(*) FROM candles").item()
    result = materialize(
        ALL,
        partition_key=hour_key(H00),
        instance=DagsterInstance.get(),
        resources={"mdp": MdpResource(lake=spot_lake)},
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "trades_valid": True,
        "trades_id_continuity": True,
        "trades_cross_exchange": True,
        "trades_quarantine_and_late": True,
        "coverage_valid": True,
        "candles_valid": True,
        "quarantine_valid": True,
        "book_snapshots_valid": True,
        "book_snapshots_expectations": True,
        "book_heatmap_valid": True,
        "book_heatmap_expectations": True,
        "trade_heatmap_valid": True,
        "consolidated_book_valid": True,
    }
    assert wh.query("SELECT count(*), count(DISTINCT trade_id) FROM trades").row(0) == (19_904, 19_904)
    assert wh.query("SELECT count(*) FROM candles").item() == before
    dup = wh.query(
        "SELECT count(*) FROM (SELECT 1 FROM candles "
        "GROUP BY exchange, symbol, timeframe, open_time HAVING count(*) > 1)"
    )
    assert dup.item() == 0
    meta = {e.asset_key.path[0]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert meta["trades"]["dagster/row_count"].value == 10166
    assert meta["trades"]["pg_rows_replaced"].value == 0  # no PostgreSQL here (tests/postgres load it)
    assert meta["trades"]["rows_by_symbol"].value == {"binance/BTC-USDT": 10166}
    # 00:00 .. 00:04: the last trade is at 00:05:04, so 00:04 is known closed, 00:05 is not
    assert meta["candles"]["rows_by_timeframe"].value["1m"] == 5
    assert meta["candles"]["incomplete_by_timeframe"].value == {}
    assert meta["coverage"]["gap_seconds_by_reason"].value == {"not connected": 2.004}


def _run_check(lake: str, hour: int, check: AssetChecksDefinition) -> tuple[bool, str]:
    """Only the check, for one partition (as "Execute check" in the UI does): a job selecting just it."""
    job = define_asset_job("check_only", selection=AssetSelection.checks(check), partitions_def=HOURLY)
    defs = Definitions(
        assets=[trades_and_coverage, candles],
        asset_checks=[check],
        jobs=[job],
        resources={"mdp": MdpResource(lake=lake)},
    )
    # partition_key= is refused for a selection without assets (Dagster 1.13), the partition tag is not
    # a failed blocking check fails its step (and the run): the evaluation is what this reads
    result = defs.resolve_job_def("check_only").execute_in_process(
        tags={"dagster/partition": hour_key(hour)}, instance=DagsterInstance.get(), raise_on_error=False
    )
    (ev,) = result.get_asset_check_evaluations()
    return ev.passed, json.dumps(ev.metadata["problems"].value)


def test_corrupted_partitions_fail_the_checks(spot_lake: str) -> None:
    cpath = partition_path(spot_lake, "candles", H23)
    good = read_partition(cpath, CANDLES)
    assert good is not None
    assert _run_check(spot_lake, H23, candles_valid) == (True, "[]")
    bad = good.with_columns(high=pl.when(pl.int_range(pl.len()) == 0).then(pl.col("low") - 1).otherwise(pl.col("high")))
    write_partition(cpath, bad)
    passed, problems = _run_check(spot_lake, H23, candles_valid)
    assert not passed and "candles: OHLC in order (low <= open, close <= high): 1 of" in problems

    tpath = partition_path(spot_lake, "trades", H23)
    tgood = read_partition(tpath, TRADES)
    assert tgood is not None
    write_partition(tpath, pl.concat([tgood, tgood.head(5)]))
    passed, problems = _run_check(spot_lake, H23, trades_valid)
    assert not passed and "trades: one row per (exchange, symbol, trade_id): 10 of" in problems
    write_partition(tpath, tgood)
    write_partition(cpath, good)


def test_quiet_market_flat_minutes_and_quarantine(
    tmp_path: Path, shared_data: Path, dagster_home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quiet market from the real recording (only the trades of >= 0.8 BTC, renumbered so their ids stay
    contiguous): flat minutes, one of them at 00:00 continuing hour 23's last close read from the stored 1m
    candles; two torn frames from a second writer land in the quarantine."""
    files = quiet_files(shared_data, tmp_path)
    rec = read_recording(files)
    root = str(tmp_path / "lake")
    import_capture(files, "binance", root)
    torn = '{"stream":"btcusdt@trade","data":{"e":"trade","E":17231'
    with RawWriter(root, writer_id="torn") as writer:
        for i, recv in enumerate((H00 - 40 * 10**9, H00 - 20 * 10**9)):
            writer.append(recv, "binance", "trade", "BTCUSDT", "torn", i + 1, torn)
    instance = DagsterInstance.get()
    res = {"mdp": MdpResource(lake=root)}
    metas = {}
    for hour in (H23, H00):
        result = materialize(ALL, partition_key=hour_key(hour), instance=instance, resources=res)
        assert result.success
        failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
        # the two torn frames are more than 0.1 % of a quiet hour's raw rows: the WARN check says so, nothing stops
        assert failed == (["trades_quarantine_and_late"] if hour == H23 else [])
        metas[hour] = {
            e.asset_key.path[0]: e.materialization.metadata for e in result.get_asset_materialization_events()
        }
    assert metas[H23]["trades"]["rejects"].value == 2 and metas[H00]["trades"]["rejects"].value == 0
    q = read_partition(
        quarantine_path(root, "trades", H23),
        {"seq": pl.Int64(), "payload": pl.String(), "reason": pl.String()},
    )
    assert q is not None and q.get_column("payload").to_list() == [torn, torn]
    assert q.get_column("reason").null_count() == 0
    assert read_partition(quarantine_path(root, "trades", H00), TRADES) is None

    wh = Warehouse(str(Path(root) / "warehouse.duckdb"))
    assert wh.query("SELECT count(*) FROM trades").item() == len(rec.trades)
    for hour in (H23, H00):
        assert_candles_match(_candle_rows(wh, hour), _reference(rec.trades, rec.observed, hour))
    flat = wh.query(
        "SELECT open, close, volume, trade_count, complete FROM candles WHERE timeframe = '1m' AND open_time = ?",
        [_ts(H00)],
    )
    last_before = [t for t in rec.trades if t.ts < H00][-1].price
    assert flat.rows() == [(last_before, last_before, Decimal(0), 0, True)]

    # the same two hours as one run (`mdp materialize` over a range): each hour's materialization carries its own
    # numbers, and the command's totals count each hour once (they read every hour's event); computed side by side
    # (two hour workers: the default on machines with more than two cores)
    monkeypatch.setenv("MDP_HOUR_WORKERS", "2")
    out = CliRunner().invoke(
        materialize_cli,
        ["--lake", root, "--no-progress", "--from", "2024-08-08T23", "--to", "2024-08-09T01"],
        catch_exceptions=False,
    )
    assert out.exit_code == 0, out.output
    assert "materialized 2 hour(s)" in out.output and "late trades 0, rejects 2;" in out.output
    newest = {
        hour: instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey("trades"), asset_partitions=[hour_key(hour)]), limit=1
        )
        .records[0]
        .asset_materialization
        for hour in (H23, H00)
    }
    assert {h: m.metadata["rejects"].value for h, m in newest.items() if m} == {H23: 2, H00: 0}
    assert sum(m.metadata["dagster/row_count"].value for m in newest.values() if m) == len(rec.trades)
