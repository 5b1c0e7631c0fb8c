"""A new catalog is built from the current one: only the statements that changed run (a view binds when created,
listing every file its globs reach: the raw views list every raw file of the lake)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from mdplatform.warehouse._snapshots import current_snapshot, publish_statements


def _views(snapshot: Path) -> dict[str, str]:
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        return dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall())
    finally:
        con.close()


def test_only_changed_statements_run_and_a_dropped_object_rebuilds(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    pl.DataFrame({"x": [1, 2]}).write_parquet(files / "a.parquet")
    public = tmp_path / "warehouse.duckdb"
    raw = f"CREATE OR REPLACE VIEW raw AS SELECT * FROM read_parquet('{files}/*.parquet')"
    day1 = "CREATE OR REPLACE VIEW trades AS SELECT 1 AS day"
    day2 = "CREATE OR REPLACE VIEW trades AS SELECT 2 AS day"
    publish_statements(public, [raw, day1], "one")
    # the raw view's files are gone: running its statement again would fail (no file matches the glob)
    (files / "a.parquet").unlink()
    second = publish_statements(public, [raw, day2], "two")
    assert current_snapshot(public) == second
    views = _views(second)
    assert set(views) == {"raw", "trades"} and "SELECT 2 AS" in views["trades"]
    # built afresh, the same statements fail: the reuse is what skipped the raw view
    with pytest.raises(duckdb.IOException):
        publish_statements(public, [raw, day2], "fresh", fresh=True)
    # an object the new statements no longer create is not carried over: the catalog is built afresh
    third = publish_statements(public, [day1], "three")
    assert set(_views(third)) == {"trades"}
    # catalogs kept: the current one and the one before, each with its statements
    names = sorted(p.name for p in (tmp_path / ".warehouse.duckdb").glob("snapshot-*"))
    assert names == [
        "snapshot-000002.duckdb",
        "snapshot-000002.sql.json",
        "snapshot-000003.duckdb",
        "snapshot-000003.sql.json",
    ]
