"""Reading the raw layer back for a window of receive time."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
from pyarrow.fs import FSSpecHandler, PyFileSystem

from ..schemas import RAW, RAW_ARROW
from ._fs import filesystem, is_local, join, lake_root
from ._paths import minute_dir, parse_minute_dir

__all__ = ["list_exchanges", "list_raw_minutes", "read_raw"]

_HOUR_NS = 3600 * 10**9


def list_exchanges(root: str | None = None) -> list[str]:
    fs, base = filesystem(lake_root(root))
    raw = join(base, "raw")
    if not fs.exists(raw):
        return []
    names = (p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(raw, detail=False))
    return sorted(n.split("=", 1)[1] for n in names if n.startswith("exchange="))


def list_raw_minutes(
    root: str | None, start_ns: int, end_ns: int, *, exchanges: Sequence[str] | None = None
) -> dict[tuple[str, int], list[str]]:
    """(exchange, minute start ns) -> its part files (protocol-less paths), for minutes in [start, end)."""
    root = lake_root(root)
    fs, base = filesystem(root)
    found: dict[tuple[str, int], list[str]] = {}
    for exchange in exchanges if exchanges is not None else list_exchanges(root):
        hour = start_ns - start_ns % _HOUR_NS
        while hour < end_ns:
            hour_dir = _hour_dir(base, exchange, hour)
            for path in sorted(fs.glob(f"{hour_dir}/minute=*/*.parquet")):
                parsed = parse_minute_dir(path)
                if parsed and start_ns <= parsed[1] < end_ns:
                    found.setdefault(parsed, []).append(path)
            hour += _HOUR_NS
    return found


def _hour_dir(base: str, exchange: str, hour_ns: int) -> str:
    return minute_dir(base, exchange, hour_ns).rsplit("/", 1)[0]


def read_raw(
    root: str | None,
    start_ns: int,
    end_ns: int,
    *,
    exchanges: Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Raw rows whose receive minute lies in [start_ns, end_ns), in the RAW schema, in file order."""
    root = lake_root(root)
    minutes = list_raw_minutes(root, start_ns, end_ns, exchanges=exchanges)
    files = [f for _, paths in sorted(minutes.items()) for f in paths]
    cols = list(columns) if columns is not None else list(RAW)
    if not files:
        return pl.DataFrame(schema={c: RAW[c] for c in cols})
    fs, _ = filesystem(root)
    filesystem_arg = None if is_local(fs) else PyFileSystem(FSSpecHandler(fs))
    dataset = ds.dataset(files, schema=RAW_ARROW, format="parquet", filesystem=filesystem_arg)
    flt = ds.field("channel").isin(list(channels)) if channels is not None else None
    table: pa.Table = dataset.to_table(columns=cols, filter=flt)
    out = pl.from_arrow(table)
    assert isinstance(out, pl.DataFrame)
    return out

