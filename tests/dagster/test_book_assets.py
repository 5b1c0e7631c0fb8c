"""The book assets end to end on the real Binance spot recording (BTCUSDT, 23:54:13 to 00:05:04 across two hour
partitions): `mdp materialize` rebuilds the book, samples it, draws heatmaps and the consolidated view; what lands
in the lake and DuckDB is checked against the recording itself and against an uninterrupted rebuild."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl
import pytest
from candle_reference import H00, H23, HOUR, spot_files
from click.testing import CliRunner
from dagster import DagsterInstance, materialize

from assets import MdpResource, hour_key, hourly_assets, hourly_checks, hourly_partitions
from assets._pictures import INLINE_LIMIT
from assets.cli import materialize as materialize_cli
from mdplatform.book import book_samples
from mdplatform.capture import import_capture
from mdplatform.exchanges import get_exchange
from mdplatform.lake import read_raw
from mdplatform.plots import PNG_SIGNATURE
from mdplatform.warehouse import Warehouse

S = 1_000_000_000


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, shared_data: Path, dagster_home: str) -> str:
    root = str(tmp_path_factory.mktemp("books") / "lake")
    import_capture(spot_files(shared_data), "binance", root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDP_PICTURES", "1")  # the suite turns them off elsewhere
        mp.setenv("MDP_BOOKS", "1")
        result = CliRunner().invoke(materialize_cli, ["--lake", root, "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "check failed" not in result.output
    return root


def _wh(lake: str) -> Warehouse:
    return Warehouse(str(Path(lake) / "warehouse.duckdb"))


def test_hourly_samples_equal_an_uninterrupted_rebuild(lake: str) -> None:
    """Hour 00 continues from hour 23's checkpoint: together they are the rebuild of the whole recording; the
    coverage gap the import leaves between the two files (1 s) is bridged by the update ids, so not invalid."""
    whole = book_samples(read_raw(lake, 0, 1 << 62, exchanges=["binance"]), get_exchange("binance"), "BTCUSDT")
    # the hourly rebuild also samples the 15 s after the last frame (coverage's silence rule, MDP_MAX_SILENCE_S)
    got = _wh(lake).query("SELECT * FROM book_snapshots ORDER BY ts")
    assert (got.height, whole.samples.height) == (665, 650)
    assert (
        got.head(650)
        .select("ts", "update_id", "bid_price", "ask_size", "bid_px")
        .equals(whole.samples.select("ts", "update_id", "bid_price", "ask_size", "bid_px"))
    )
    per_hour = _wh(lake).query(
        "SELECT count(*) FILTER (WHERE ts < ?) AS h23, count(*) FILTER (WHERE ts >= ?) AS h00 FROM book_snapshots",
        [pl.Series([H00]).cast(pl.Datetime("ns", "UTC")).item()] * 2,
    )
    assert per_hour.row(0) == (344, 321)
    invalid = _wh(lake).query('SELECT "start", "end", reason FROM book_invalid ORDER BY "start"')
    assert invalid.select(pl.col("start", "end").dt.epoch("ns"), "reason").rows() == [
        (H23, 1_723_161_255_408_000_000, "no snapshot yet"),
        (whole.checkpoint.recv_ns + 15 * S, H00 + HOUR, "silent: no book frame for 15 s"),
    ]


def test_samples_equal_every_book_ticker_with_their_update_id(lake: str) -> None:
    raw = read_raw(lake, 0, 1 << 62, exchanges=["binance"], channels=["bookTicker"])
    tickers = {}
    for payload in raw["payload"]:
        d = orjson.loads(payload)["data"]
        tickers[int(d["u"])] = (float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"]))
    samples = _wh(lake).query("SELECT update_id, bid_price, bid_size, ask_price, ask_size FROM book_snapshots")
    shared = [r for r in samples.iter_rows() if r[0] in tickers]
    assert len(shared) == 94  # of 665 samples, those whose update id a bookTicker also carries
    assert [r[1:] for r in shared] == [tickers[r[0]] for r in shared]


def test_heatmaps_consolidated_view_and_pictures(lake: str) -> None:
    wh = _wh(lake)
    steps = wh.query(
        "SELECT exchange, symbol, step, count(DISTINCT ts) AS n FROM book_heatmap GROUP BY ALL ORDER BY ALL"
    )
    # one book, so the consolidated heatmap is that book re-labelled, with exchange_count 1
    assert steps.rows() == [
        ("*", "BTC-USD*", "1m", 12),
        ("*", "BTC-USD*", "1s", 665),
        ("binance", "BTC-USDT", "1m", 12),
        ("binance", "BTC-USDT", "1s", 665),
    ]
    assert wh.query("SELECT DISTINCT bucket, exchange_count FROM book_heatmap").rows() == [(Decimal(10), 1)]
    # the 1 m roll-up of a minute the book was valid for all 60 seconds is complete
    assert (
        wh.query("SELECT count(*) FROM book_heatmap WHERE step = '1m' AND complete AND exchange = 'binance'").item() > 0
    )
    cons = wh.query(
        "SELECT count(*), min(exchange_count), max(exchange_count), bool_or(crossed) FROM consolidated_book"
    )
    assert cons.row(0) == (665, 1, 1, False)
    # the trade heatmap holds every trade's size once
    vol = wh.query(
        "SELECT (SELECT sum(buy_size + sell_size) FROM trade_heatmap) = (SELECT sum(size) FROM trades) AS same"
    )
    assert vol.item() is True
    for hour in ("date=2024-08-08/hour=23", "date=2024-08-09/hour=00"):
        # one book for the base: its picture, and no consolidated one that would repeat it
        pictures = Path(lake) / "pictures"
        assert (pictures / "book_heatmap" / hour / "binance_BTC-USDT.png").read_bytes()[:8] == PNG_SIGNATURE
        assert not (pictures / "book_heatmap" / hour / "consolidated_BTC-USD.png").exists()
        assert (pictures / "trade_heatmap" / hour / "binance_BTC-USDT.png").read_bytes()[:8] == PNG_SIGNATURE
        # the tables' own folders hold their Parquet partitions only: every reader can take them whole
        assert sorted({p.suffix for p in (Path(lake) / "book_heatmap").rglob("*") if p.is_file()}) == [".parquet"]


def test_rerun_of_an_hour_replaces_it(lake: str, dagster_home: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDP_PICTURES", "1")
    wh = _wh(lake)
    before = {
        t: wh.query(f"SELECT count(*) FROM {t}").item() for t in ("book_snapshots", "book_heatmap", "consolidated_book")
    }
    spot = hourly_partitions(datetime(2024, 8, 8, tzinfo=UTC))
    result = materialize(
        [*hourly_assets(spot), *hourly_checks(spot)],
        partition_key=hour_key(H00),
        instance=DagsterInstance.get(),
        resources={"mdp": MdpResource(lake=lake)},
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["book_snapshots_valid"] and checks["book_heatmap_valid"]
    after = {t: wh.query(f"SELECT count(*) FROM {t}").item() for t in before}
    assert after == before
    meta = {
        m.asset_key.path[-1]: m.metadata for m in (e.materialization for e in result.get_asset_materialization_events())
    }
    assert meta["book_snapshots"]["continued_from_checkpoint"].value == 1
    assert "data:image/png;base64," in str(meta["book_heatmap"][f"pictures ({hour_key(H00)})"].value)
    # a thumbnail the UI shows in place: markdown under its 1,000-character limit for inline values, a real PNG
    for table in ("book_heatmap", "trade_heatmap"):
        inline = str(meta[table]["picture"].value)
        assert inline.startswith("![binance_BTC-USDT](data:image/png;base64,") and len(inline) < INLINE_LIMIT
        png = base64.b64decode(inline.split(",", 1)[1].rstrip(")"))
        assert png[:8] == PNG_SIGNATURE and int.from_bytes(png[16:20], "big") >= 64  # its width in pixels
