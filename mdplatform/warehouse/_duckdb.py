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


def _confine(con: duckdb.DuckDBPyConnection, roots: Sequence[str]) -> None:
    """Let ``con`` open files under ``roots`` only, then lock its settings (docs/duckdb.md, "mdp sql").

    DuckDB's ``enable_external_access = false`` stops ``read_csv``/``read_text``/``glob`` of other files,
    ``COPY ... TO`` and ``EXPORT DATABASE`` elsewhere, ``ATTACH`` of files, extensions and Python replacement
    scans; the views read the lake's Parquet through ``read_parquet`` when a query binds, so the lake's folders
    stay open through ``allowed_directories`` (a prefix list: each root ends with ``/``). ``lock_configuration``
    then refuses any ``SET``/``RESET`` that would undo it. Writes *inside* the lake (``COPY ... TO`` a lake
    path) are not stopped here: ``mdp sql`` admits read statements only."""
    dirs = ", ".join(_literal(root.rstrip("/") + "/") for root in roots)
    con.execute(f"SET allowed_directories = [{dirs}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Warehouse:
    """The published catalog at ``path`` over the lake at ``lake`` (default: ``$MDP_LAKE``, else the folder holding
    ``path``, else ``./lake``).

    ``refresh()`` publishes a new catalog when the lake's folders or the DDL call for other statements;
    ``connect()``/``query()`` read the published one (publishing first if there is none)."""

    def __init__(self, path: str | None = None, *, lake: str | None = None, sql_dir: Path | None = None):
        if lake is None and path is not None and not os.environ.get("MDP_LAKE"):
            # the default layout: the warehouse beside the lake's tables
            lake = str(Path(path).parent)
        root = lake_root(lake)
        # absolute on local disk: the views name their files, and a relative path would read against each reader's
        # working directory
        self.lake = root if "://" in root else os.path.abspath(root)
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
        # absolute: the views name their files as written, and a relative path would read against the reader's cwd
        anchors = state_dir(Path(self.path).absolute()) / "anchors"
        return catalog_statements(lake, self._ddl(), anchors, layout)

    def tables(self, ddl: Sequence[str] | None = None) -> list[str]:
        """The served tables (those of the DDL's ``CREATE TABLE`` statements; ``ddl``: as just read)."""
        return sorted(contract_columns(split_ddl(self._ddl() if ddl is None else ddl)[0]))

    def refresh(self, *, force: bool = False) -> bool:
        """Publish a new catalog if the lake's layout (each table's day folders, the raw trees) or the DDL differ
        from those the published one was made from (or ``force``: built afresh, not from the current one); True if
        it did. Cheap when nothing changed: a listing of each table's folder."""
        ddl = self._ddl()
        layout = catalog_layout(self.lake.removeprefix("file://"), self.tables(ddl))
        # the views name the lake's and the anchors' absolute paths: a lake moved or copied elsewhere (or mounted
        # at another path) gets a catalog of its own at its first refresh instead of reading the old place
        where = [self.lake.removeprefix("file://"), str(state_dir(Path(self.path).absolute()))]
        signature = statements_signature([*ddl, json.dumps(layout, sort_keys=True), *where])
        public = Path(self.path)
        if not force and published_signature(public) == signature:
            return False
        public.parent.mkdir(parents=True, exist_ok=True)
        lake = self.lake

        def prepare(con: duckdb.DuckDBPyConnection) -> None:
            register_lake_filesystem(con, lake)

        publish_statements(public, self._statements(layout), signature, prepare=prepare, fresh=force)
        return True

    @contextmanager
    def connect(self, *, confined: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection on the published catalog (published first if there is none), times in UTC.

        ``confined``: for SQL from outside (``mdp sql``), the connection reads the lake's files only, and its
        settings cannot change (``_confine``)."""
        if current_snapshot(Path(self.path)) is None:
            self.refresh()
        # read-only: a shared lock, so any number of readers open the catalog at once
        con = duckdb.connect(":memory:" if confined else self.path, read_only=not confined)
        try:
            if confined:
                # a database instance of its own, the catalog attached to it: DuckDB shares one instance per file
                # in a process, and the settings ``_confine`` locks are the instance's, which a plain connection
                # to the same file elsewhere in this process must not get
                con.execute(f"ATTACH {_literal(self.path)} AS warehouse (READ_ONLY)")
                con.execute("USE warehouse")
            register_lake_filesystem(con, self.lake)
            con.execute("SET TimeZone = 'UTC'")
            if confined:
                _confine(con, self._reader_roots())
            yield con
        finally:
            con.close()

    def _reader_roots(self) -> list[str]:
        """The folders the catalog's views read: the lake and the anchors beside the catalog (under the lake
        unless the warehouse lives elsewhere), each as written in the views and, for a local lake, resolved."""
        anchors = str(state_dir(Path(self.path).absolute()) / "anchors")
        fs, base = filesystem(self.lake)
        lake = [base, os.path.realpath(base)] if is_local(fs) else [self.lake.split("://", 1)[0] + "://" + base]
        return sorted({*lake, anchors, os.path.realpath(anchors)})

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
