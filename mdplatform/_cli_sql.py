"""``mdp sql``: a query on the published warehouse catalog, read-only, never on the pipeline's files (docs/duckdb.md).

Read-only for real: the connection opens the catalog ``read_only`` (a shared lock: other readers are never shut
out), reads files under the lake only and cannot change its settings (``Warehouse.connect(confined=True)``), and
only read statements are run (``SELECT`` and what DuckDB reads as one: ``WITH``, ``FROM``, ``DESCRIBE``, ``SHOW``,
``SUMMARIZE``, ``VALUES``; ``EXPLAIN [ANALYZE]`` of those), since a ``COPY ... TO`` or ``EXPORT DATABASE`` into
the lake's own folders would pass the file confinement.

Every DuckDB type prints in every format: the table shows DuckDB's own text of each value (exact decimals,
``+00`` instants, ``1 day 02:00:00`` intervals, ``[1.5, 2.0]`` lists); csv keeps numbers, text, dates and UTC
instants (``...Z``) as they are, writes lists, structs and maps as JSON and the other types as DuckDB's text;
json writes one object per row with each value as DuckDB's ``to_json`` has it (decimals as exact numbers,
times and intervals as text); parquet keeps the types, intervals as durations.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

__all__ = ["sql"]

#: rows a table printout shows (the other formats have them all)
_TABLE_ROWS = 200
#: rows per batch the other formats stream
_BATCH_ROWS = 65_536
#: what ``mdp sql`` runs: statements that only read
_READ_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})
# EXPLAIN ANALYZE runs the statement it explains: that statement is checked too
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?:ANALYZE\s+|\([^)]*\)\s*)*", re.IGNORECASE)
_NESTED = frozenset({"list", "array", "struct", "map", "union"})
#: what pyarrow's CSV writer prints exactly and as CSV readers expect (instants in UTC end with Z)
_CSV_NATIVE = frozenset(
    {
        *("boolean", "tinyint", "smallint", "integer", "bigint", "hugeint"),
        *("utinyint", "usmallint", "uinteger", "ubigint", "float", "double", "decimal", "varchar", "uuid"),
        *("date", "time", "timestamp", "timestamp with time zone", "timestamp_ns", "timestamp_ms", "timestamp_s"),
    }
)


@click.command("sql")
@click.argument("query", required=False)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table", show_default=True,
    help="output format: json is one object per line; parquet needs --out",
)  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write to this file, not stdout")
@click.option("--lake", metavar="PATH", help="lake root (default $MDP_LAKE or ./lake)")
@click.option("--warehouse", metavar="PATH", help="DuckDB file (default $MDP_WAREHOUSE or <lake>/warehouse.duckdb)")
@click.option(
    "--rebuild-warehouse", is_flag=True,
    help="publish the warehouse's catalog afresh from the lake's folders, and print rows per table",
)  # fmt: skip
def sql(
    query: str | None, fmt: str, out: Path | None, lake: str | None, warehouse: str | None, rebuild_warehouse: bool
) -> None:
    """Run QUERY on the warehouse: the tables (trades, candles, coverage, and any other of sql/duckdb), their
    views, and the lake's raw trees (`raw`, `events`, ...; fast for a time range: `raw_between(lo, hi)`).
    Columns: docs/tables.md.

    Reads the catalog the pipeline last published (views over the lake's partition files), read-only: a query
    never blocks the pipeline nor another reader, reads the lake's files only, and writes nothing. Times are
    TIMESTAMPTZ, compared and printed in UTC: `WHERE ts >= '2024-08-09 00:00'`.
    """
    import duckdb

    from mdplatform.lake import filesystem, lake_root
    from mdplatform.warehouse import Warehouse, default_warehouse_path

    root = lake_root(lake)
    path = warehouse or default_warehouse_path(root)
    wh = Warehouse(path, lake=root)
    if rebuild_warehouse:
        if query:
            raise click.UsageError("--rebuild-warehouse takes no QUERY")
        try:
            counts = wh.rebuild()
        except (duckdb.Error, OSError) as exc:  # the catalog published before stays (publish_statements)
            raise click.ClickException(f"rebuild failed: {_one_line(str(exc))}") from None
        for table, rows in counts.items():
            click.echo(f"{table:24s} {rows:>12,d} rows")
        click.echo(f"published {path} from {root}")
        return
    if not query:
        raise click.UsageError("give a QUERY (or --rebuild-warehouse)")
    if fmt == "parquet" and out is None:
        raise click.UsageError("--format parquet needs --out FILE")
    if not Path(path).exists():
        fs, base = filesystem(root)
        if not fs.exists(base):
            raise click.ClickException(f"no warehouse at {path} and no lake at {root}: give --lake or set MDP_LAKE")
    # the catalog follows the lake (new day folders, a DDL upgrade, a lake moved or copied elsewhere); a lake this
    # user may not write to is read through the catalog as it was published
    with contextlib.suppress(OSError):
        wh.refresh()
    try:
        with wh.connect(confined=True) as con:
            _check_read_only(con, query)
            rel = con.sql(query)
            if rel is not None:  # None: a statement without rows
                _write(rel, fmt, out)
    except duckdb.Error as exc:
        raise click.ClickException(_one_line(str(exc))) from None


def _one_line(message: str) -> str:
    """DuckDB's message without the query excerpt and caret it may append (``LINE 1: ...``), on one line."""
    lines = []
    for line in message.splitlines():
        if line.startswith("LINE "):
            break
        if line.strip():
            lines.append(line.strip())
    return " ".join(lines)


def _check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse ``query`` unless each of its statements only reads (``_READ_STATEMENTS``)."""
    for statement in con.extract_statements(query):
        kind = _kind(statement)
        if kind == "EXPLAIN":
            m = _EXPLAIN.match(statement.query)
            inner = con.extract_statements(statement.query[m.end() :]) if m else []
            kinds = {_kind(s) for s in inner}
            if kinds != {"SELECT"}:
                kind = "EXPLAIN " + " ".join(sorted(kinds - {"SELECT"}) or ["?"])
        if kind not in _READ_STATEMENTS:
            raise click.ClickException(
                f"read-only: mdp sql runs queries only (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN of "
                f"those), not {kind}"
            )


def _kind(statement: duckdb.Statement) -> str:
    try:
        name = str(statement.type.name)
    except ValueError:  # a statement type this DuckDB's Python enum does not name (UPDATE EXTENSIONS)
        return "this statement"
    # DuckDB runs a PIVOT whose values it must find first as several statements (one creates a type)
    return "a PIVOT without its values (name them: ON side IN ('buy', 'sell'))" if name == "MULTI" else name


def _write(rel: duckdb.DuckDBPyRelation, fmt: str, out: Path | None) -> None:
    names = list(rel.columns)
    kinds: list[str] = [str(t.id) for t in rel.types]
    if fmt == "table":
        _write_table(rel, names, out)
    elif fmt == "csv":
        _write_csv(rel, names, kinds, out)
    elif fmt == "json":
        _write_json(rel, names, kinds, out)
    else:
        assert out is not None
        _write_parquet(rel, names, kinds, out)


def _project(rel: duckdb.DuckDBPyRelation, exprs: list[str]) -> duckdb.DuckDBPyRelation:
    """``rel``'s columns through ``exprs`` (``{}`` is the column, by position: a query may name two alike)."""
    return rel.project(", ".join(f"{e.format(f'#{i + 1}')} AS c{i}" for i, e in enumerate(exprs)))


def _batches(
    rel: duckdb.DuckDBPyRelation, names: list[str], exprs: list[str]
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The rows through ``exprs`` in Arrow batches, under the query's own column names."""
    import pyarrow as pa

    reader = _project(rel, exprs).to_arrow_reader(_BATCH_ROWS)
    schema = pa.schema([field.with_name(name) for field, name in zip(reader.schema, names, strict=True)])
    return schema, (pa.RecordBatch.from_arrays(b.columns, schema=schema) for b in reader)


def _write_table(rel: duckdb.DuckDBPyRelation, names: list[str], out: Path | None) -> None:
    rows = _project(rel, ["CAST({} AS VARCHAR)"] * len(names)).limit(_TABLE_ROWS + 1).fetchall()
    text = _table_text(rows[:_TABLE_ROWS], names)
    if len(rows) > _TABLE_ROWS:
        text += f"\n(first {_TABLE_ROWS} rows; --format csv or json for all)"
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n")


def _csv_expr(kind: str) -> str:
    if kind in _CSV_NATIVE:
        return "{}"
    return "CAST(to_json({}) AS VARCHAR)" if kind in _NESTED else "CAST({} AS VARCHAR)"


def _write_csv(rel: duckdb.DuckDBPyRelation, names: list[str], kinds: list[str], out: Path | None) -> None:
    import pyarrow.csv as pacsv

    schema, batches = _batches(rel, names, [_csv_expr(k) for k in kinds])
    with _sink(out) as fh, pacsv.CSVWriter(fh, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)


def _json_expr(kind: str) -> str:
    # JSON has no NaN or infinity: those go as text, as DuckDB prints them
    if kind in ("float", "double"):
        return "CAST(CASE WHEN isfinite({0}) THEN to_json({0}) ELSE to_json(CAST({0} AS VARCHAR)) END AS VARCHAR)"
    return "CAST(to_json({}) AS VARCHAR)"


def _write_json(rel: duckdb.DuckDBPyRelation, names: list[str], kinds: list[str], out: Path | None) -> None:
    keys = [json.dumps(name) + ":" for name in names]
    _, batches = _batches(rel, names, [_json_expr(k) for k in kinds])
    with _sink(out) as fh:
        for batch in batches:
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            for row in zip(*columns, strict=True):
                fields = ",".join(k + ("null" if v is None else v) for k, v in zip(keys, row, strict=True))
                fh.write(("{" + fields + "}\n").encode())


def _parquet_expr(kind: str) -> str:
    # Parquet's INTERVAL is read by few (polars cannot): a duration in microseconds is, when it has no months
    if kind == "interval":
        return (
            "CASE WHEN datepart('year', {0}) * 12 + datepart('month', {0}) <> 0 THEN "
            "error('an interval with months has no fixed length: cast it before writing Parquet') "
            "ELSE epoch_us(TIMESTAMP '1970-01-01' + {0}) END"
        )
    return "{}"


def _write_parquet(rel: duckdb.DuckDBPyRelation, names: list[str], kinds: list[str], out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw_schema, batches = _batches(rel, names, [_parquet_expr(k) for k in kinds])
    durations = [i for i, k in enumerate(kinds) if k == "interval"]
    schema = raw_schema
    for i in durations:
        schema = schema.set(i, schema.field(i).with_type(pa.duration("us")))
    try:
        with pq.ParquetWriter(str(out), schema) as writer:
            for batch in batches:
                columns = [c.cast(pa.duration("us")) if i in durations else c for i, c in enumerate(batch.columns)]
                writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=schema))
    except BaseException as exc:
        out.unlink(missing_ok=True)  # no half-written file
        if isinstance(exc, pa.ArrowException):
            raise click.ClickException(f"cannot write {out}: {exc}") from None
        raise


@contextmanager
def _sink(out: Path | None) -> Iterator[IO[bytes]]:
    """Binary output: stdout, or the file ``out`` (removed if the query fails while it is written)."""
    if out is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        with out.open("wb") as fh:
            yield fh
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _table_text(rows: list[tuple[object, ...]], columns: list[str]) -> str:
    cells = [["NULL" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    lines.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
    return "\n".join(lines)
