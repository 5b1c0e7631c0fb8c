"""Raw rows as the writer buffers them, and their conversion to Arrow (on the journal's thread, off the receive loop).

Rows come two ways, kept in arrival order in one list of parts per lake file in the making:

- ``RowRuns``: Python lists, row by row or a read at a time (``RawWriter.append``/``append_frames``: imports,
  backfills, REST snapshots, the pure-Python receive path). Rows received together share recv_ts, conn_id and
  numbering, so a run of them is one entry in four run lists.
- ``BatchSlice``: rows of a ``FrameBatch`` from the compiled receive path (``collector/_batcher.pyx``), whose
  payloads, offsets, receive times and route indexes are already laid out as Arrow buffers: the payload and
  receive-time columns are used as they are (no copy), channel and symbol come from the route indexes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Protocol

import numpy as np
import pyarrow as pa

from ..schemas import RAW_ARROW

__all__ = ["BatchSlice", "FrameBatch", "Part", "RowRuns", "frames_batch"]

_TS = RAW_ARROW.field("recv_ts").type


class FrameBatch(Protocol):
    """Frames of one connection in receive order: frame i is ``data[offsets[i]:offsets[i + 1]]`` (UTF-8; offsets
    int32, ``rows + 1`` of them from 0), its route index (into the connection's route list) ``routes[i]`` (int32),
    its receive time ``recv[i]`` (int64 ns, UTC). ``min_recv``/``max_recv`` bound the receive times."""

    @property
    def rows(self) -> int: ...
    @property
    def data(self) -> memoryview: ...
    @property
    def offsets(self) -> memoryview: ...
    @property
    def routes(self) -> memoryview: ...
    @property
    def recv(self) -> memoryview: ...
    @property
    def min_recv(self) -> int: ...
    @property
    def max_recv(self) -> int: ...


@dataclass(frozen=True, slots=True)
class BatchSlice:
    """Rows ``start:stop`` of ``batch``, numbered from ``seq`` on ``conn_id``; ``routes``: (channel, symbol) by
    route index (a list the connection only appends to)."""

    batch: FrameBatch
    start: int
    stop: int
    conn_id: str
    seq: int
    routes: Sequence[tuple[str, str]]

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass(slots=True)
class RowRuns:
    """Rows as Python lists; a run (rows received together on one connection) is one entry of the run lists."""

    run_ts: list[int] = field(default_factory=list)
    run_conn: list[str] = field(default_factory=list)
    run_seq: list[int] = field(default_factory=list)
    run_rows: list[int] = field(default_factory=list)
    channel: list[str] = field(default_factory=list)
    symbol: list[str] = field(default_factory=list)
    payload: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.payload)


Part = BatchSlice | RowRuns


def frames_batch(exchange: str, parts: Sequence[Part]) -> pa.RecordBatch:
    """The rows of ``parts``, in order, as one batch of the raw table (``RAW_ARROW``)."""
    batches = [
        _runs_batch(exchange, group[0]) if isinstance(group[0], RowRuns) else _slices_batch(exchange, group)
        for group in _groups(parts)
    ]
    if len(batches) == 1:
        return batches[0]
    # one copy of the rows (on the journal's thread): a journal record and a lake file's batch are whole ticks
    (combined,) = pa.Table.from_batches(batches, schema=RAW_ARROW).combine_chunks().to_batches()
    return combined


def _groups(parts: Sequence[Part]) -> list[Sequence[Part]]:
    """Each ``RowRuns`` alone, consecutive ``BatchSlice`` parts together."""
    groups: list[Sequence[Part]] = []
    for _, group in groupby(parts, key=type):
        items = list(group)
        groups += [items] if isinstance(items[0], BatchSlice) else [[runs] for runs in items]
    return groups


def _runs_batch(exchange: str, runs: RowRuns) -> pa.RecordBatch:
    n = runs.rows
    rows = np.array(runs.run_rows, np.int64)
    run_of_row = np.repeat(np.arange(len(rows)), rows)
    first_row = np.cumsum(rows) - rows
    seq = (np.array(runs.run_seq, np.int64) - first_row)[run_of_row] + np.arange(n)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(np.array(runs.run_ts, np.int64)[run_of_row]).cast(_TS),
            pa.repeat(pa.scalar(exchange, pa.string()), n),
            pa.array(runs.channel, pa.string()),
            pa.array(runs.symbol, pa.string()),
            pa.array(runs.run_conn, pa.string()).take(pa.array(run_of_row)),
            pa.array(seq),
            pa.array(runs.payload, pa.string()),
        ],
        schema=RAW_ARROW,
    )


def _slices_batch(exchange: str, slices: Sequence[Part]) -> pa.RecordBatch:
    """Consecutive batch slices (of one connection or several) as one batch: a whole batch's payloads and receive
    times are used where they are; several slices' are put together with one copy each (a handful of calls however
    many slices: a tick of ten connections at a moderate rate brings hundreds of small batches)."""
    first = slices[0]
    assert isinstance(first, BatchSlice)
    if len(slices) == 1 and first.rows == first.batch.rows:
        batch = first.batch
        payload = pa.StringArray.from_buffers(batch.rows, pa.py_buffer(batch.offsets), pa.py_buffer(batch.data))
        recv: pa.Array = pa.Array.from_buffers(_TS, batch.rows, [None, pa.py_buffer(batch.recv)])
        index = np.frombuffer(batch.routes, np.int32)
        conn, conn_ids = np.zeros(batch.rows, np.int32), [first.conn_id]
        seq = np.arange(first.seq, first.seq + batch.rows, dtype=np.int64)
        channels, symbols = [r[0] for r in first.routes], [r[1] for r in first.routes]
    else:
        data: list[memoryview] = []
        offsets: list[np.ndarray] = []
        recvs: list[np.ndarray] = []
        indexes: list[np.ndarray] = []
        seqs: list[np.ndarray] = []
        conns: list[np.ndarray] = []
        conn_ids, channels, symbols = [], [], []
        bases: dict[int, int] = {}  # a connection's route list -> where its routes start in channels/symbols
        size = 0
        for part in slices:
            assert isinstance(part, BatchSlice)
            b, lo, hi = part.batch, part.start, part.stop
            offs = np.frombuffer(b.offsets, np.int32)[lo : hi + 1]
            start, stop = int(offs[0]), int(offs[-1])
            data.append(b.data[start:stop])
            offsets.append(offs[:-1].astype(np.int64) + (size - start))
            size += stop - start
            recvs.append(np.frombuffer(b.recv, np.int64)[lo:hi])
            base = bases.get(id(part.routes))
            if base is None:  # (the list only grows: every index of every slice of it is in it now)
                base = bases[id(part.routes)] = len(channels)
                channels += [r[0] for r in part.routes]
                symbols += [r[1] for r in part.routes]
            indexes.append(np.frombuffer(b.routes, np.int32)[lo:hi] + base)
            seqs.append(np.arange(part.seq, part.seq + hi - lo, dtype=np.int64))
            conns.append(np.full(hi - lo, len(conn_ids), np.int32))
            conn_ids.append(part.conn_id)
        offsets.append(np.array([size], np.int64))
        rows = sum(p.rows for p in slices)
        payload = pa.StringArray.from_buffers(
            rows, pa.py_buffer(np.concatenate(offsets).astype(np.int32)), pa.py_buffer(b"".join(data))
        )
        recv = pa.array(np.concatenate(recvs)).cast(_TS)
        index, conn, seq = np.concatenate(indexes), np.concatenate(conns), np.concatenate(seqs)
    n = len(payload)
    return pa.RecordBatch.from_arrays(
        [
            recv,
            pa.repeat(pa.scalar(exchange, pa.string()), n),
            pa.array(channels, pa.string()).take(index),
            pa.array(symbols, pa.string()).take(index),
            pa.array(conn_ids, pa.string()).take(conn),
            pa.array(seq),
            payload,
        ],
        schema=RAW_ARROW,
    )
