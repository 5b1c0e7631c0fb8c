"""The whole batch path on an S3 lake (a local moto server): import-capture, materialize, read back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from mdplatform.lake import read_raw
from mdplatform.warehouse import Warehouse


@pytest.mark.timeout(300)
def test_import_and_materialize_on_s3(tmp_path: Path, shared_data: Path, moto_s3: dict[str, str]) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_s3["MDP_S3_ENDPOINT"])
    s3.create_bucket(Bucket="mdp-lake")
    env = {
        **os.environ,
        "MDP_LAKE": "s3://mdp-lake/lake",
        "MDP_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    files = [str(shared_data / f"binance-hftbacktest/spot/btcusdt_2024080{d}.gz") for d in (8, 9)]
    mdp = [sys.executable, "-m", "mdplatform"]
    subprocess.run([*mdp, "import-capture", *files, "--exchange", "binance"], env=env, check=True)
    subprocess.run([*mdp, "materialize", "--no-progress"], env=env, check=True, capture_output=True)

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="mdp-lake", MaxKeys=1000)["Contents"]]
    assert any(k.startswith("lake/raw/exchange=binance/date=2024-08-08/hour=23/") for k in keys)
    assert "lake/trades/date=2024-08-09/hour=00/data.parquet" in keys
    assert "lake/candles/date=2024-08-08/hour=23/data.parquet" in keys
    raw = read_raw("s3://mdp-lake/lake", 0, 2**62, channels=["trade"])
    assert raw.height == 19_904
    # the warehouse's views read the S3 lake's partition files, through s3fs registered on the connection
    wh = Warehouse(str(tmp_path / "warehouse.duckdb"), lake="s3://mdp-lake/lake")
    assert wh.query("select count(*) from trades").item() == 19_904
    assert wh.query("select count(*) from candles where timeframe = '1m'").item() == 11
    got = subprocess.run(
        [*mdp, "sql", "select count(*) from trades", "--format", "csv"], env=env, check=True, capture_output=True
    )
    assert got.stdout.decode().splitlines() == ['"count_star()"', "19904"]
