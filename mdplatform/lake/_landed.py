"""The landing log: what was written to the minute tables, and when, so a watcher finds new data by reading a
few small files instead of walking the lake.

Every writer of the minute tables (``RawWriter``: the collector, ``import-capture``, ``mdp backfill``) adds one
manifest per batch of files it committed, after them: ``{root}/_landed/date=D/hour=H/<landed ns>-<writer>-<n>.json``
by *landing* time. A manifest lists (table, exchange, minute, rows) of each file. A minute that lands late (an
import of last week, a backfill, a journal replayed after a crash) is found as soon as its manifest is, whatever
its own minute: the sensors read manifests, not minute folders, so no high-water mark can skip it.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

import orjson
from fsspec import AbstractFileSystem

from ._atomic import write_bytes_atomic
from ._fs import filesystem, join, lake_root
from ._paths import MinuteTable, hour_parts

__all__ = ["LANDED_DIR", "Landed", "Manifest", "list_manifests", "read_manifest", "write_manifest"]

LANDED_DIR = "_landed"
_HOUR_NS = 3600 * 10**9


@dataclass(frozen=True, slots=True)
class Landed:
    """One committed file: its table, exchange, minute (start ns) and rows."""

    table: MinuteTable
    exchange: str
    minute_ns: int
    rows: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest file: ``name`` (unique, sorts by landing time), ``landed_ns`` and its full ``path``."""

    name: str
    landed_ns: int
    path: str


def write_manifest(root: str | None, writer_id: str, seq: int, files: list[Landed], now_ns: int | None = None) -> str:
    """Record ``files`` (already committed) as landed now; returns the manifest's path."""
    now = time.time_ns() if now_ns is None else now_ns
    root = lake_root(root)
    name = f"{now:019d}-{writer_id}-{seq:06d}.json"
    path = join(root, LANDED_DIR, *hour_parts(now), name)
    body = orjson.dumps({"writer": writer_id, "files": [[f.table, f.exchange, f.minute_ns, f.rows] for f in files]})
    write_bytes_atomic(body, path)
    return path


def list_manifests(root: str | None, since_ns: int, until_ns: int) -> list[Manifest]:
    """Manifests landed in [since_ns, until_ns), oldest first. Only the date and hour folders of that span are
    listed, fresh each time (an object store's cached listing of the current hour would hide what landed since
    the last look)."""
    root = lake_root(root)
    fs, base = filesystem(root)
    out: list[Manifest] = []
    for date_dir in _children(fs, join(base, LANDED_DIR)):
        day = _start_ns(date_dir, "date=")
        if day is None or day + 24 * _HOUR_NS <= since_ns or day >= until_ns:
            continue
        for hour_dir in _children(fs, date_dir):
            hour = _start_ns(hour_dir, "hour=", day)
            if hour is None or hour + _HOUR_NS <= since_ns or hour >= until_ns:
                continue
            for path in _children(fs, hour_dir):
                name = path.rsplit("/", 1)[-1]
                if not name.endswith(".json") or name.startswith("."):
                    continue
                try:
                    landed = int(name.split("-", 1)[0])
                except ValueError:
                    continue
                if since_ns <= landed < until_ns:
                    out.append(Manifest(name, landed, path))
    return sorted(out, key=lambda m: m.name)


def _children(fs: AbstractFileSystem, folder: str) -> list[str]:
    fs.invalidate_cache(folder)
    try:
        return sorted(str(p).rstrip("/") for p in fs.ls(folder, detail=False))
    except FileNotFoundError:
        return []


def _start_ns(path: str, prefix: str, day_ns: int = 0) -> int | None:
    """Start (ns) of a ``date=YYYY-MM-DD`` folder, or of an ``hour=HH`` folder within the day ``day_ns``."""
    name = path.rsplit("/", 1)[-1]
    if not name.startswith(prefix):
        return None
    value = name[len(prefix) :]
    try:
        if prefix == "date=":
            y, m, d = (int(x) for x in value.split("-"))
            return calendar.timegm((y, m, d, 0, 0, 0, 0, 0, 0)) * 10**9
        return day_ns + int(value) * _HOUR_NS
    except ValueError:
        return None


def read_manifest(root: str | None, manifest: Manifest) -> list[Landed]:
    fs, _ = filesystem(lake_root(root))
    with fs.open(manifest.path, "rb") as fh:
        body = orjson.loads(fh.read())
    return [Landed(t, ex, int(m), int(n)) for t, ex, m, n in body["files"]]
