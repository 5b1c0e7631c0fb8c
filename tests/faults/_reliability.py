"""The reliability table (docs/reliability.md): each fault test ``record``s its measured row as one JSON file in
``.reliability/`` at the repository root; ``render`` merges them into the document between its markers."""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["DOC", "RESULTS", "record", "record_delivery", "render"]

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / ".reliability"
DOC = REPO / "docs" / "reliability.md"
START, END = "<!-- reliability-table:start -->", "<!-- reliability-table:end -->"
COLUMNS = ("fault", "received", "landed", "quarantined", "lost", "duplicated", "recover_s", "note")
_HEADER = (
    "| fault | received | landed | quarantined | lost | duplicated | time to recover | note |\n"
    "|---|--:|--:|--:|--:|--:|--:|---|\n"
)


def record(
    fault: str,
    *,
    received: int,
    landed: int,
    quarantined: int,
    lost: int,
    duplicated: int,
    recover_s: float | None,
    note: str = "",
) -> None:
    """One measured row, replacing the fault's previous one. The counts must add up: what was received was
    landed, quarantined or lost."""
    if received != landed + quarantined + lost:
        raise ValueError(f"{fault}: received {received} != landed {landed} + quarantined {quarantined} + lost {lost}")
    RESULTS.mkdir(exist_ok=True)
    row = dict(zip(COLUMNS, (fault, received, landed, quarantined, lost, duplicated, recover_s, note), strict=True))
    path = RESULTS / f"{_slug(fault)}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=1) + "\n")
    tmp.replace(path)  # whole or not at all: another process may be rendering


def record_delivery(fault: str, sent: list[str], landed: list[str], recover_s: float | None, note: str) -> None:
    """A row for a fault where every frame sent was received (a storage fault): lost and duplicated counted from
    the payloads themselves."""
    distinct = set(landed)
    record(
        fault,
        received=len(sent),
        landed=len(distinct & set(sent)),
        quarantined=0,
        lost=len(set(sent) - distinct),
        duplicated=len(landed) - len(distinct),
        recover_s=recover_s,
        note=note,
    )


def render(doc: Path = DOC, results: Path = RESULTS) -> bool:
    """Merge the recorded rows into ``doc``'s table (a recorded fault replaces its row, rows of faults not run
    are kept), sorted by fault; True when the document changed. Several pytest processes may finish at once, so
    the merge runs under a lock."""
    files = sorted(results.glob("*.json")) if results.is_dir() else []
    if not files or not doc.exists():
        return False
    with _locked(results / ".lock"):
        text = doc.read_text()
        start, end = text.index(START) + len(START), text.index(END)
        rows = {row["fault"]: row for row in _parse(text[start:end])}
        for path in files:
            row = json.loads(path.read_text())
            rows[row["fault"]] = row
        table = "\n" + _HEADER + "".join(_line(rows[name]) for name in sorted(rows, key=str.lower)) + "\n"
        new = text[:start] + table + text[end:]
        if new == text:
            return False
        doc.write_text(new)
        return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _slug(fault: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fault.lower()).strip("-")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _line(row: dict[str, Any]) -> str:
    recover = row["recover_s"]
    cells = [_cell(row["fault"]), *(f"{row[k]:,}" for k in COLUMNS[1:6])]
    cells += ["—" if recover is None else f"{recover:.3f} s", _cell(row["note"])]
    return "| " + " | ".join(cells) + " |\n"


def _cells(line: str) -> list[str]:
    """The cells of a rendered table's line, unescaped (``_cell``)."""
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _parse(table: str) -> Iterator[dict[str, Any]]:
    """The rows of a rendered table (its header and rule skipped)."""
    for line in table.splitlines():
        cells = _cells(line)
        if len(cells) != len(COLUMNS) or cells[0] == "fault" or set(cells[1]) <= set("-:"):
            continue
        counts = [int(c.replace(",", "")) for c in cells[1:6]]
        recover = None if cells[6] == "—" else float(cells[6].removesuffix(" s"))
        yield dict(zip(COLUMNS, (cells[0], *counts, recover, cells[7]), strict=True))
