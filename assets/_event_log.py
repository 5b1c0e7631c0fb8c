"""Dagster's SQLite event log, keeping its connections: the stock storage opens a new engine and connection, and
syncs to disk, for every event it stores (a run over a range of hours stores a dozen events per hour: planned and
materialized per asset and partition), which cost more than the hours' own work. Here each database keeps one
connection (the most recent few databases), in WAL mode with ``synchronous=NORMAL``: a commit is durable once the
WAL is checkpointed, and a crash of the machine, not of a process, can lose the last events, never corrupt them.
Two more per-event costs go: the asset-key table's columns, which the stock storage reflects on every asset event,
are remembered once there; a check's planned event, stored as one row per partition of the run, is serialized
once, not once per row.

`mdp materialize` and `mdp backfill` run on it (``_runner._instance``) when DAGSTER_HOME keeps Dagster's default
storage; it reads and writes the same SQLite files as the stock storage that `dagster dev` uses beside it.
``base_dir``: as the stock one's, ``$DAGSTER_HOME/history/runs``.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

from dagster import Field, StringSource
from dagster._core.events import AssetCheckEvaluationPlanned
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

__all__ = ["PooledSqliteEventLogStorage"]

#: databases whose connection is kept (the index, the run being executed, the runs the UI is showing)
_KEPT = 8
#: as Dagster's own (SQLITE_BUSY_TIMEOUT_SECONDS): another process holding a write lock is waited for
_BUSY_TIMEOUT_S = 30


def _tune(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with one kept connection per database (see the module doc)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tables: set[str] = set()
        self._asset_key_columns: set[str] = set()
        super().__init__(base_dir, inst_data)

    def has_table(self, table_name: str) -> bool:
        # asked on every asset event; a table of the index database, once there, stays (the stock one opens an
        # engine to ask each time)
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        # asked on every asset event, by reflecting the table's columns; a column, once there, stays (migrations
        # add them)
        if column_name not in self._asset_key_columns and super()._has_asset_key_col_on_connection(conn, column_name):
            self._asset_key_columns.add(column_name)
        return column_name in self._asset_key_columns

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        # the stock statement (a PLANNED row per partition of the check's run) with the event serialized once, not
        # once per partition: a run over a week of hours serialized each check's planned event 168 times
        planned = cast(AssetCheckEvaluationPlanned, event.get_dagster_event().event_specific_data)
        keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        row = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert().values([{**row, "partition": key} for key in keys]))

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {"base_dir": Field(StringSource)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledSqliteEventLogStorage:
        return cls(config_value["base_dir"], inst_data)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=StaticPool,
                connect_args={"timeout": _BUSY_TIMEOUT_S, "check_same_thread": False},
            )
            event.listen(engine, "connect", _tune)
            while len(self._engines) >= _KEPT:
                self._engines.popitem(last=False)[1].dispose()
        self._engines[shard] = engine
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # the stock lock: the event log watcher's thread and the caller's take turns on a connection
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def dispose(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
        super().dispose()
