"""The DuckDB warehouse readers open: a catalog of views over the lake's Parquet partitions (docs/duckdb.md).

The lake's hourly partition files are the tables' data; nothing is copied into DuckDB. Publishing an hour is the
atomic rename of its partition files; the catalog (``_catalog``) changes only when a day folder appears, so
``refresh`` after an hour is a listing of the tables' folders and, about once a day, a new catalog of a few
hundred KB. Readers open the published catalog read-only and never hold a lock the pipeline needs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from mdplatform.lake import filesystem, is_local, lake_root

from ._catalog import catalog_layout, catalog_statements, contract_columns, split_ddl
from ._snapshots import (
    current_snapshot,
    publish_statements,
    published_signature,
    state_dir,
    statements_signature,
)

__all__ = ["Warehouse", "default_sql_dir", "default_warehouse_path"]


def default_sql_dir() -> Path:
    """``$MDP_SQL_DIR``, else the DuckDB DDL shipped in the package, ``mdplatform/_sql/duckdb``: the repo's
    ``sql/duckdb`` through a symlink in a checkout or an editable install, real files in a wheel."""
    env = os.environ.get("MDP_SQL_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "_sql" / "duckdb"


def default_warehouse_path(lake: str | None = None) -> str:
    """``$MDP_WAREHOUSE``, else ``warehouse.duckdb`` in the lake root; for a remote lake (s3://...), in the
    working directory (a DuckDB file is local)."""
    env = os.environ.get("MDP_WAREHOUSE")
    if env:
        return env
    root = lake_root(lake)
    if "://" in root and not root.startswith("file://"):
        return "warehouse.duckdb"
    return str(Path(root.removeprefix("file://")) / "warehouse.duckdb")


def register_lake_filesystem(con: duckdb.DuckDBPyConnection, lake: str) -> None:
    """Let ``con`` read a remote lake's files through fsspec (DuckDB's own httpfs is not needed)."""
    fs, _ = filesystem(lake)
    if not is_local(fs):
        con.register_filesystem(fs)


class Warehouse:
    """The published catalog at ``path`` over the lake at ``lake`` (default: ``$MDP_LAKE``, else the folder holding
    ``path``, else ``./lake``).

    ``refresh()`` publishes a new catalog when the lake's folders or the DDL call for other statements;
    ``connect()``/``query()`` read the published one (publishing first if there is none)."""

    def __init__(self, path: str | None = None, *, lake: str | None = None, sql_dir: Path | None = None):
        if lake is None and path is not None and not os.environ.get("MDP_LAKE"):
            # the default layout: the warehouse beside the lake's tables
            lake = str(Path(path).parent)
        self.lake = lake_root(lake)
        self.path = path or default_warehouse_path(self.lake)
        self.sql_dir = sql_dir or default_sql_dir()

    def __repr__(self) -> str:
        return f"Warehouse({self.path!r}, lake={self.lake!r})"

    def _ddl(self) -> tuple[str, ...]:
        files = sorted(self.sql_dir.glob("*.sql"))
        if not files:
            raise FileNotFoundError(f"no DDL in {self.sql_dir} (set MDP_SQL_DIR)")
        return tuple(file.read_text() for file in files)

    def _statements(self, layout: dict[str, list[str]] | None = None) -> list[str]:
        lake = self.lake.removeprefix("file://")
        return catalog_statements(lake, self._ddl(), state_dir(Path(self.path)) / "anchors", layout)

    def tables(self) -> list[str]:
        """The served tables (those of the DDL's ``CREATE TABLE`` statements)."""
        return sorted(contract_columns(split_ddl(self._ddl())[0]))

    def refresh(self, *, force: bool = False) -> bool:
        """Publish a new catalog if the lake's layout (each table's day folders, the raw trees) or the DDL differ
        from those the published one was made from (or ``force``); True if it did. Cheap when nothing changed:
        a listing of each table's folder."""
        ddl = self._ddl()
        layout = catalog_layout(self.lake.removeprefix("file://"), self.tables())
        signature = statements_signature([*ddl, json.dumps(layout, sort_keys=True)])
        public = Path(self.path)
        if not force and published_signature(public) == signature:
            return False
        public.parent.mkdir(parents=True, exist_ok=True)
        lake = self.lake

        def prepare(con: duckdb.DuckDBPyConnection) -> None:
            register_lake_filesystem(con, lake)

        publish_statements(public, self._statements(layout), signature, prepare=prepare)
        return True

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection on the published catalog (published first if there is none), times in UTC."""
        if current_snapshot(Path(self.path)) is None:
            self.refresh()
        con = duckdb.connect(self.path, read_only=True)
        try:
            register_lake_filesystem(con, self.lake)
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """``sql`` on the published catalog (what readers see)."""
        with self.connect() as con:
            table = con.sql(sql, params=params).to_arrow_table()
        out = pl.from_arrow(table) if table is not None else pl.DataFrame()
        assert isinstance(out, pl.DataFrame)
        return out

    def rebuild(self) -> dict[str, int]:
        """Publish a catalog made afresh from the lake's folders, and count the rows each table now shows."""
        self.refresh(force=True)
        with self.connect() as con:
            counts = {}
            for table in self.tables():
                got = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
                counts[table] = int(got[0]) if got else 0
        return counts
