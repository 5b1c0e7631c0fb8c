"""Writing one file of a minute table: raw rows in row groups by channel group, committed atomically.

``LakeFileWriter`` streams rows (in receive order) into one file: each channel group's rows are buffered apart
and written as a row group of their own once about ``row_group_bytes`` of them are buffered, so memory stays
bounded whatever the file's size and every row group holds one group's rows in receive order. The file appears
whole at ``commit`` (``open_atomic``), or not at all after ``abort`` or a crash.
"""

from __future__ import annotations

import contextlib
from types import TracebackType

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..schemas import EVENTS_ARROW, RAW_ARROW
from ._atomic import open_atomic
from ._groups import GROUPS, GROUPS_KEY, group_ids
from ._layout import META_KEY, FileMeta

__all__ = ["EventRow", "LakeFileWriter", "events_batch", "write_minute_file"]

#: one row of the events table, without its exchange: recv_ts, conn_id, kind, channel, symbol, seq, exchange_ts,
#: frame_recv_ts, detail
EventRow = tuple[int, str, str, str, str, int, int | None, int | None, str]

#: uncompressed bytes of one group buffered before they become a row group (an hour of BTCUSDT spot book frames is
#: about 60 MB: four row groups, which a read of part of a day file can skip by ``recv_ts`` statistics)
ROW_GROUP_BYTES = 16 << 20
#: rows per row group at most (pyarrow's own default)
_MAX_ROWS = 1 << 20
_COMPRESSION = "zstd"
#: raw columns worth a dictionary (few distinct values) and statistics (what readers filter on): a payload is
#: neither, and computing them for it costs time and memory for nothing
_RAW_DICTIONARY = ["exchange", "channel", "symbol", "conn_id"]
_RAW_STATISTICS = ["recv_ts", "exchange", "channel", "symbol", "conn_id", "seq"]


class LakeFileWriter:
    """One file of a minute table at ``path`` (local path or fsspec URL), written as rows come.

    ``exchange``: the exchange whose raw rows these are; their channel groups (``_groups.py``) get row groups of
    their own. None (events, or another schema): rows are written in the order they come.
    """

    def __init__(
        self, path: str, schema: pa.Schema, *, exchange: str | None, row_group_bytes: int = ROW_GROUP_BYTES
    ) -> None:
        self.path = path
        self.schema = schema
        self.exchange = exchange
        self.row_group_bytes = row_group_bytes
        self.rows = 0
        self._buffers: list[list[pa.Table]] = [[] for _ in GROUPS] if exchange is not None else [[]]
        self._sizes = [0] * len(self._buffers)
        self._groups: list[str] = []
        self._stack: contextlib.ExitStack | None = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        """Append rows (in receive order)."""
        if table.num_rows == 0:
            return
        self.rows += table.num_rows
        if self.exchange is None:
            self._add(0, table)
            return
        ids = group_ids(self.exchange, table.column("channel"))
        present = pc.unique(ids).to_pylist()
        if len(present) == 1:
            self._add(int(present[0]), table)
            return
        for k in sorted(int(g) for g in present):
            self._add(k, table.filter(pc.equal(ids, pa.scalar(k, pa.int8()))))

    def _add(self, group: int, table: pa.Table) -> None:
        self._buffers[group].append(table)
        self._sizes[group] += table.nbytes
        if self._sizes[group] >= self.row_group_bytes:
            self._flush(group)

    def _flush(self, group: int) -> None:
        tables = self._buffers[group]
        if not tables:
            return
        table = pa.concat_tables(tables)
        if not table.schema.equals(self.schema):
            table = table.cast(self.schema)
        self._buffers[group], self._sizes[group] = [], 0
        if self._writer is None:
            self._stack = contextlib.ExitStack()
            fh = self._stack.enter_context(open_atomic(self.path))
            raw = self.schema.equals(RAW_ARROW)
            self._writer = pq.ParquetWriter(
                fh,
                self.schema,
                compression=_COMPRESSION,
                use_dictionary=_RAW_DICTIONARY if raw else True,
                write_statistics=_RAW_STATISTICS if raw else True,
            )
        self._writer.write_table(table, row_group_size=_MAX_ROWS)
        self._groups += [GROUPS[group]] * -(-table.num_rows // _MAX_ROWS)

    def commit(self, meta: FileMeta | None = None, span_start_ns: int = 0) -> int:
        """Write what is buffered and the footer (with ``meta``: an hour or day file), and make the file appear.
        Returns its rows; a writer that got no rows writes no file."""
        for group in range(len(self._buffers)):
            self._flush(group)
        if self._writer is None or self._stack is None:
            return 0
        kv: dict[bytes, bytes] = {}
        if self.exchange is not None:
            kv[GROUPS_KEY] = orjson.dumps(self._groups)
        if meta is not None:
            kv[META_KEY] = meta.encode(span_start_ns)
        if kv:
            self._writer.add_key_value_metadata(kv)
        self._writer.close()
        self._writer = None
        stack, self._stack = self._stack, None
        stack.close()
        return self.rows

    def abort(self) -> None:
        """Drop the file: nothing of it appears (a temp file is removed, an upload aborted)."""
        self._buffers = [[] for _ in self._buffers]
        stack, self._stack = self._stack, None
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):  # its footer goes to the temp file (or upload) dropped next
                writer.close()
        if stack is not None:
            err = RuntimeError(f"{self.path}: write aborted")
            stack.__exit__(type(err), err, None)

    def __enter__(self) -> LakeFileWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()


def write_minute_file(table: pa.Table, path: str, exchange: str) -> None:
    """Write one minute file atomically: raw rows (``RAW_ARROW``) in row groups by channel group, any other
    table (events) as it is."""
    writer = LakeFileWriter(path, table.schema, exchange=exchange if table.schema.equals(RAW_ARROW) else None)
    with writer:
        writer.write(table)
        writer.commit()


def events_batch(exchange: str, rows: list[EventRow]) -> pa.RecordBatch:
    """Event rows of one exchange as a batch of the events table (``EVENTS_ARROW``)."""
    ts = EVENTS_ARROW.field("recv_ts").type
    cols = list(zip(*rows, strict=True))
    return pa.RecordBatch.from_arrays(
        [
            pa.array(cols[0], type=pa.int64()).cast(ts),
            pa.array([exchange] * len(rows), pa.string()),
            pa.array(cols[1], pa.string()),
            pa.array(cols[2], pa.string()),
            pa.array(cols[3], pa.string()),
            pa.array(cols[4], pa.string()),
            pa.array(cols[5], pa.int64()),
            pa.array(cols[6], type=pa.int64()).cast(ts),
            pa.array(cols[7], type=pa.int64()).cast(ts),
            pa.array(cols[8], pa.string()),
        ],
        schema=EVENTS_ARROW,
    )
