"""docs/tables.md stays true: it is what `python -m mdplatform.warehouse._tables_doc` prints for the DDL of today,
and it lists every relation, column and type a published warehouse has (the demo's lake: every table with rows,
the views, the lake's raw trees), each with a meaning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mdplatform.warehouse import Warehouse, default_sql_dir
from mdplatform.warehouse._tables_doc import tables_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "tables.md"
_ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \| (.+) \|$")


def _ddl() -> list[str]:
    return [p.read_text() for p in sorted(default_sql_dir().glob("*.sql"))]


def _documented(text: str) -> dict[str, dict[str, str]]:
    """relation -> column -> type, as the doc's tables say (every row with a meaning)."""
    out: dict[str, dict[str, str]] = {}
    relation = None
    for line in text.splitlines():
        if line.startswith("## "):
            relation = line[3:].strip()
            out[relation] = {}
        elif relation and (m := _ROW.match(line)):
            assert m.group(3).strip(), line
            out[relation][m.group(1)] = m.group(2).strip()
    return out


def test_the_doc_is_what_the_generator_prints() -> None:
    assert DOC.read_text() == tables_markdown(_ddl()), (
        "docs/tables.md is stale: python -m mdplatform.warehouse._tables_doc > docs/tables.md"
    )


def test_the_doc_lists_every_column_the_warehouse_has(demo_lake: Path) -> None:
    with Warehouse(str(demo_lake / "warehouse.duckdb")).connect() as con:
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
        ).fetchall()
    served: dict[str, dict[str, str]] = {}
    for relation, column, dtype in rows:
        served.setdefault(relation, {})[column] = dtype
    documented = _documented(DOC.read_text())
    # the tables, their views and the demo's raw trees; the views' macros return what their view does
    assert {"trades", "candles_1m", "trade_counts", "coverage_gaps", "raw", "events"} <= set(served)
    for relation, columns in served.items():
        assert documented.get(relation) == columns, relation
    # and nothing the warehouse does not have, but the raw trees a lake may not have yet (backfill, ...)
    assert set(documented) - set(served) <= {"backfill", "backfill_events"}


def test_a_column_without_a_meaning_is_refused() -> None:
    ddl = [*_ddl(), "-- a table of tests\nCREATE TABLE IF NOT EXISTS extra (exchange VARCHAR, mystery DOUBLE);"]
    with pytest.raises(KeyError, match=r"extra\.mystery has no meaning"):
        tables_markdown(ddl)
