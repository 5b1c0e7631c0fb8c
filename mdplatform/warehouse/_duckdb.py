"""The DuckDB warehouse: the pipeline's private file (window replacement in one transaction) and the read-only
snapshots of it readers open (see docs/duckdb.md)."""

from __future__ import annotations

import functools
import hashlib
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

from ._lakeviews import MINUTE_TREES, lake_view_sql
from ._snapshots import adopt_legacy_file, current_snapshot, publish_copy, state_dir, writer_path

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
    """The pipeline's private DuckDB file, and the read-only snapshots of it that readers open.

    ``path`` is the public name readers open (``duckdb.connect(path, read_only=True)``, ``mdp sql``): after every
    successful write the pipeline publishes a copy of its own file there (``_snapshots``), so a reader never holds
    a lock the pipeline needs, and sees each write whole (a snapshot is taken between transactions). Writes open
    the private file; one pipeline process waiting for another's write retries for ``lock_timeout_s``.
    """

    def __init__(self, path: str | None = None, *, sql_dir: Path | None = None, lock_timeout_s: float = 60.0):
        self.path = path or default_warehouse_path()
        self.sql_dir = sql_dir or default_sql_dir()
        self.lock_timeout_s = lock_timeout_s
        self._schema_ready = False

    def __repr__(self) -> str:
        return f"Warehouse({self.path!r})"

    @property
    def writer_path(self) -> str:
        """The pipeline's own file; nothing else should open it."""
        return str(writer_path(Path(self.path)))

    def _ddl(self) -> tuple[str, ...]:
        files = sorted(self.sql_dir.glob("*.sql"))
        if not files:
            raise FileNotFoundError(f"no DDL in {self.sql_dir} (set MDP_SQL_DIR)")
        return tuple(file.read_text() for file in files)

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """``read_only``: the published snapshot (publishing one first if there is none yet); else the private
        file, waiting for another writer process to let go of it."""
        if read_only:
            self._ready()
            con = duckdb.connect(self.path, read_only=True)
        else:
            adopt_legacy_file(Path(self.path))
            Path(self.writer_path).parent.mkdir(parents=True, exist_ok=True)
            con = self._open_writer()
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def _open_writer(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                return duckdb.connect(self.writer_path)
            except duckdb.IOException as exc:
                # another pipeline process (a second `mdp materialize`, a rebuild) is writing: wait for it
                if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _publish(self, con: duckdb.DuckDBPyConnection) -> None:
        """Snapshot the writer file ``con`` holds (so no other writer changes it during the copy)."""
        con.execute("CHECKPOINT")  # everything in the file itself, nothing left in the WAL the copy would miss
        publish_copy(Path(self.path), Path(self.writer_path))

    def publish(self) -> None:
        """Publish the writer file as it is now."""
        with self.connect() as con:
            self._publish(con)

    def ensure_schema(self) -> None:
        """Run the DDL files (``NNN_name.sql``, in order) on the writer file; they are idempotent. A table an older
        release created with other columns is not silently kept: ``WarehouseSchemaError`` says which and how to
        rebuild. Done once per process for the same file and DDL (every hourly run builds a new ``Warehouse``);
        publishes a first snapshot when readers have none."""
        ddl = self._ddl()
        key = (_file_identity(self.writer_path), ddl)
        if key[0] is not None and key in _ENSURED and current_snapshot(Path(self.path)) is not None:
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
                    "rebuild the warehouse from it with `mdp sql --rebuild-warehouse`."
                )
            for text in ddl:
                con.execute(text)
            if current_snapshot(Path(self.path)) is None:
                self._publish(con)
        self._schema_ready = True
        identity = _file_identity(self.writer_path)
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
        """``replace_window`` for several tables in one transaction, then published: readers see all of them
        replaced or none. Raises if either fails (the caller's hour fails and is redone)."""
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
            self._publish(con)
        return out

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """``sql`` on the published snapshot (what readers see)."""
        with self.connect(read_only=True) as con:
            table = con.sql(sql, params=params).to_arrow_table()
        out = pl.from_arrow(table) if table is not None else pl.DataFrame()
        assert isinstance(out, pl.DataFrame)
        return out

    def create_lake_views(self, lake: str) -> None:
        """(Re)create in the writer file the views and macros over the lake's minute trees (``_lakeviews``: ``raw``,
        ``raw_between(lo, hi)``, ...), published with the next write; only for a local lake. Cheap when they are
        already there: creating the whole-tree views lists every file of the lake, so it is done only when the
        statements differ from those the views were made with."""
        if "://" in lake and not lake.startswith("file://"):
            return
        statements = lake_view_sql(Path(lake.removeprefix("file://")), state_dir(Path(self.path)) / "anchors")
        self._ready()
        with self.connect() as con:
            _apply_lake_views(con, statements)

    def rebuild(self, lake: str) -> dict[str, int]:
        """Load every lake partition (``<lake>/<table>/date=*/hour=*/data.parquet``) of every table of the DDL into
        a fresh file, with the lake views, make it the writer file and publish it. Returns rows per table.

        The writer file stays held meanwhile, so a pipeline write waits (up to its ``lock_timeout_s``, else its
        hour fails and is redone) and lands on the rebuilt file, never on the one being replaced."""
        if "://" in lake and not lake.startswith("file://"):
            raise ValueError(f"rebuild reads a local lake, not {lake}")
        root = Path(lake.removeprefix("file://")).resolve()
        ddl = self._ddl()
        fresh = state_dir(Path(self.path)) / f"rebuild-{os.getpid()}.duckdb"
        fresh.unlink(missing_ok=True)
        counts: dict[str, int] = {}
        with self.connect() as held:
            con = duckdb.connect(str(fresh))
            try:
                con.execute("SET TimeZone = 'UTC'")
                for text in ddl:
                    con.execute(text)
                for table in sorted(_expected_columns(ddl)):
                    counts[table] = _load_table(con, table, root / table)
                _apply_lake_views(con, lake_view_sql(root, state_dir(Path(self.path)) / "anchors"))
                con.execute("CHECKPOINT")
            finally:
                con.close()
            held.execute("CHECKPOINT")  # the old file's WAL emptied: none is left to be replayed into the new one
            os.replace(fresh, self.writer_path)
        _ENSURED.clear()
        self._schema_ready = False
        self.publish()
        return counts


_VIEWS_TAG = "mdp lake views "


def _apply_lake_views(con: duckdb.DuckDBPyConnection, statements: list[str]) -> None:
    """Run ``statements`` unless the comment on the views says these very statements made them."""
    if not statements:
        return
    tag = _VIEWS_TAG + hashlib.sha256("\n".join(statements).encode()).hexdigest()
    trees = list(MINUTE_TREES)
    made = con.execute(
        "SELECT view_name, comment FROM duckdb_views() WHERE view_name IN (SELECT unnest(?))", [trees]
    ).fetchall()
    if made and all(comment == tag for _, comment in made):
        return
    for text in statements:
        con.execute(text)
    for (name,) in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE view_name IN (SELECT unnest(?))", [trees]
    ).fetchall():
        con.execute(f"COMMENT ON VIEW {_ident(name)} IS {_sql_text(tag)}")


def _load_table(con: duckdb.DuckDBPyConnection, table: str, directory: Path) -> int:
    """Insert the lake partitions of ``table`` under ``directory``, the columns both have matched by name."""
    if not any(directory.glob("date=*/hour=*/data.parquet")):
        return 0
    source = "read_parquet(" + _sql_text(str(directory / "date=*" / "hour=*" / "data.parquet"))
    source += ", hive_partitioning = false, union_by_name = true)"
    in_files = {name for name, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    columns = [c for c, _ in _table_columns(con, [], only={table}).get(table, []) if c in in_files]
    cols = ", ".join(_ident(c) for c in columns)
    before = con.execute(f"SELECT count(*) FROM {_ident(table)}").fetchall()[0][0]
    con.execute(f"INSERT INTO {_ident(table)} ({cols}) SELECT {cols} FROM {source}")
    return int(con.execute(f"SELECT count(*) FROM {_ident(table)}").fetchall()[0][0] - before)


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
