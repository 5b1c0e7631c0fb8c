"""Files appear whole or not at all: readers never see a torn Parquet file."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable
from typing import BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ._fs import filesystem, is_local

__all__ = ["write_bytes_atomic", "write_parquet_atomic", "write_table_atomic"]


def _write_atomic(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Locally: a hidden temp file in the target folder, fsync, then rename (atomic on POSIX; readers globbing
    ``*.parquet`` or listing ``*.json`` never match the temp name). On object stores: one PUT of the finished
    bytes, which is atomic."""
    fs, target = filesystem(path)
    if is_local(fs):
        folder = os.path.dirname(target)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{os.path.basename(target)}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return
    buf = io.BytesIO()
    write(buf)
    fs.pipe_file(target, buf.getvalue())


def write_table_atomic(table: pa.Table, path: str, *, compression: str = "zstd") -> None:
    """Write ``table`` to ``path`` (local path or fsspec URL) atomically."""
    _write_atomic(path, lambda fh: pq.write_table(table, fh, compression=compression))


def write_bytes_atomic(data: bytes, path: str) -> None:
    def write(fh: BinaryIO) -> None:
        fh.write(data)

    _write_atomic(path, write)


def write_parquet_atomic(df: pl.DataFrame, path: str) -> None:
    write_table_atomic(df.to_arrow(), path)
