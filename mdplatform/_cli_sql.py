"""``mdp sql``: a query on the published warehouse snapshot, never on the pipeline's own file (docs/duckdb.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["sql"]

#: rows a table printout shows (csv and parquet have them all)
_TABLE_ROWS = 200


@click.command("sql")
@click.argument("query", required=False)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "parquet"]), default="table", show_default=True,
    help="output format (parquet needs --out)",
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

    Reads the catalog the pipeline last published (views over the lake's partition files), read-only: a query
    never blocks the pipeline, and the pipeline never fails because of it. Times are TIMESTAMPTZ, compared in UTC:
    `WHERE ts >= '2024-08-09 00:00'`.
    """
    import duckdb

    from mdplatform.lake import filesystem, lake_root
    from mdplatform.warehouse import Warehouse, default_warehouse_path, register_lake_filesystem

    root = lake_root(lake)
    path = warehouse or default_warehouse_path(root)
    wh = Warehouse(path, lake=root)
    if rebuild_warehouse:
        if query:
            raise click.UsageError("--rebuild-warehouse takes no QUERY")
        counts = wh.rebuild()
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
        wh.refresh()  # the catalog is views over the lake: made in a moment
    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.Error as exc:
        raise click.ClickException(f"cannot open {path}: {exc}") from None
    try:
        register_lake_filesystem(con, root)
        # plain literals and the printed times in UTC, whatever this machine's zone
        con.execute("SET TimeZone = 'UTC'")
        rel = con.sql(query)
        if rel is None:  # a statement without rows (SET, PRAGMA...)
            return
        _write(rel, fmt, out)
    except duckdb.Error as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    finally:
        con.close()


def _write(rel: object, fmt: str, out: Path | None) -> None:
    import duckdb
    import pyarrow.csv as pacsv

    assert isinstance(rel, duckdb.DuckDBPyRelation)
    if fmt == "parquet":
        assert out is not None
        rel.write_parquet(str(out))
        return
    if fmt == "csv":
        table = rel.to_arrow_table()
        if out is None:
            pacsv.write_csv(table, sys.stdout.buffer)
        else:
            pacsv.write_csv(table, str(out))
        return
    shown = rel.limit(_TABLE_ROWS + 1).to_arrow_table()
    head = shown.slice(0, _TABLE_ROWS)
    # by position: a query may name two columns alike
    text = _table_text([head.column(i).to_pylist() for i in range(head.num_columns)], head.column_names)
    if shown.num_rows > _TABLE_ROWS:
        text += f"\n(first {_TABLE_ROWS} rows; --format csv for all)"
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n")


def _table_text(values: list[list[object]], columns: list[str]) -> str:
    cells = [["NULL" if v is None else str(v) for v in row] for row in zip(*values, strict=True)]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    lines.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
    return "\n".join(lines)
