"""Temp files a killed writer left behind: ``open_atomic`` removes its ``.<name>.<uuid>.tmp`` when the block fails,
but a process killed mid-write (kill -9, power loss) leaves it, and nothing else would ever delete it. A run
removes those of the days it works on when it starts; only temp files older than any write could still be going
on (``max_age_s``) are removed, so a live writer's file is never taken from under it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from ._atomic import TMP_SUFFIX
from ._fs import filesystem, is_local, lake_root

__all__ = ["remove_stale_temp_files"]

#: a temp file this old belongs to no writer still running (the largest writes take seconds to minutes)
STALE_AFTER_S = 3600.0


def remove_stale_temp_files(root: str | None, dates: Iterable[str], *, max_age_s: float = STALE_AFTER_S) -> list[str]:
    """Remove hidden ``*.tmp`` (and ``*.tmp.wal``) files older than ``max_age_s`` in the ``date=<date>`` folders
    (``dates`` as "YYYY-MM-DD") of every table of the lake, and in the lake's top two folder levels (the
    warehouse's state folder); returns their paths. Local lakes only: an object store never shows an unfinished
    upload."""
    fs, base = filesystem(lake_root(root))
    if not is_local(fs) or not os.path.isdir(base):
        return []
    wanted = {f"date={d}" for d in dates}
    cutoff = time.time() - max_age_s
    removed: list[str] = []

    def sweep(folder: str, *, deep: bool) -> None:
        for here, dirs, files in os.walk(folder):
            for name in files:
                path = os.path.join(here, name)
                # DuckDB keeps a write-ahead log beside a database being built: ``<temp>.tmp.wal``
                temp = name.endswith(TMP_SUFFIX) or name.endswith(f"{TMP_SUFFIX}.wal")
                if name.startswith(".") and temp and _older(path, cutoff):
                    os.unlink(path)
                    removed.append(path)
            if not deep:
                dirs[:] = []

    sweep(base, deep=False)
    for top in sorted(os.listdir(base)):
        top_path = os.path.join(base, top)
        if not os.path.isdir(top_path):
            continue
        sweep(top_path, deep=False)
        for here, dirs, _ in os.walk(top_path):
            for d in [d for d in dirs if d in wanted]:
                sweep(os.path.join(here, d), deep=True)
            # only the folders above the dates are walked here (exchange=, table names)
            dirs[:] = [d for d in dirs if not d.startswith("date=")]
    return removed


def _older(path: str, cutoff: float) -> bool:
    try:
        return os.stat(path).st_mtime < cutoff
    except FileNotFoundError:  # its writer renamed or removed it meanwhile
        return False
