"""Files appear whole or not at all: readers never see a torn Parquet file."""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Callable, Iterator
from typing import BinaryIO, cast

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ._fs import filesystem, is_local

__all__ = ["TMP_SUFFIX", "open_atomic", "write_bytes_atomic", "write_parquet_atomic", "write_table_atomic"]

#: the end of every temp file name (``.<name>.<uuid>.tmp``): never matched by a glob for ``*.parquet``
TMP_SUFFIX = ".tmp"


def _write_atomic(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Locally: a hidden temp file in the target folder, fsync, then rename (``open_atomic``). On object stores:
    one PUT of the finished bytes, which is atomic."""
    fs, target = filesystem(path)
    if is_local(fs):
        with open_atomic(path) as fh:
            write(fh)
        return
    buf = io.BytesIO()
    write(buf)
    fs.pipe_file(target, buf.getvalue())


@contextlib.contextmanager
def open_atomic(path: str) -> Iterator[BinaryIO]:
    """A file that appears whole or not at all when the block ends, streamed into (a compacted or imported Parquet
    file need not fit in memory). Locally: a hidden temp file in the target folder, fsync, then rename (atomic on
    POSIX; readers globbing ``*.parquet`` or listing ``*.json`` never match the temp name). On an object store the
    upload is completed at the end (one PUT, or a multipart upload for a large file: S3 shows neither until it
    completes). An exception inside the block leaves nothing: the temp file is removed, the upload aborted."""
    fs, target = filesystem(path)
    if is_local(fs):
        folder = os.path.dirname(target)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{os.path.basename(target)}.{uuid.uuid4().hex}{TMP_SUFFIX}")
        try:
            with open(tmp, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return
    remote = fs.open(target, "wb")
    try:
        yield cast(BinaryIO, remote)
    except BaseException:
        discard = getattr(remote, "discard", None)
        if callable(discard):
            discard()
        remote.closed = True  # never committed, not even by the garbage collector's close()
        raise
    remote.close()


def write_table_atomic(table: pa.Table, path: str, *, compression: str = "zstd") -> None:
    """Write ``table`` to ``path`` (local path or fsspec URL) atomically."""
    _write_atomic(path, lambda fh: pq.write_table(table, fh, compression=compression))


def write_bytes_atomic(data: bytes, path: str) -> None:
    def write(fh: BinaryIO) -> None:
        fh.write(data)

    _write_atomic(path, write)


def write_parquet_atomic(df: pl.DataFrame, path: str) -> None:
    """``df`` as Parquet at ``path``, atomically, written by polars: columns in parallel, and its encodings make the
    derived tables about 45 % smaller than pyarrow's defaults (zstd both)."""

    def write(fh: BinaryIO) -> None:
        df.write_parquet(fh, compression="zstd")

    _write_atomic(path, write)
