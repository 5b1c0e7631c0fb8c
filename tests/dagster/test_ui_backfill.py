"""A backfill launched from the Dagster UI, exactly as the UI launches it, on the webserver and daemon `make dagster`
starts, with the configuration users get (books and pictures on).

The lake is the demo capture (BTC and ETH spot, 2024-08-08 23:54 .. 2024-08-09 00:05) imported with
`mdp import-capture` (tests/dagster/_ui_server.py). The backfill covers its two hours with every partitioned asset
selected (as "Materialize all" does: trades, coverage, candles and the four book assets), sent as the UI's "Launch
backfill" sends it (`launchPartitionBackfill` with `assetSelection` and `partitionNames`, the `dagster/from_ui`
tag). Before the book multi-asset could be subset, this selection failed at launch (HTTP 500: "Targeted subset must
match between every key in a non-subsettable multi-asset"). Every run must succeed, every asset must be materialized
for both hours, and the candles and book snapshots in DuckDB must equal, row for row, those `mdp materialize` writes
for the same hours into another warehouse (from a copy of the same raw lake, under its own Dagster instance).

Most of the test's minutes are the backfill daemon's fixed 30 s between iterations: one per layer of the graph
whose assets cannot share a run (a self-dependent asset is never launched with its parents).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from tests.dagster._ui_server import ASSET_NODES, CAPTURES, HOURS, LAUNCH, dagster_ui, demo_env, import_demo

REPO = Path(__file__).resolve().parents[2]
FIRST, END = "2024-08-08 23:00:00+00", "2024-08-09 01:00:00+00"
#: the hourly assets, and the lake folders each writes an hour partition to
TABLES = {
    "trades": ["trades"],
    "coverage": ["coverage"],
    "candles": ["candles"],
    "book_snapshots": ["book_snapshots", "book_invalid", "book_checkpoints"],
    "book_heatmap": ["book_heatmap"],
    "trade_heatmap": ["trade_heatmap"],
    "consolidated_book": ["consolidated_book"],
}


def _rows(warehouse: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, [FIRST, END]).fetchall()
    finally:
        con.close()


CANDLES = (
    "SELECT * FROM candles WHERE close_time > ?::TIMESTAMPTZ AND close_time <= ?::TIMESTAMPTZ "
    "ORDER BY exchange, symbol, timeframe, open_time"
)
SNAPSHOTS = (
    "SELECT ts, exchange, symbol, update_id, bid_price, ask_price, bid_depth_25bps FROM book_snapshots "
    "WHERE ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ ORDER BY exchange, symbol, ts"
)


def _assert_explained(nodes: list[dict[str, Any]]) -> None:
    """What the UI shows of each asset: the raw layer as an observable source upstream of trades and coverage, and
    for it and every hourly asset a description and a column schema (dagster/column_schema) whose every column has a
    type and a description."""
    by_key = {n["assetKey"]["path"][0]: n for n in nodes}
    raw = by_key["raw"]
    assert raw["isObservable"] and not raw["isMaterializable"] and not raw["isPartitioned"]
    for name in ("trades", "coverage"):
        assert {"raw"} <= {k["path"][0] for k in by_key[name]["dependencyKeys"]}, name
    for name in ["raw", *TABLES]:
        node = by_key[name]
        assert node["description"], name
        (schema,) = [e["schema"] for e in node["metadataEntries"] if e["label"] == "dagster/column_schema"]
        columns = schema["columns"]
        assert len(columns) >= 5 and all(c["type"] and c["description"] for c in columns), (name, columns)
    names = {c["name"] for e in by_key["candles"]["metadataEntries"] if "schema" in e for c in e["schema"]["columns"]}
    assert {"open", "high", "low", "close", "volume", "complete", "coverage"} <= names


# most of its minutes are waiting for the daemon's 30 s backfill ticks: it runs beside the CPU-bound suite
@pytest.mark.waits
@pytest.mark.timeout(600)
def test_ui_backfill_of_every_asset_with_books(tmp_path: Path) -> None:
    env = demo_env(tmp_path)
    import_demo(env)
    lake = Path(env["MDP_LAKE"])
    shutil.copytree(lake, tmp_path / "lake-cli")  # the same raw lake for `mdp materialize`

    with dagster_ui(env, tmp_path) as dagster:
        locations = dagster.wait_loaded(timeout=180)
        assert [loc["name"] for loc in locations] == ["mdplatform"]  # workspace.yaml's location_name
        dagster.stop_sensors(locations)
        startup = dagster.warnings()  # (later, a loaded machine may delay a code server's heartbeat: not ours)
        _assert_explained(dagster.gql(ASSET_NODES)["assetNodes"])
        assets = dagster.partitioned_assets()
        # every one there is (other assets may join them: the backfill takes them all, as the UI would)
        assert {a[0] for a in assets} >= set(TABLES), assets

        # meanwhile, `mdp materialize` over the same hours: another lake copy, warehouse and Dagster instance
        cli_env = {**env, "DAGSTER_HOME": str(tmp_path / "dagster-cli"), "MDP_LAKE": str(tmp_path / "lake-cli")}
        cli_env["MDP_WAREHOUSE"] = str(tmp_path / "cli.duckdb")
        cli = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mdplatform",
                "materialize",
                "--from",
                "2024-08-08T23:00",
                "--to",
                "2024-08-09T01:00",
                "--no-progress",
            ],
            env=cli_env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

        launched = time.monotonic()
        params = {
            "tags": [{"key": "dagster/from_ui", "value": "true"}],
            "assetSelection": [{"path": a} for a in assets],
            "partitionNames": HOURS,
            "fromFailure": False,
        }
        result = dagster.gql(LAUNCH, {"backfillParams": params})["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result

        cli_out, _ = cli.communicate(timeout=300)
        assert cli.returncode == 0, cli_out

        runs = dagster.wait_backfill(result["backfillId"], assets, timeout=420)
        elapsed = time.monotonic() - launched
        for asset in assets:
            assert dagster.materialized(asset) == set(HOURS), asset

    print(
        f"UI backfill of every asset over {len(HOURS)} hours: {elapsed:.1f} s, {len(runs)} runs: "
        + "; ".join(
            f"{sorted(k['path'][0] for k in r['assetSelection'])} {r['endTime'] - r['startTime']:.1f} s" for r in runs
        )
    )
    # the single-run policy: a run covers a range of hours, not one hour; the first layer (trades) the whole range.
    # A later layer may be launched for the hours its parents have finished while their run goes on (the daemon
    # does not wait for a whole run: seen under load, a run of candles and books for 00:00 alone beside another):
    # every asset's runs then cover the whole range between them
    covered: dict[str, list[str]] = {}
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert run["jobName"] == "__ASSET_JOB"
        first, last = tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]
        span = HOURS[HOURS.index(first) : HOURS.index(last) + 1]
        assert span, (first, last)
        names = [k["path"][0] for k in run["assetSelection"]]
        if "trades" in names:
            assert span == HOURS, (names, first, last)
        for name in names:
            covered.setdefault(name, []).extend(span)
    assert {name: set(hours) for name, hours in covered.items()} == {a[0]: set(HOURS) for a in assets}
    for asset, folders in TABLES.items():
        for folder in folders:
            for hour in ("date=2024-08-08/hour=23", "date=2024-08-09/hour=00"):
                assert (lake / folder / hour / "data.parquet").is_file(), (asset, folder, hour)
    for table in ("book_heatmap", "trade_heatmap"):  # the pictures, outside the tables' folders
        assert sorted(p.name for p in (lake / "pictures" / table / "date=2024-08-09/hour=00").glob("*.png")) == [
            "binance_BTC-USDT.png",
            "binance_ETH-USDT.png",
        ], table

    ui, cli_rows = _rows(tmp_path / "ui.duckdb", CANDLES), _rows(tmp_path / "cli.duckdb", CANDLES)
    assert len(ui) > 20 and {r[1] for r in ui} == {"BTC-USDT", "ETH-USDT"}
    assert ui == cli_rows
    ui_books, cli_books = _rows(tmp_path / "ui.duckdb", SNAPSHOTS), _rows(tmp_path / "cli.duckdb", SNAPSHOTS)
    assert len(ui_books) > 1000 and {r[2] for r in ui_books} == {"BTC-USDT", "ETH-USDT"}
    assert ui_books == cli_books
    # no start-up warning of Dagster's that the project can avoid (webserver, daemon, their code servers)
    assert startup == [], startup


def test_a_range_run_loops_its_hours_in_order(tmp_path: Path, dagster_home: str) -> None:
    """What each of the backfill's runs does, in process: a run over a range of hours (the range tags a single-run
    backfill sets) materializes them in order, each hour's materialization carries that hour's own numbers, the checks
    cover every hour; a failing hour is named as a time, after the hours before it were written."""
    from dagster import DagsterInstance

    from assets import MdpResource, definitions_for, hourly_partitions
    from assets.partitions import mdp_start
    from mdplatform.capture import import_capture

    lake = str(tmp_path / "lake")
    import_capture(CAPTURES, "binance", lake)
    os.environ.pop("MDP_START", None)
    assert f"{mdp_start(lake):%Y-%m-%d %H:%M}" == "2024-08-08 23:00"  # the lake's first hour
    parts = hourly_partitions(mdp_start(lake))
    defs = definitions_for(parts, {"mdp": MdpResource(lake=lake, warehouse=str(tmp_path / "wh.duckdb"))})

    def run(job: str, first: str, last: str):  # type: ignore[no-untyped-def]
        tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        return defs.resolve_job_def(job).execute_in_process(
            tags=tags, instance=DagsterInstance.get(), raise_on_error=False
        )

    result = run("mdp_hourly", HOURS[0], HOURS[1])
    assert result.success
    checks_run = {(e.check_name, e.passed) for e in result.get_asset_check_evaluations()}
    # every check of the assets run, the GX suites of mdplatform.quality (assets/_checks.py)
    assert checks_run == {
        (name, True)
        for name in (
            "trades_valid",
            "trades_id_continuity",
            "trades_cross_exchange",
            "trades_quarantine_and_late",
            "coverage_valid",
            "candles_valid",
            "quarantine_valid",
        )
    }
    # one materialization per partition, each with its own hour's numbers and file (MDP_BOOKS=0 here:
    # tests/conftest.py), as a run of that hour alone records
    mats = result.get_asset_materialization_events()
    every = ("trades", "coverage", "candles", "quarantine")
    assert sorted((m.asset_key.path[0], m.partition) for m in mats) == sorted(
        (key, hour) for key in every for hour in HOURS
    )
    meta = {(m.asset_key.path[0], m.partition): m.materialization.metadata for m in mats}
    for hour in HOURS:
        for key in every:
            path = meta[key, hour]["path"].value
            assert f"hour={hour[-5:-3]}" in path, (key, hour, path)
            assert meta[key, hour]["dagster/row_count"].value == pl.read_parquet(path).height
        candles = pl.read_parquet(meta["candles", hour]["path"].value)
        assert meta["candles", hour]["rows_by_timeframe"].value["1m"] == candles.filter(timeframe="1m").height
        assert "by_hour" not in meta["trades", hour]
    # both hours hold trades (the capture spans midnight): a range's sum on each hour would be caught above
    assert all(meta["trades", hour]["dagster/row_count"].value > 0 for hour in HOURS)

    # the trades of 01:00 were never materialized: candles over 00:00 .. 01:00 write 00:00, then fail naming 01:00
    failed = run("mdp_candles", HOURS[1], "2024-08-09-01:00")
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "trades partition for 2024-08-09 01:00 UTC is not materialized" in str(failure.event_specific_data)
    logs = DagsterInstance.get().all_logs(failed.run_id)
    assert any(
        "candles for 2024-08-09 01:00 UTC failed (hour 2 of 2; 2024-08-09 00:00 UTC already written)"
        in (e.user_message or "")
        for e in logs
    )
