"""One corrupt raw file fails neither the other exchanges' hours nor hides which file it is: it is moved aside to
``quarantine/unreadable/`` with the reason, named by `mdp materialize` and in the trades asset's metadata, and the
hour goes on without it.

The lake holds two real recordings of the same hour (hftbacktest: Binance spot BTCUSDT and USD-M BTCUSDT, each
imported into one hour file); the USD-M file then gets 200 bytes of each row group's first payload page inverted
(corrupt compressed pages).
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import orjson
import polars as pl
import pyarrow.parquet as pq
import pytest
from candle_reference import H23, spot_files, usdm_file
from click.testing import CliRunner

from assets.cli import materialize
from mdplatform.capture import import_capture
from mdplatform.lake import read_raw, unreadable_files
from mdplatform.schemas import TRADES
from mdplatform.warehouse import read_partitions

HOUR = 3600 * 10**9


def trade_ids(path: Path) -> int:
    with gzip.open(path, "rt") as f:
        return len({orjson.loads(x.split(" ", 1)[1])["data"]["t"] for x in f if '@trade"' in x[:80]})


def corrupt(path: Path) -> None:
    """200 bytes inverted in the payload column's first data page of every row group (each channel group)."""
    md = pq.ParquetFile(path).metadata
    data = bytearray(path.read_bytes())
    for g in range(md.num_row_groups):
        page = md.row_group(g).column(md.num_columns - 1).data_page_offset
        for i in range(page + 200, page + 400):
            data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_corrupt_raw_file_is_set_aside_and_the_rest_goes_on(
    tmp_path: Path, shared_data: Path, dagster_home: str, caplog: pytest.LogCaptureFixture
) -> None:
    lake = tmp_path / "lake"
    spot = spot_files(shared_data)[:1]
    import_capture(spot, "binance", str(lake))
    import_capture([usdm_file(shared_data)], "binance-usdm", str(lake))
    (bad,) = (lake / "raw" / "exchange=binance-usdm").rglob("*.parquet")
    corrupt(bad)
    rel = bad.relative_to(lake).as_posix()

    with caplog.at_level(logging.ERROR, logger="mdplatform.lake"):
        result = CliRunner().invoke(materialize, ["--lake", str(lake), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # the file is named, with what was wrong with it, where it went and in the run's output
    assert not bad.exists()
    assert (lake / "quarantine" / "unreadable" / rel).is_file()
    ((listed, reason),) = unreadable_files(str(lake))
    assert listed == rel and "ArrowInvalid" in reason
    assert f"unreadable file set aside: {rel}: " in result.output
    assert any(rel in r.getMessage() and "quarantined unreadable file" in r.getMessage() for r in caplog.records)
    # the spot exchange's hour is whole; USD-M's frames of that file are gone, nothing else failed
    trades = read_partitions(str(lake), "trades", H23 - HOUR, H23 + 2 * HOUR, TRADES, ["exchange", "trade_id"])
    counts = dict(trades.group_by("exchange").agg(pl.col("trade_id").n_unique()).iter_rows())
    assert counts == {"binance": trade_ids(spot[0])}
    # later reads do not trip over it again
    assert set(read_raw(str(lake), H23, H23 + HOUR).get_column("exchange")) == {"binance"}
