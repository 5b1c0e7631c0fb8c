"""Partition frames this process wrote or read, kept while their file is unchanged: a range's hours are written by
the trades step, then read back by the checks (three of them read trades) and by the candles step, all in one
process. A file is known by its path, inode, modification time and size: the frame that wrote it or was read from
it is what the file holds until one of them changes (a re-run writes a new file over it: a new inode, read again).
Local lakes only (on an object store, asking for the identity costs a request, as the read does). At most
``KEPT_ROWS`` rows are kept, the least recently used let go first."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence

import polars as pl

__all__ = ["KEPT_ROWS", "keep", "read_kept"]

#: rows kept at most: a busy symbol's day of trades
KEPT_ROWS = 4_000_000

_Identity = tuple[int, int, int]
_KEPT: OrderedDict[str, tuple[_Identity, pl.DataFrame]] = OrderedDict()
_LOCK = threading.Lock()


def _identity(path: str) -> _Identity | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _remember(path: str, identity: _Identity, df: pl.DataFrame) -> None:
    with _LOCK:
        _KEPT.pop(path, None)
        if df.height > KEPT_ROWS:
            return
        _KEPT[path] = (identity, df)
        rows = sum(kept.height for _, kept in _KEPT.values())
        while rows > KEPT_ROWS:
            rows -= _KEPT.popitem(last=False)[1][1].height


def keep(path: str, df: pl.DataFrame) -> None:
    """``df`` was just written to the local file ``path`` (whole: renamed into place)."""
    identity = _identity(path)
    if identity is not None:
        _remember(path, identity, df)


def read_kept(path: str, columns: Sequence[str] | None = None) -> pl.DataFrame | None:
    """The frame the local Parquet file ``path`` holds, as written (no cast); None if there is no file. With
    ``columns``, a file not kept is read for those columns only (and not kept: a part of it); a kept one is given
    whole."""
    identity = _identity(path)
    if identity is None:
        return None
    with _LOCK:
        got = _KEPT.get(path)
        if got is not None and got[0] == identity:
            _KEPT.move_to_end(path)
            return got[1]
    if columns is not None:
        return pl.read_parquet(path, columns=list(columns))
    df = pl.read_parquet(path)
    _remember(path, identity, df)
    return df
