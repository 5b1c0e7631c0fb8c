"""The DuckDB warehouse: one file, short-lived connections, window replacement in one transaction."""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl

from mdplatform.transforms import from_ns

__all__ = ["Warehouse", "WarehouseSchemaError", "Window", "default_sql_dir", "default_warehouse_path"]


class WarehouseSchemaError(RuntimeError):
    """The warehouse file has a table whose columns differ from the DDL of this release."""


@dataclass(frozen=True, slots=True)
class Window:
    """Rows replacing those of ``table`` whose ``column`` lies in [start, end) ("left") or (start, end] ("right")."""

    table: str
    rows: pl.DataFrame
    column: str
    start_ns: int
    end_ns: int
    closed: Literal["left", "right"] = "left"


#: (warehouse file identity, DDL) pairs whose schema this process has ensured
_ENSURED: set[tuple[tuple[int, int], tuple[str, ...]]] = set()


def _file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of a file, so a deleted and recreated warehouse is checked again; None if it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


@functools.lru_cache(maxsize=8)
def _expected_columns(ddl: tuple[str, ...]) -> dict[str, list[tuple[str, str]]]:
    return _table_columns(duckdb.connect(":memory:"), ddl)


def _table_columns(
    con: duckdb.DuckDBPyConnection, ddl: Sequence[str], only: set[str] | None = None
) -> dict[str, list[tuple[str, str]]]:
    """table -> [(column, type)] after running ``ddl`` on ``con`` (tables of the main schema only)."""
    try:
        for text in ddl:
            con.execute(text)
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name IN (SELECT table_name FROM duckdb_tables()) "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
    finally:
        if ddl:
            con.close()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        if only is None or table in only:
            out.setdefault(table, []).append((column, dtype))
    return out


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def default_sql_dir() -> Path:
    """``$MDP_SQL_DIR``, else the DuckDB DDL shipped in the package, ``mdplatform/_sql/duckdb``: the repo's
    ``sql/duckdb`` through a symlink in a checkout or an editable install, real files in a wheel."""
    env = os.environ.get("MDP_SQL_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "_sql" / "duckdb"


def default_warehouse_path(lake: str | None = None) -> str:
    """``$MDP_WAREHOUSE``, else ``warehouse.duckdb`` in the lake root; for a remote lake (s3://...), in the
    working directory, as DuckDB needs a local file to write."""
    env = os.environ.get("MDP_WAREHOUSE")
    if env:
        return env
    root = (lake or os.environ.get("MDP_LAKE") or "lake").rstrip("/")
    if "://" in root and not root.startswith("file://"):
        return "warehouse.duckdb"
    return str(Path(root.removeprefix("file://")) / "warehouse.duckdb")


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


class Warehouse:
    """A DuckDB file. Every call opens and closes its own connection, so between calls anyone (a notebook, the
    duckdb CLI) can open the file; a call finding it locked by another process retries for ``lock_timeout_s``.
    """

    def __init__(self, path: str | None = None, *, sql_dir: Path | None = None, lock_timeout_s: float = 60.0):
        self.path = path or default_warehouse_path()
        self.sql_dir = sql_dir or default_sql_dir()
        self.lock_timeout_s = lock_timeout_s
        self._schema_ready = False

    def __repr__(self) -> str:
        return f"Warehouse({self.path!r})"

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if not read_only:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(self.path, read_only=read_only)
                break
            except duckdb.IOException as exc:
                # another process holds the file's write lock: wait for it to let go
                if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def ensure_schema(self) -> None:
        """Run the DDL files (``NNN_name.sql``, in order); they are idempotent. A table an older release created
        with other columns is not silently kept: ``WarehouseSchemaError`` says which and how to rebuild.
        Done once per process for the same file and DDL (every hourly run builds a new ``Warehouse``)."""
        files = sorted(self.sql_dir.glob("*.sql"))
        if not files:
            raise FileNotFoundError(f"no DDL in {self.sql_dir} (set MDP_SQL_DIR)")
        ddl = tuple(file.read_text() for file in files)
        key = (_file_identity(self.path), ddl)
        if key[0] is not None and key in _ENSURED:
            self._schema_ready = True
            return
        expected = _expected_columns(ddl)
        with self.connect() as con:
            found = _table_columns(con, [], only=set(expected))
            stale = {t: cols for t, cols in found.items() if cols and cols != expected[t]}
            if stale:
                detail = "; ".join(f"{t}: has {found[t]}, expected {expected[t]}" for t in sorted(stale))
                raise WarehouseSchemaError(
                    f"{self.path} holds tables from an older release ({detail}). They are derived from the lake: "
                    "delete the file (or those tables) and run `mdp materialize` to rebuild them."
                )
            for text in ddl:
                con.execute(text)
        self._schema_ready = True
        identity = _file_identity(self.path)
        if identity is not None:
            _ENSURED.add((identity, ddl))

    def _ready(self) -> None:
        if not self._schema_ready:
            self.ensure_schema()

    def replace_window(
        self,
        table: str,
        df: pl.DataFrame,
        column: str,
        start_ns: int,
        end_ns: int,
        *,
        closed: Literal["left", "right"] = "left",
    ) -> tuple[int, int]:
        """Delete the rows of ``table`` whose ``column`` is in the window, insert ``df``; one transaction.

        The window is [start, end) for ``closed="left"``, (start, end] for ``"right"``. Returns (deleted,
        inserted). ``df`` columns are matched by name.
        """
        return self.replace_windows([Window(table, df, column, start_ns, end_ns, closed)])[0]

    def replace_windows(self, windows: Sequence[Window]) -> list[tuple[int, int]]:
        """``replace_window`` for several tables in one transaction: readers see all of them replaced or none."""
        self._ready()
        out: list[tuple[int, int]] = []
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                for w in windows:
                    table, column = _ident(w.table), _ident(w.column)
                    lo, hi = (">=", "<") if w.closed == "left" else (">", "<=")
                    deleted = con.execute(
                        f"DELETE FROM {table} WHERE {column} {lo} ? AND {column} {hi} ?",
                        [from_ns(w.start_ns), from_ns(w.end_ns)],
                    ).fetchall()[0][0]
                    if w.rows.height:
                        con.register("_mdp_new_rows", w.rows.to_arrow())
                        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _mdp_new_rows")
                        con.unregister("_mdp_new_rows")
                    out.append((int(deleted), w.rows.height))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return out

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        self._ready()
        with self.connect() as con:
            table = con.sql(sql, params=params).to_arrow_table()
        out = pl.from_arrow(table) if table is not None else pl.DataFrame()
        assert isinstance(out, pl.DataFrame)
        return out

    def has_relation(self, name: str) -> bool:
        """Whether a table or view of that name exists."""
        self._ready()
        with self.connect() as con:
            found = con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? "
                "UNION ALL SELECT count(*) FROM duckdb_views() WHERE view_name = ?",
                [name, name],
            ).fetchall()
        return any(n for (n,) in found)

    def create_raw_view(self, lake: str) -> bool:
        """(Re)create the view ``raw`` over the raw Parquet lake (Hive partitions exchange/date/hour/minute);
        only for a local lake that has raw files. Returns whether the view exists now."""
        if "://" in lake and not lake.startswith("file://"):
            return False
        base = Path(lake.removeprefix("file://")).resolve() / "raw"
        if not any(base.glob("exchange=*/date=*/hour=*/minute=*/*.parquet")):
            return False
        pattern = str(base / "*" / "*" / "*" / "*" / "*.parquet").replace("'", "''")
        self._ready()
        with self.connect() as con:
            con.execute(
                "CREATE OR REPLACE VIEW raw AS SELECT * FROM read_parquet("
                f"'{pattern}', hive_partitioning = true, union_by_name = true)"
            )
        return True
