"""The derived tables read from an S3 lake (a local moto server) by pyarrow, polars and DuckDB alone, in a process
where the platform cannot even be imported (docs/scaling.md: what Spark and Trino read the same way). Each engine
discovers the Hive partitions (`date=`, `hour=`) and gets exactly the rows, types and values the platform's own
reader gets, nanosecond timestamps and exact decimals included; a filter on the partition columns reads one hour."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3
import polars as pl
import pytest
from candle_reference import H00, H23, spot_files
from s3fs import S3FileSystem

from assets._books import materialize_books_hour
from assets._hourly import materialize_candles_hour, materialize_trades_hour
from assets._settings import Settings
from mdplatform._time import HOUR_NS
from mdplatform.book import BOOK_HEATMAP, samples_schema
from mdplatform.capture import import_capture
from mdplatform.schemas import CANDLES, COVERAGE, TRADES
from mdplatform.warehouse import SERVED, partition_path, read_partition, read_partitions

#: the tables read, with the platform's schema for each
TABLES: dict[str, dict[str, pl.DataType]] = {
    "trades": TRADES,
    "candles": CANDLES,
    "coverage": COVERAGE,
    "book_snapshots": samples_schema(),
    "book_heatmap": BOOK_HEATMAP,
}
ENGINES = ("pyarrow", "polars", "duckdb")

# Reads every table with each engine and writes what it got as Arrow IPC files. The platform's packages are made
# unimportable first: nothing here can reach its code.
_READERS = r"""
import os, sys
sys.modules["mdplatform"] = None
sys.modules["assets"] = None
import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.ipc as ipc
from s3fs import S3FileSystem

lake, out, tables = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
endpoint = os.environ["MDP_S3_ENDPOINT"]
key, secret, region = (os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"))
# the partition keys' types, stated (inferred, `hour=00` is a string to DuckDB and an int to the others)
PARTS = pa.schema([("date", pa.date32()), ("hour", pa.int32())])

s3 = pafs.S3FileSystem(
    endpoint_override=endpoint.split("://")[1], scheme="http", access_key=key, secret_key=secret, region=region
)
storage = {"aws_endpoint_url": endpoint, "aws_access_key_id": key, "aws_secret_access_key": secret,
           "aws_region": region, "aws_allow_http": "true"}
con = duckdb.connect()
con.register_filesystem(S3FileSystem(client_kwargs={"endpoint_url": endpoint}))
con.sql("SET TimeZone = 'UTC'")

def save(name, table):
    with ipc.new_file(f"{out}/{name}.arrow", table.schema) as fh:
        fh.write_table(table)

def dataset(table):
    # the table's folder whole: it holds its Parquet partitions only (pictures live under pictures/)
    return ds.dataset(f"{lake}/{table}", filesystem=s3, format="parquet",
                      partitioning=ds.partitioning(PARTS, flavor="hive"))

def scan(table):
    return pl.scan_parquet(f"s3://{lake}/{table}/*/*/*.parquet", hive_partitioning=True,
                           hive_schema={"date": pl.Date, "hour": pl.Int32}, storage_options=storage)

def query(table, where=""):
    return con.sql(f"SELECT * FROM read_parquet('s3://{lake}/{table}/*/*/*.parquet', hive_partitioning = true, "
                   f"hive_types = {{'date': DATE, 'hour': INTEGER}}) {where}").to_arrow_table()

for table in tables:
    save(f"pyarrow-{table}", dataset(table).to_table())
    save(f"polars-{table}", scan(table).collect().to_arrow())
    save(f"duckdb-{table}", query(table))
# one hour, through each engine's filter on the partition columns
day = pa.scalar(19944, pa.date32())  # 2024-08-09
save("pyarrow-hour", dataset("trades").to_table(filter=(ds.field("date") == day) & (ds.field("hour") == 0)))
save("polars-hour", scan("trades").filter((pl.col("date") == day.as_py()) & (pl.col("hour") == 0)).collect().to_arrow())
save("duckdb-hour", query("trades", "WHERE date = DATE '2024-08-09' AND hour = 0"))
assert not [m for m in sys.modules if m.split(".")[0] in ("mdplatform", "assets") and sys.modules[m] is not None]
"""


@pytest.fixture(scope="module")
def materialized(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The spot recording's lake: trades, coverage and candles of hours 23 and 00, books of hour 23."""
    root = tmp_path_factory.mktemp("engines") / "lake"
    import_capture(spot_files(shared_data), "binance", str(root))
    settings = Settings(lake=str(root))
    for hour in (H23, H00):
        materialize_trades_hour(settings, hour)
        materialize_candles_hour(settings, hour)
    materialize_books_hour(settings, H23)
    return root


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort([c for c, t in df.schema.items() if not isinstance(t, pl.List)])


def test_engines_read_the_derived_tables_as_the_platform_does(
    materialized: Path, moto_s3: dict[str, str], tmp_path: Path
) -> None:
    boto3.client("s3", endpoint_url=moto_s3["MDP_S3_ENDPOINT"]).create_bucket(Bucket="mdp-lake")
    fs = S3FileSystem(client_kwargs={"endpoint_url": moto_s3["MDP_S3_ENDPOINT"]})
    for table in TABLES:
        fs.put(str(materialized / table), f"mdp-lake/lake/{table}", recursive=True)
    out = tmp_path / "read"
    out.mkdir()
    subprocess.run(
        [sys.executable, "-I", "-c", _READERS, "mdp-lake/lake", str(out), ",".join(TABLES)], cwd=tmp_path, check=True
    )

    for table, schema in TABLES.items():
        platform = _sorted(read_partitions(str(materialized), table, H23, H00 + HOUR_NS, schema))
        assert platform.height > 0, table
        got = {engine: _sorted(pl.read_ipc(out / f"{engine}-{table}.arrow")) for engine in ENGINES}
        # the three engines agree with each other, partition columns included ...
        for engine in ENGINES[1:]:
            assert got[engine].equals(got["pyarrow"]), (engine, table)
        # ... and with the platform: every column, type and value (ns timestamps, exact decimals, lists)
        rows = got["pyarrow"]
        assert rows.drop("date", "hour").schema == platform.schema, table
        assert _sorted(rows.drop("date", "hour")).equals(platform), table
        # each row is in the partition of its table's placing column (SERVED): a filter on date/hour prunes right
        served = SERVED[table]
        start = pl.col("date").cast(pl.Datetime("ns", "UTC")) + pl.duration(hours=pl.col("hour"), time_unit="ns")
        end, placed = start + pl.duration(hours=1, time_unit="ns"), pl.col(served.column)
        inside = rows.select(
            (start <= placed) & (placed < end) if served.closed == "left" else (start < placed) & (placed <= end)
        ).to_series()
        assert inside.all(), table

    hour = read_partition(partition_path(str(materialized), "trades", H00), TRADES)
    assert hour is not None and hour.height == 10_166
    for engine in ENGINES:
        one = pl.read_ipc(out / f"{engine}-hour.arrow")
        assert set(one.get_column("date")) == {datetime(2024, 8, 9, tzinfo=UTC).date()}, engine
        assert _sorted(one.drop("date", "hour")).equals(_sorted(hour)), engine
