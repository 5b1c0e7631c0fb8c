"""Publishing the readers' catalog: a new small DuckDB file per change, swapped in under the warehouse's public name.

Layout for a warehouse at ``<dir>/warehouse.duckdb``::

    <dir>/.warehouse.duckdb/snapshot-<n>.duckdb  # catalogs (views only), never written after they appear
    <dir>/.warehouse.duckdb/catalog.sha256       # what the current catalog was made from (DDL, lake layout)
    <dir>/.warehouse.duckdb/anchors/             # empty Parquet files the views' file lists start from
    <dir>/warehouse.duckdb -> .warehouse.duckdb/snapshot-<n>.duckdb   # readers open this, read-only

A DuckDB file is locked by whoever opens it; readers open a catalog the pipeline never opens again, so no lock of
theirs meets the pipeline's. Publishing builds the next catalog in a temporary file, renames it, then re-points
the public symlink (a rename too): a reader opening the public name gets the old catalog or the new one, whole.
Older catalogs are unlinked, which on POSIX leaves readers holding them reading until they close (the previous
one is kept, for a reader between reading the link and opening it). Publishers on one machine take turns on a
lock file.

A catalog is built from the current one when it can be (``_reusable``): a copy of its file (views only, a few
hundred KB) with only the statements that changed run on it. DuckDB binds a view when it is created, which lists
every file its globs reach: the views over the raw trees list every raw file of the lake (seconds in a month of
minute files), and a new day of trades changes only the trades view. Each catalog's statements are kept beside it
(``snapshot-<n>.sql.json``); every ``_REBUILD_EVERY``-th catalog is built afresh (replaced views leave free blocks
in a file).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb

__all__ = ["current_snapshot", "publish_statements", "published_signature", "state_dir", "statements_signature"]

_SNAPSHOT = re.compile(r"^snapshot-(\d+)\.duckdb$")
#: the object a statement creates (or replaces)
_CREATES = re.compile(r"^CREATE OR REPLACE (?:VIEW|MACRO|TABLE) (\S+)")
#: catalogs built afresh (not from the previous one) at least this often
_REBUILD_EVERY = 50
#: catalogs kept besides the current one
_KEEP_PREVIOUS = 1
#: what earlier releases kept here: a private DuckDB file holding the tables (their data is in the lake)
_LEGACY_WRITER = ("writer.duckdb", "writer.duckdb.wal")


def state_dir(public: Path) -> Path:
    return public.parent / f".{public.name}"


def statements_signature(statements: Sequence[str]) -> str:
    """A digest of texts (the DDL and the lake layout a catalog is made from)."""
    return hashlib.sha256("\n;\n".join(statements).encode()).hexdigest()


def _signature_file(public: Path) -> Path:
    return state_dir(public) / "catalog.sha256"


def published_signature(public: Path) -> str | None:
    """The signature of the statements the current catalog was made from (None: none published)."""
    if current_snapshot(public) is None:
        return None
    try:
        return _signature_file(public).read_text().strip()
    except OSError:
        return None


def _snapshots(directory: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _SNAPSHOT.match(p.name))]
    return sorted(found)


def _statements_file(snapshot: Path) -> Path:
    return snapshot.with_name(snapshot.name.removesuffix(".duckdb") + ".sql.json")


def _reusable(base: Path | None, statements: Sequence[str]) -> set[str] | None:
    """The statements the catalog ``base`` was built with, when the next one can be built from a copy of it: every
    object it created is created again by ``statements`` (or by the same text), so that running the statements it
    did not run leaves nothing of it behind. None: build afresh."""
    if base is None or not base.exists():
        return None
    try:
        done = json.loads(_statements_file(base).read_text())
    except (OSError, ValueError):
        return None  # a catalog from before the statements were kept, or a torn file
    if not isinstance(done, list) or not all(isinstance(t, str) for t in done):
        return None
    wanted = set(statements)
    created = {m.group(1) for t in statements if (m := _CREATES.match(t))}
    for text in done:
        m = _CREATES.match(text)
        if text not in wanted and (m is None or m.group(1) not in created):
            return None
    return set(done)


def current_snapshot(public: Path) -> Path | None:
    """The file readers open now; None before any publish."""
    if not public.exists():
        return None
    return public.resolve()


@contextmanager
def _publish_lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".publish.lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def publish_statements(
    public: Path,
    statements: Sequence[str],
    signature: str,
    *,
    prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    fresh: bool = False,
) -> Path:
    """Run ``statements`` in a new catalog file and point the public name at it; ``signature`` says what they were
    made from (``published_signature``). ``prepare`` readies the build connection (an fsspec filesystem for a
    remote lake: views bind when created). ``fresh``: every statement in an empty file (else the current catalog
    is reused where it can be, see the module's doc). Returns the catalog."""
    directory = state_dir(public)
    with _publish_lock(directory):
        existing = _snapshots(directory)
        number = existing[-1][0] + 1 if existing else 1
        snapshot = directory / f"snapshot-{number:06d}.duckdb"
        tmp = directory / f".{snapshot.name}.{uuid.uuid4().hex}.tmp"
        base = current_snapshot(public) if number % _REBUILD_EVERY and not fresh else None
        done = _reusable(base, statements)
        if done is not None and base is not None:
            shutil.copyfile(base, tmp)
        con = duckdb.connect(str(tmp))
        try:
            con.execute("SET TimeZone = 'UTC'")
            if prepare is not None:
                prepare(con)
            for text in statements:
                if done is None or text not in done:
                    con.execute(text)
            con.execute("CHECKPOINT")
        except BaseException:
            con.close()
            tmp.unlink(missing_ok=True)
            raise
        con.close()
        _statements_file(snapshot).write_text(json.dumps(list(statements)))
        os.replace(tmp, snapshot)
        link_tmp = public.parent / f".{public.name}.{uuid.uuid4().hex}.link"
        # relative, so the lake directory can be moved or mounted elsewhere (docker) and still resolve
        os.symlink(os.path.relpath(snapshot, public.parent), link_tmp)
        os.replace(link_tmp, public)
        sig_tmp = directory / f".catalog.{uuid.uuid4().hex}.tmp"
        sig_tmp.write_text(signature + "\n")
        os.replace(sig_tmp, _signature_file(public))
        for _, old in _snapshots(directory)[: -(_KEEP_PREVIOUS + 1)]:
            old.unlink(missing_ok=True)
            _statements_file(old).unlink(missing_ok=True)
        for name in _LEGACY_WRITER:
            (directory / name).unlink(missing_ok=True)
        for stale in directory.glob(".snapshot-*.tmp"):
            # a publisher that died mid-build (we hold the lock, so no live one is writing it)
            stale.unlink(missing_ok=True)
    return snapshot
