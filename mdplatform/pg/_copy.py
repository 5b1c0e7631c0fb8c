"""PostgreSQL binary COPY rows built column-wise from a polars DataFrame, without a Python object per value.

Each column becomes an Arrow ``large_binary`` array whose value for a row is that field exactly as COPY BINARY wants
it (a big-endian int32 length, -1 for NULL, then the value's binary form); ``binary_join_element_wise`` then joins
the fields of each row, so the joined array's data buffer *is* the COPY payload. Numbers stay exact: a polars
Decimal's unscaled Int128 is cut into PostgreSQL's base-10000 ``numeric`` digits with integer arithmetic, never
through a float or a Python ``Decimal``. Timestamps are sent in microseconds (PostgreSQL's resolution), truncating
the nanoseconds the lake keeps.

Column types this does not know (``supported`` says so) go through psycopg's own per-row dumpers instead
(``write_rows``): slower (a Python object per value) but as exact.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import Copy

__all__ = ["SIGNATURE", "TRAILER", "PgColumn", "encode", "supported", "write_rows"]

#: "PGCOPY\n\377\r\n\0", flags (no OIDs), header extension length 0
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
#: microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01 (UTC)
_PG_EPOCH_US = 946_684_800_000_000
_NUMERIC_NEG = 0x4000
#: rows encoded at once: bounds the memory of one batch (a few hundred MB at most for wide rows)
BATCH_ROWS = 200_000
#: fields are joined with nothing between them
_SEP = pa.scalar(b"", pa.large_binary())

U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class PgColumn:
    """A table column as the catalog describes it: ``typname`` (``int8``, ``_float8`` for ``float8[]``...),
    the type's OID, and for arrays the element's ``typname`` and OID."""

    name: str
    typname: str
    oid: int
    elem_typname: str | None = None
    elem_oid: int | None = None


_FIXED: dict[str, tuple[str, pl.DataType]] = {
    "int8": (">i8", pl.Int64()),
    "int4": (">i4", pl.Int32()),
    "int2": (">i2", pl.Int16()),
    "float8": (">f8", pl.Float64()),
    "float4": (">f4", pl.Float32()),
    "bool": ("u1", pl.UInt8()),
}
_SCALARS = {*_FIXED, "timestamptz", "timestamp", "numeric", "text", "varchar", "bpchar"}


def supported(columns: list[PgColumn], schema: pl.Schema) -> bool:
    """Whether ``encode`` handles every (PostgreSQL type, polars type) pair."""
    for col in columns:
        dtype: pl.DataType = schema[col.name]
        typname = col.typname
        if col.elem_typname is not None:
            if not isinstance(dtype, pl.List | pl.Array):
                return False
            inner = dtype.inner
            dtype, typname = inner() if isinstance(inner, type) else inner, col.elem_typname
        if typname not in _SCALARS or not _scalar_ok(typname, dtype):
            return False
    return True


def _scalar_ok(typname: str, dtype: pl.DataType) -> bool:
    if typname in ("timestamptz", "timestamp"):
        return isinstance(dtype, pl.Datetime)
    if typname == "numeric":
        return isinstance(dtype, pl.Decimal) or dtype.is_integer()
    if typname in ("text", "varchar", "bpchar"):
        return isinstance(dtype, pl.String | pl.Categorical | pl.Enum)
    if typname == "bool":
        return isinstance(dtype, pl.Boolean)
    return dtype.is_numeric() and not isinstance(dtype, pl.Decimal)


def encode(df: pl.DataFrame, columns: list[PgColumn]) -> Iterator[memoryview]:
    """The COPY BINARY stream of ``df`` (columns in the order of ``columns``), signature and trailer included."""
    yield memoryview(SIGNATURE)
    nfields = struct.pack(">h", len(columns))
    for offset in range(0, df.height, BATCH_ROWS):
        batch = df.slice(offset, BATCH_ROWS)
        n = batch.height
        fields = [_fixed_rows(np.frombuffer(nfields * n, np.uint8).reshape(n, 2), None)]
        fields += [_field(batch.get_column(col.name), col) for col in columns]
        joined = pc.binary_join_element_wise(*fields, _SEP)
        offsets = np.frombuffer(joined.buffers()[1], np.int64, n + 1, joined.offset * 8)
        data = joined.buffers()[2]
        assert data is not None
        yield memoryview(data)[offsets[0] : offsets[-1]]
    yield memoryview(TRAILER)


def _field(s: pl.Series, col: PgColumn) -> pa.Array:
    if col.elem_typname is not None:
        assert col.elem_oid is not None
        return _array(s, col.elem_typname, col.elem_oid)
    return _scalar(s, col.typname)


def _scalar(s: pl.Series, typname: str) -> pa.Array:
    valid = s.is_not_null().to_numpy() if s.null_count() else None
    if typname in _FIXED:
        be, dtype = _FIXED[typname]
        values = s.cast(dtype).fill_null(0).to_numpy().astype(be, copy=False)
        return _fixed_payload(values.view(np.uint8).reshape(len(s), -1), valid)
    if typname in ("timestamptz", "timestamp"):
        micros = s.dt.epoch("us").fill_null(0).to_numpy() - _PG_EPOCH_US
        return _fixed_payload(micros.astype(">i8").view(np.uint8).reshape(len(s), 8), valid)
    if typname == "numeric":
        return _numeric(s, valid)
    return _text(s)


def _fixed_payload(payload: U8, valid: npt.NDArray[np.bool_] | None) -> pa.Array:
    """Fields of a fixed-width type: length prefix + ``payload`` row (or -1 and nothing for a NULL)."""
    n, width = payload.shape
    rows = np.empty((n, 4 + width), np.uint8)
    rows[:, :4] = np.frombuffer(struct.pack(">i", width), np.uint8)
    rows[:, 4:] = payload
    return _fixed_rows(rows, valid)


def _fixed_rows(rows: U8, valid: npt.NDArray[np.bool_] | None) -> pa.Array:
    """A ``large_binary`` array of the rows of ``rows``; a row not ``valid`` becomes a NULL field (-1)."""
    n, width = rows.shape
    if valid is None or valid.all():
        offsets = np.arange(n + 1, dtype=np.int64) * width
        return pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(rows)])
    rows[~valid, :4] = 0xFF
    widths = np.where(valid, width, 4)
    keep = np.arange(width) < widths[:, None]
    return _variable(rows[keep], widths)


def _variable(data: U8, widths: npt.NDArray[np.int64]) -> pa.Array:
    offsets = np.zeros(len(widths) + 1, np.int64)
    np.cumsum(widths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.large_binary(), len(widths), [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))]
    )


def _text(s: pl.Series) -> pa.Array:
    arr = s.cast(pl.String).to_arrow().cast(pa.large_binary())
    arr = pa.concat_arrays([arr]) if arr.offset else arr  # rebase a slice so its offsets start at its first value
    offsets = np.frombuffer(arr.buffers()[1], np.int64, len(arr) + 1)
    lengths = np.diff(offsets).astype(">i4")
    valid = s.is_not_null().to_numpy() if s.null_count() else None
    if valid is not None:
        lengths[~valid] = -1
        arr = pc.fill_null(arr, _SEP)
    prefix = _fixed_rows(lengths.view(np.uint8).reshape(len(s), 4).copy(), None)
    return pc.binary_join_element_wise(prefix, arr, _SEP)


def _numeric(s: pl.Series, valid: npt.NDArray[np.bool_] | None) -> pa.Array:
    """PostgreSQL ``numeric`` binary: ndigits, weight, sign, dscale (int16 each), then base-10000 digits (int16),
    most significant first. Digits sit on the decimal point: with scale ``s`` the unscaled integer is aligned to a
    multiple of 4 decimal places (``pad`` more zeros), so the last ``(s + pad) / 4`` digits are the fraction."""
    dtype = s.dtype
    scale = dtype.scale if isinstance(dtype, pl.Decimal) else 0
    unscaled = s.to_physical().cast(pl.Int128) if isinstance(dtype, pl.Decimal) else s.cast(pl.Int128)
    pad = -scale % 4
    frac_digits = (scale + pad) // 4
    frame = pl.DataFrame({"u": unscaled.fill_null(0)})
    biggest = frame.select(pl.col("u").abs().max()).item() or 0
    ndigits = max(1, -(-(len(str(biggest)) + pad) // 4))
    # least significant digit first: the lowest holds 4 - pad decimal digits of the value, shifted by pad zeros
    low = 10 ** (4 - pad)
    exprs = [((pl.col("a") % pl.lit(low, pl.Int128)) * 10**pad).cast(pl.Int16).alias("d0")]
    for k in range(1, ndigits):
        exprs.append(
            ((pl.col("a") // pl.lit(low * 10_000 ** (k - 1), pl.Int128)) % 10_000).cast(pl.Int16).alias(f"d{k}")
        )
    digits = frame.select(pl.col("u").abs().alias("a"), (pl.col("u") < 0).alias("neg")).select(*exprs, "neg")
    n = len(s)
    head = np.empty((n, 4), ">i2")
    head[:, 0] = ndigits
    head[:, 1] = ndigits - 1 - frac_digits
    head[:, 2] = np.where(digits.get_column("neg").to_numpy(), _NUMERIC_NEG, 0)
    head[:, 3] = scale
    body = np.empty((n, ndigits), ">i2")
    for k in range(ndigits):
        body[:, ndigits - 1 - k] = digits.get_column(f"d{k}").to_numpy()
    payload = np.concatenate([head.view(np.uint8), body.view(np.uint8)], axis=1)
    return _fixed_payload(payload, valid)


def _array(s: pl.Series, elem_typname: str, elem_oid: int) -> pa.Array:
    """A one-dimensional array field: ndim, has-null flag, element OID, then (ndim 1) length and lower bound 1,
    then each element as a field (length + value). An empty list is ndim 0 (the header's first 12 bytes)."""
    if isinstance(s.dtype, pl.Array):
        s = s.cast(pl.List(s.dtype.inner))
    arrow = s.rechunk().to_arrow()
    list_offsets = arrow.offsets.to_numpy().astype(np.int64)  # into arrow.values, the slice's offset included
    counts = np.diff(list_offsets)
    valid = s.is_not_null().to_numpy()
    if counts[~valid].any():
        raise ValueError(f"column {s.name!r}: a NULL list with elements behind it (unexpected Arrow layout)")
    values = pl.Series(arrow.values)
    elements = _scalar(values, elem_typname)
    elem_offsets = np.frombuffer(elements.buffers()[1], np.int64, len(elements) + 1, elements.offset * 8)
    # list rows are consecutive slices of the elements, so the element fields' offsets bound the rows' bodies
    body_offsets = np.ascontiguousarray(elem_offsets[list_offsets])
    null_before = np.zeros(len(values) + 1, np.int64)
    np.cumsum(values.is_null().to_numpy(), out=null_before[1:])
    has_null = null_before[list_offsets[1:]] > null_before[list_offsets[:-1]]
    n = len(s)
    header_len = np.where(counts > 0, 20, 12)
    head = np.zeros((n, 6), ">i4")
    head[:, 0] = np.where(valid, header_len + np.diff(body_offsets), -1)
    head[:, 1] = counts > 0
    head[:, 2] = has_null
    head[:, 3] = elem_oid
    head[:, 4] = counts
    head[:, 5] = 1
    widths = np.where(valid, 4 + header_len, 4)
    headers = _variable(head.view(np.uint8).reshape(n, 24)[np.arange(24) < widths[:, None]], widths)
    bodies = pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(body_offsets), elements.buffers()[2]])
    return pc.binary_join_element_wise(headers, bodies, _SEP)


def write_rows(copy: Copy, df: pl.DataFrame, columns: list[PgColumn]) -> None:
    """The slow path: psycopg dumps each value (Python ``Decimal``, ``datetime``, lists) by the column's OID."""
    copy.set_types([col.oid for col in columns])
    for row in df.select([col.name for col in columns]).iter_rows():
        copy.write_row(row)
