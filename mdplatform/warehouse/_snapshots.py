"""Read-only snapshots of the pipeline's private DuckDB file, published under the warehouse's public name.

Layout for a warehouse at ``<dir>/warehouse.duckdb``::

    <dir>/.warehouse.duckdb/writer.duckdb        # the pipeline's own file: only the pipeline ever opens it
    <dir>/.warehouse.duckdb/snapshot-<n>.duckdb  # copies of it, never written after they appear
    <dir>/warehouse.duckdb -> .warehouse.duckdb/snapshot-<n>.duckdb   # readers open this, read-only

A DuckDB file is locked by whoever opens it, so a reader holding the file the pipeline writes blocks the pipeline.
Readers here open a snapshot the pipeline never opens again: the lock of one never meets the other. Publishing is
a copy and two renames (the snapshot, then the symlink), so a reader opening the public name gets the old snapshot
or the new one, complete. Older snapshots are unlinked, which on POSIX leaves readers that still hold them
reading until they close (the previous one is kept, for a reader between reading the link and opening it).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

__all__ = ["adopt_legacy_file", "current_snapshot", "publish_copy", "state_dir", "writer_path"]

_SNAPSHOT = re.compile(r"^snapshot-(\d+)\.duckdb$")
#: snapshots kept besides the current one
_KEEP_PREVIOUS = 1


def state_dir(public: Path) -> Path:
    return public.parent / f".{public.name}"


def writer_path(public: Path) -> Path:
    return state_dir(public) / "writer.duckdb"


def _snapshots(directory: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _SNAPSHOT.match(p.name))]
    return sorted(found)


def current_snapshot(public: Path) -> Path | None:
    """The file readers open now (the public name itself when it is a plain file); None before any publish."""
    if not public.exists():
        return None
    return public.resolve()


def adopt_legacy_file(public: Path) -> None:
    """A warehouse written by an earlier release is a plain file at the public name: it becomes the writer file
    (with its WAL), and the next publish puts a snapshot there instead. Readers holding it keep reading it."""
    writer = writer_path(public)
    if public.is_symlink() or not public.is_file() or writer.exists():
        return
    writer.parent.mkdir(parents=True, exist_ok=True)
    wal = Path(f"{public}.wal")
    if wal.exists():
        wal.replace(Path(f"{writer}.wal"))
    public.replace(writer)


def publish_copy(public: Path, checkpointed_writer: Path) -> Path:
    """Copy the writer file (checkpointed, its WAL empty, and held by the caller so nobody writes it meanwhile)
    to a new snapshot and point the public name at it. Returns the snapshot."""
    directory = state_dir(public)
    existing = _snapshots(directory)
    number = existing[-1][0] + 1 if existing else 1
    snapshot = directory / f"snapshot-{number:06d}.duckdb"
    tmp = directory / f".{snapshot.name}.{uuid.uuid4().hex}.tmp"
    shutil.copyfile(checkpointed_writer, tmp)
    os.replace(tmp, snapshot)
    link_tmp = public.parent / f".{public.name}.{uuid.uuid4().hex}.link"
    # relative, so the lake directory can be moved or mounted elsewhere (docker) and still resolve
    os.symlink(os.path.relpath(snapshot, public.parent), link_tmp)
    os.replace(link_tmp, public)
    for _, old in _snapshots(directory)[: -(_KEEP_PREVIOUS + 1)]:
        old.unlink(missing_ok=True)
    return snapshot
