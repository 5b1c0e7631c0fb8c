"""The Great Expectations checks as Dagster runs them, on the bundled real recording (demo/data), one hourly run per
hour as the sensor launches them, books on: a corrupted trades partition fails the ERROR check ``trades_valid`` with
a readable message, and what depends on trades (candles, the book assets) is not built for that hour, while the
next hour goes on; every asset has checks, the quarantine is an asset and a DuckDB view."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from dagster import AssetCheckSeverity, DagsterInstance

from assets import MdpResource, definitions_for, hour_key, hourly_partitions
from mdplatform.capture import import_capture
from mdplatform.lake import RawWriter
from mdplatform.warehouse import Warehouse, partition_exists, partition_path

REPO = Path(__file__).resolve().parents[2]
H23 = int(datetime(2024, 8, 8, 23, tzinfo=UTC).timestamp()) * 10**9
H00 = H23 + 3600 * 10**9
SPOT = hourly_partitions(datetime(2024, 8, 8, tzinfo=UTC))
EVERY_ASSET = {"trades", "coverage", "candles", "quarantine", "book_snapshots", "book_heatmap", "trade_heatmap"}
EVERY_ASSET |= {"consolidated_book"}
#: a trade frame cut short (as a second writer's torn write would leave it)
TORN = '{"stream":"btcusdt@trade","data":{"e":"trade","E":17231'


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, dagster_home: str) -> Iterator[tuple[str, dict[int, Any]]]:
    """The demo recording with a torn trade frame at 00:01 (quarantined); the trades partition of 23:00 written
    with three rows twice (a writer gone wrong); then the hourly job for 23:00 and for 00:00, one run each."""
    import assets._hourly

    root = str(tmp_path_factory.mktemp("checks") / "lake")
    import_capture(sorted((REPO / "demo" / "data" / "binance-spot").glob("*.gz")), "binance", root)
    with RawWriter(root, writer_id="torn") as writer:
        writer.append(H00 + 60 * 10**9, "binance", "trade", "BTCUSDT", "torn", 1, TORN)
    write = assets._hourly.write_partition

    def corrupting(path: str, df: pl.DataFrame) -> None:
        if path == partition_path(root, "trades", H23):
            df = pl.concat([df, df.head(3)]).sort("exchange", "symbol", "ts", maintain_order=True)
        write(path, df)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_BOOKS", "1")
        mp.setattr(assets._hourly, "write_partition", corrupting)
        job = definitions_for(SPOT, {"mdp": MdpResource(lake=root)}).resolve_job_def("mdp_hourly")
        instance = DagsterInstance.get()
        results = {
            hour: job.execute_in_process(partition_key=hour_key(hour), instance=instance, raise_on_error=False)
            for hour in (H23, H00)
        }
        yield root, results


def test_a_failed_error_check_stops_what_depends_on_the_hour(runs: tuple[str, dict[int, Any]]) -> None:
    root, results = runs
    bad, good = results[H23], results[H00]
    assert not bad.success and good.success

    checks = {e.check_name: e for e in bad.get_asset_check_evaluations()}
    failed = checks["trades_valid"]
    assert not failed.passed and failed.severity == AssetCheckSeverity.ERROR
    assert failed.description == "trades: one row per (exchange, symbol, trade_id): 6 of 15839 trades fail"
    meta = failed.metadata
    assert meta["failing_rows"].value == 6
    (examples,) = meta["examples"].value.values()
    assert len(examples) == 5 and {row["symbol"] for row in examples} <= {"BTC-USDT", "ETH-USDT"}
    assert meta["rules"].value["trades: one row per (exchange, symbol, trade_id)"] == 6
    assert meta["rules"].value["trades: price > 0"] == 0
    page = Path(meta["data_docs"].value)
    assert page.is_file() and page.is_relative_to(Path(root) / "quality" / "data_docs")
    assert "one row per (exchange, symbol, trade_id)" in page.read_text()

    # trades, coverage and the hour's quarantine (written with them) were written; nothing was built from them
    built = {e.asset_key.path[0] for e in bad.get_asset_materialization_events()}
    assert built == {"trades", "coverage", "quarantine"}
    for table in ("candles", "book_snapshots", "trade_heatmap", "consolidated_book"):
        assert not partition_exists(root, table, H23), table
    # the checks of what was not built did not run; coverage's passed
    assert "candles_valid" not in checks and checks["coverage_valid"].passed

    # 00:00 went on: every asset built, every check of every asset ran and passed
    assert {e.asset_key.path[0] for e in good.get_asset_materialization_events()} == EVERY_ASSET
    ran = {(e.asset_key.path[0], e.check_name): e.passed for e in good.get_asset_check_evaluations()}
    assert {asset for asset, _ in ran} == EVERY_ASSET
    assert all(ran.values()), [k for k, ok in ran.items() if not ok]
    assert partition_exists(root, "candles", H00)


def test_the_quarantine_is_an_asset_and_a_view(runs: tuple[str, dict[int, Any]]) -> None:
    root, results = runs
    (mat,) = [e for e in results[H00].get_asset_materialization_events() if e.asset_key.path[0] == "quarantine"]
    meta = mat.materialization.metadata
    assert meta["dagster/row_count"].value == 1
    ((reason, n),) = meta["by_reason"].value.items()
    assert n == 1 and reason in meta["reasons"].value  # the markdown table of counts per reason
    wh = Warehouse(str(Path(root) / "warehouse.duckdb"))
    rows = wh.query("SELECT stage, reason, conn_id, seq, source, payload FROM quarantine_rows")
    assert rows.rows() == [("normalize", reason, "torn", 1, "raw/exchange=binance/date=2024-08-09/hour=00", TORN)]
    counts = {e.check_name: e.metadata for e in results[H00].get_asset_check_evaluations()}
    assert counts["trades_quarantine_and_late"]["rejects"].value == 1


def test_the_counts_check_reads_each_hours_newest_materialization(dagster_home: str) -> None:
    """``trades_quarantine_and_late`` takes each hour's numbers from the newest materialization of its partition,
    all the hours of a range in one query a page: an hour materialized again (120 times: more records than a page)
    gives its last numbers, an hour never materialized none."""
    from types import SimpleNamespace

    from dagster import AssetMaterialization

    from assets._checks import _trades_counts

    hours = [H23 + i * 3600 * 10**9 for i in range(30)]
    instance = DagsterInstance.ephemeral()
    for i, hour in enumerate(hours[:-1]):
        for again in range(120 if i == 3 else 1):
            meta = {"dagster/row_count": 1000 + i, "raw_rows_read": 2000 + i, "rejects": again, "late_trades": i}
            instance.report_runless_asset_event(
                AssetMaterialization(asset_key="trades", partition=hour_key(hour), metadata=meta)
            )
    counts = _trades_counts(SimpleNamespace(instance=instance), hours)  # type: ignore[arg-type]
    assert list(counts) == hours
    assert counts[hours[0]] == {"rows": 1000, "raw_rows_read": 2000, "rejects": 0, "late_trades": 0}
    assert counts[hours[3]] == {"rows": 1003, "raw_rows_read": 2003, "rejects": 119, "late_trades": 3}
    assert counts[hours[-1]] == {}
