"""The writer of imports: rows of a recording (or any finite, time-ordered input) into one file per exchange and hour.

``mdp import-capture`` lands hours, not minutes: ``{table}/exchange=X/date=D/hour=H/<name>-<n>.parquet``, the layout
of compacted hour files (``_layout.py``: its footer lists the minutes it holds; it absorbed nothing), with the raw
rows in row groups by channel group (``_lakefile.py``). An hour's file is open while its rows come and is committed
(atomically) by ``close_before`` once the input has moved past it, or by ``close``; rows for an hour already
committed (a late event, a capture that goes back in time) open the next part, ``n + 1``. A deterministic ``name``
makes a repeated import replace its files instead of adding to them.

Encoding and writing run on one background thread, so reading the input goes on meanwhile; at most ``max_pending``
batches wait for it (memory stays bounded whatever the input's size). After an hour's files are committed, a
landing manifest (``_landed.py``) lists each of their minutes, as for the collector's files.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._time import HOUR_NS, MINUTE_NS
from ..schemas import EVENTS_ARROW, RAW_ARROW
from ._fs import lake_root
from ._lakefile import EventRow, LakeFileWriter, events_batch
from ._landed import Landed, write_manifest
from ._layout import FileMeta, span_dir
from ._paths import EVENTS_TABLE, RAW_TABLE, MinuteTable

__all__ = ["HourWriter", "HourWriterStats"]


@dataclass(slots=True)
class HourWriterStats:
    rows_written: int = 0
    files_written: int = 0
    events_written: int = 0
    event_files_written: int = 0


@dataclass(slots=True)
class _Open:
    """One file being written: its writer, the rows per minute it holds so far, and its part number."""

    writer: LakeFileWriter
    part: int
    minutes: dict[int, int] = field(default_factory=dict)


class HourWriter:
    """Writes raw rows (``append``, Arrow tables in ``RAW_ARROW``) and events (``event``) under ``root`` into one
    file per (table, exchange, hour), named ``<name>-<n>.parquet``."""

    def __init__(
        self,
        root: str | None,
        name: str,
        *,
        tables: tuple[MinuteTable, MinuteTable] = (RAW_TABLE, EVENTS_TABLE),
        max_pending: int = 2,
    ) -> None:
        self.root = lake_root(root)
        self.name = name
        self.tables = tables
        self.max_pending = max_pending
        self.stats = HourWriterStats()
        self._open: dict[tuple[MinuteTable, str, int], _Open] = {}
        self._parts: dict[tuple[MinuteTable, str, int], int] = {}
        self._events: dict[tuple[str, int], list[EventRow]] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hour-writer")
        self._pending: list[Future[None]] = []
        self._manifests = 0

    # --- rows --------------------------------------------------------------------------------------

    def append(self, table: pa.Table) -> None:
        """Raw rows in receive order (``RAW_ARROW``; any exchanges and hours)."""
        if table.num_rows == 0:
            return
        recv = table.column("recv_ts").cast(pa.int64()).to_numpy()
        exchanges = table.column("exchange")
        single = exchanges.num_chunks == 1 and pc.count_distinct(exchanges).as_py() == 1
        hours = recv - recv % HOUR_NS
        if single and hours[0] == hours[-1] and (hours == hours[0]).all():
            self._submit(self.tables[0], exchanges[0].as_py(), int(hours[0]), table, recv)
            return
        keys = pa.table({"exchange": exchanges, "hour": hours})
        for key in keys.group_by(["exchange", "hour"], use_threads=False).aggregate([]).to_pylist():
            mask = pc.and_(pc.equal(exchanges, key["exchange"]), pc.equal(keys.column("hour"), key["hour"]))
            rows = mask.to_numpy(zero_copy_only=False)
            self._submit(self.tables[0], key["exchange"], key["hour"], table.filter(mask), recv[rows])

    def event(
        self,
        recv_ts: int,
        exchange: str,
        conn_id: str,
        kind: str,
        channel: str,
        symbol: str,
        seq: int,
        exchange_ts: int | None,
        frame_recv_ts: int | None,
        detail: str,
    ) -> None:
        """One row of the events table (schema ``EVENTS``), buffered until its hour is written."""
        key = (exchange, recv_ts - recv_ts % HOUR_NS)
        self._events.setdefault(key, []).append(
            (recv_ts, conn_id, kind, channel, symbol, seq, exchange_ts, frame_recv_ts, detail)
        )

    def _submit(self, name: MinuteTable, exchange: str, hour: int, table: pa.Table, recv: np.ndarray) -> None:
        key = (name, exchange, hour)
        f = self._open.get(key)
        if f is None:
            part = self._parts.get(key, 0)
            self._parts[key] = part + 1
            schema = RAW_ARROW if name == self.tables[0] else EVENTS_ARROW
            path = f"{span_dir(self.root, name, exchange, hour, HOUR_NS)}/{self.name}-{part:05d}.parquet"
            writer = LakeFileWriter(path, schema, exchange=exchange if schema is RAW_ARROW else None)
            f = self._open[key] = _Open(writer, part)
        minutes, counts = np.unique(recv - recv % MINUTE_NS, return_counts=True)
        for m, n in zip(minutes.tolist(), counts.tolist(), strict=True):
            f.minutes[m] = f.minutes.get(m, 0) + n
        self._wait(self.max_pending)
        self._pending.append(self._pool.submit(f.writer.write, table))

    # --- committing --------------------------------------------------------------------------------

    def close_before(self, ns: int) -> None:
        """Commit every hour that ended at or before ``ns`` (its rows and its events)."""
        self._commit([h for h in {k[2] for k in self._open} | {k[1] for k in self._events} if h + HOUR_NS <= ns])

    def _commit(self, hours: Iterable[int]) -> None:
        hours = set(hours)
        for exchange, hour in sorted(k for k in self._events if k[1] in hours):
            rows = self._events.pop((exchange, hour))
            self._submit(
                self.tables[1],
                exchange,
                hour,
                pa.Table.from_batches([events_batch(exchange, rows)]),
                np.array([r[0] for r in rows]),
            )
        done = [(k, self._open.pop(k)) for k in sorted(self._open) if k[2] in hours]
        if done:
            self._wait(self.max_pending)
            self._pending.append(self._pool.submit(self._finish, done))

    def _finish(self, done: list[tuple[tuple[MinuteTable, str, int], _Open]]) -> None:
        """On the writer thread, after every row of these files: commit them, then their manifest."""
        landed: list[Landed] = []
        for (name, exchange, hour), f in done:
            meta = FileMeta(minutes=tuple(sorted(f.minutes)))
            rows = f.writer.commit(meta, hour)
            if name == self.tables[0]:
                self.stats.rows_written += rows
                self.stats.files_written += 1
            else:
                self.stats.events_written += rows
                self.stats.event_files_written += 1
            landed += [Landed(name, exchange, m, n) for m, n in sorted(f.minutes.items())]
        self._manifests += 1
        write_manifest(self.root, self.name, self._manifests, landed)

    def _wait(self, most: int) -> None:
        """Wait until at most ``most`` tasks are queued; raise the first failure."""
        while len(self._pending) > most:
            self._pending.pop(0).result()

    def close(self) -> None:
        """Commit everything and wait for it."""
        try:
            self._commit({k[2] for k in self._open} | {k[1] for k in self._events})
            self._wait(0)
        finally:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Drop every file not committed yet (an error: what was committed stays)."""
        for f in self._open.values():
            self._pending.append(self._pool.submit(f.writer.abort))
        self._open.clear()
        self._events.clear()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> HourWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
