"""The pipeline table of docs/reliability.md: faults of the materialization side (PostgreSQL, runs, processes),
each test counting rows against the bundled Binance spot recording (demo/data/binance-spot). ``record`` keeps a
measured row as JSON in ``.reliability/pipeline/`` and merges every recorded row into the document between its
markers at once (the collector table and its rows are ``_reliability``'s)."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest
from _reliability import DOC, RESULTS, _cell, _cells, _locked, _slug

__all__ = ["MDP", "PG_ADMIN", "RECORDING", "fresh_db", "mdp", "record", "recording_trade_ids", "render", "wait_for"]

REPO = Path(__file__).resolve().parents[2]
MDP = [sys.executable, "-m", "mdplatform"]
RECORDING = sorted((REPO / "demo" / "data" / "binance-spot").glob("btcusdt_*.gz"))
PG_ADMIN = os.environ.get("MDP_PG_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PIPELINE = RESULTS / "pipeline"
START, END = "<!-- pipeline-table:start -->", "<!-- pipeline-table:end -->"
COLUMNS = ("fault", "expected", "found", "lost", "duplicated", "exit", "note")
_HEADER = "| fault | expected rows | found | lost | duplicated | exit code | note |\n|---|--:|--:|--:|--:|---|---|\n"


def recording_trade_ids() -> int:
    """Distinct trade ids in the bundled recording (read from its frames, not through the platform)."""
    ids: set[int] = set()
    for path in RECORDING:
        with gzip.open(path, "rt") as fh:
            for line in fh:
                frame = line.split(" ", 1)[1]
                if '"e":"trade"' in frame:
                    data = json.loads(frame)
                    ids.add(data.get("data", data)["t"])
    return len(ids)


def record(fault: str, *, expected: int, found: int, duplicated: int, exit: str, note: str = "") -> None:
    """One measured row, replacing the fault's previous one; ``lost`` is what was expected and not found once."""
    lost = expected - (found - duplicated)
    PIPELINE.mkdir(parents=True, exist_ok=True)
    row = dict(zip(COLUMNS, (fault, expected, found, lost, duplicated, exit, note), strict=True))
    path = PIPELINE / f"{_slug(fault)}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=1) + "\n")
    tmp.replace(path)
    render()


def render(doc: Path = DOC) -> bool:
    """Merge the recorded rows into ``doc``'s table: a recorded fault replaces its row, the rows of faults not run
    here are kept (a run of some fault tests, or of a test that records one row, rewrote the table with only those:
    a commit lost twelve measured rows that way)."""
    files = sorted(PIPELINE.glob("*.json")) if PIPELINE.is_dir() else []
    if not files or not doc.exists():
        return False
    with _locked(RESULTS / ".lock"):
        text = doc.read_text()
        if START not in text:
            return False
        start, end = text.index(START) + len(START), text.index(END)
        lines_of = {fault: line for fault, line in _rows(text[start:end])}
        for row in (json.loads(p.read_text()) for p in files):
            lines_of[str(row["fault"])] = _line(row)
        lines = "".join(lines_of[k] for k in sorted(lines_of, key=str.lower))
        new = text[:start] + "\n" + _HEADER + lines + "\n" + text[end:]
        if new == text:
            return False
        doc.write_text(new)
        return True


def _rows(table: str) -> list[tuple[str, str]]:
    """(fault, its line) of each row of a rendered table (the header and the rule skipped)."""
    rows = []
    for line in table.splitlines():
        cells = _cells(line)
        if len(cells) == len(COLUMNS) and cells[0] != "fault" and not set(cells[1]) <= set("-:"):
            rows.append((cells[0], line + "\n"))
    return rows


def _line(row: dict[str, object]) -> str:
    cells = [_cell(str(row["fault"])), *(f"{row[k]:,}" for k in COLUMNS[1:5])]
    return "| " + " | ".join([*cells, _cell(str(row["exit"])), _cell(str(row["note"]))]) + " |\n"


def mdp(
    args: Sequence[str], env: dict[str, str], *, timeout: float = 900, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """``mdp ARGS`` in a process of its own (``python -m mdplatform``), output captured."""
    return subprocess.run(
        [*MDP, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False, **kwargs
    )  # type: ignore[call-overload, no-any-return]


def fresh_db(name: str) -> str:
    """A new empty database ``name`` (dropped first if it exists); its DSN. Skips (fails under CI) without a server."""
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"no PostgreSQL at {PG_ADMIN}: {exc}")
        pytest.skip(f"no PostgreSQL at {PG_ADMIN} (set MDP_PG_TEST_DSN)")
    return str(psycopg.conninfo.make_conninfo(PG_ADMIN, dbname=name))


def drop_db(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for(what: str, check: object, timeout: float = 300) -> None:
    """Poll ``check()`` until true (a bound, never an assertion on time)."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def one_line(text: str, pattern: str) -> str:
    """The line of ``text`` matching ``pattern`` (exactly one)."""
    found = [line for line in text.splitlines() if re.search(pattern, line)]
    assert len(found) == 1, text
    return found[0]
