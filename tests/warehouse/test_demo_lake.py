"""The lake the demo builds (conftest.py: books and heatmap pictures on), whole:

- `mdp sql --rebuild-warehouse` republishes the catalog over every table (issue 16: it crashed on any lake with
  books) and each table then reads exactly the rows of its lake folder, read here directly with polars; it leaves
  no temporary file and changes nothing but the catalog;
- every table folder of the lake is read whole by polars, pyarrow.dataset and DuckDB's read_parquet, as
  lake/README promises (the pictures live under `pictures/`, not among the Parquet files), with the same rows.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pytest
from click.testing import CliRunner

from mdplatform._cli_sql import sql
from mdplatform.plots import PNG_SIGNATURE
from mdplatform.warehouse import Warehouse, default_sql_dir

#: the tables of the warehouse and the lake's raw trees a demo lake has, with the rows the recording gives where
#: it says (trades: BTC 19,904 + ETH 14,515; raw: every frame of the four files)
TABLES = (
    "trades",
    "candles",
    "coverage",
    "book_snapshots",
    "book_invalid",
    "book_heatmap",
    "trade_heatmap",
    "consolidated_book",
)
KNOWN_ROWS = {"trades": 19_904 + 14_515}


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _data_files(lake: Path) -> dict[str, tuple[int, int]]:
    """The lake's files but the catalog's (its public name and its state folder)."""
    return {k: v for k, v in _files(lake).items() if k != "warehouse.duckdb" and not k.startswith(".warehouse")}


def _as_served(column: str, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        # DuckDB's TIMESTAMPTZ is microseconds: it rounds the lake's nanoseconds to the nearest (half away from
        # zero; every time here is after 1970)
        us = (pl.col(column).dt.epoch("ns") + 500) // 1000
        return pl.from_epoch(us, time_unit="us").dt.replace_time_zone("UTC").alias(column)
    return pl.col(column).cast(dtype)


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort([c for c, t in df.schema.items() if not isinstance(t, pl.List)])


def test_rebuild_warehouse_on_a_lake_with_every_asset(demo_lake: Path) -> None:
    state = demo_lake / ".warehouse.duckdb"
    data_before = _data_files(demo_lake)
    assert any(k.startswith("book_snapshots/") for k in data_before)

    result = CliRunner().invoke(sql, ["--lake", str(demo_lake), "--rebuild-warehouse"], catch_exceptions=False)
    assert result.exit_code == 0, result.output

    wh = Warehouse(str(demo_lake / "warehouse.duckdb"))
    assert set(wh.tables()) >= set(TABLES)
    for table in wh.tables():
        served = wh.query(f'SELECT * FROM "{table}"')
        assert re.search(rf"^{table} +{served.height:,d} rows$", result.output, re.M), (table, result.output)
        if not (demo_lake / table).exists():
            assert table not in TABLES and served.height == 0, table  # a table the demo has no rows of
            continue
        # the lake's folder read directly, cast to the types the warehouse serves
        lake = pl.read_parquet(demo_lake / table / "*" / "*" / "data.parquet")
        lake = lake.select([_as_served(c, t) for c, t in served.schema.items()])
        assert served.height == lake.height and (served.height > 0 or table not in TABLES), table
        assert KNOWN_ROWS.get(table, served.height) == served.height, table
        assert _sorted(served).equals(_sorted(lake)), table

    # no temporary file anywhere, two catalogs at most, and the lake's data untouched
    leftovers = [p for p in demo_lake.rglob("*") if re.search(r"\.tmp$|\.link$|rebuild-|\.wal$", p.name)]
    assert leftovers == []
    kept = [p.name.removesuffix(".duckdb") for p in state.glob("snapshot-*.duckdb")]
    assert {p.name for p in state.iterdir()} <= {"anchors", "catalog.sha256", ".publish.lock"} | {
        f"{k}{suffix}" for k in kept for suffix in (".duckdb", ".sql.json")
    }
    assert 1 <= len(list(state.glob("snapshot-*.duckdb"))) <= 2
    assert (demo_lake / "warehouse.duckdb").resolve().parent == state
    assert _data_files(demo_lake) == data_before


def _table_folders(lake: Path) -> list[str]:
    """Every folder of the lake holding Parquet partitions (not the pictures, markers or the warehouse)."""
    return sorted(
        p.name for p in lake.iterdir() if p.is_dir() and p.name[0] not in "._" and next(p.rglob("*.parquet"), None)
    )


def test_every_table_folder_reads_whole_with_polars_pyarrow_and_duckdb(demo_lake: Path) -> None:
    folders = _table_folders(demo_lake)
    with_rows = {*TABLES, "raw", "events", "book_checkpoints"}  # others (quarantine_rows) may be all empty hours
    assert set(folders) >= with_rows
    assert "pictures" not in folders
    # a lake with pictures: they are there, beside the tables
    pictures = list((demo_lake / "pictures").rglob("*.png"))
    assert pictures and all(p.read_bytes()[:8] == PNG_SIGNATURE for p in pictures)
    for folder in folders:
        path = demo_lake / folder
        assert {p.suffix for p in path.rglob("*") if p.is_file()} == {".parquet"}, folder
        counts = {
            "polars": pl.read_parquet(f"{path}/").height,
            "polars_scan": pl.scan_parquet(f"{path}/", hive_partitioning=True).select(pl.len()).collect().item(),
            "pyarrow": ds.dataset(path, format="parquet", partitioning="hive").count_rows(),
            "duckdb": duckdb.execute(
                f"SELECT count(*) FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true)"
            ).fetchall()[0][0],
        }
        assert len(set(counts.values())) == 1 and (counts["polars"] > 0 or folder not in with_rows), (folder, counts)
        assert KNOWN_ROWS.get(folder, counts["polars"]) == counts["polars"], folder
    # every raw frame the replay sends (demo/run.py: 179,316) plus the REST depth snapshot of each symbol
    assert pl.read_parquet(f"{demo_lake}/raw/").height == 179_316 + 2


def test_a_failed_rebuild_leaves_the_published_catalog_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog statement that fails (here a view of the DDL over a table that does not exist) stops the rebuild
    with one line; what readers open is the catalog published before, and no temporary file stays."""
    lake = tmp_path / "lake"
    folder = lake / "trades" / "date=2024-08-09" / "hour=00"
    folder.mkdir(parents=True)
    ts = pl.Series([1_723_161_600_000_000_000]).cast(pl.Datetime("ns", "UTC"))
    pl.DataFrame({"exchange": ["x"], "symbol": ["A-B"], "ts": ts, "recv_ts": ts, "trade_id": ["1"]}).write_parquet(
        folder / "data.parquet"
    )
    runner = CliRunner()
    assert runner.invoke(sql, ["--lake", str(lake), "--rebuild-warehouse"]).exit_code == 0
    published = (lake / "warehouse.duckdb").resolve()

    ddl = tmp_path / "ddl"
    shutil.copytree(default_sql_dir(), ddl)
    (ddl / "999_broken.sql").write_text("CREATE OR REPLACE VIEW broken AS SELECT * FROM no_such_table;\n")
    monkeypatch.setenv("MDP_SQL_DIR", str(ddl))
    got = runner.invoke(sql, ["--lake", str(lake), "--rebuild-warehouse"])
    assert got.exit_code == 1 and got.output.count("\n") == 1, got.output
    assert "rebuild failed" in got.output and "no_such_table" in got.output and "Traceback" not in got.output
    assert (lake / "warehouse.duckdb").resolve() == published
    assert [p for p in lake.rglob("*") if p.name.endswith((".tmp", ".link"))] == []
    monkeypatch.delenv("MDP_SQL_DIR")
    ok = runner.invoke(sql, ["SELECT count(*) AS n FROM trades", "--lake", str(lake), "--format", "csv"])
    assert ok.exit_code == 0 and ok.output.splitlines() == ['"n"', "1"], ok.output
