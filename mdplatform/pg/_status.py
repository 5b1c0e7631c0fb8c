"""The ingestor's health in PostgreSQL: ``collector_status`` rows (``sql/postgres/004_collector_status.sql``) written
at every status report, on a thread of their own.

Per report: a row per connection (``symbol`` and ``channel`` NULL; ``state`` the connection's, ``never connected``
until its first handshake; ``messages`` received so far; ``detail`` a JSON object: the connection's number, its
current id, msgs/s, last message age, gaps, reconnects, errors, the last error) and a row per book (``symbol``,
``channel`` the book channel subscribed, ``state`` its sync state). A database that is down or not migrated never
stops collection: the rows of that report are dropped, the error is logged once and counted (``health``)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg

from ._dsn import PgError, redact_dsn, scrub
from ._pool import pooled

__all__ = ["StatusRow", "StatusWriter", "status_rows"]

log = logging.getLogger("mdplatform.pg")

#: (ts, exchange, symbol, channel, state, messages, detail)
StatusRow = tuple[datetime, str, str | None, str | None, str, int | None, str | None]

_INSERT = (
    "INSERT INTO collector_status (ts, exchange, symbol, channel, state, messages, detail) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
_DETAIL = ("conn_id", "msgs_per_s", "last_message_age_s", "gaps", "reconnects", "errors", "last_error")


def status_rows(health: Mapping[str, Any]) -> list[StatusRow]:
    """The ``collector_status`` rows of a health document (``Ingestor.health``), stamped with its ``time``."""
    ts = datetime.fromisoformat(health["time"]).astimezone(UTC)
    rows: list[StatusRow] = []
    for conn in health["connections"]:
        state = conn["state"] if conn["ever_connected"] else "never connected"
        detail = {"connection": conn["connection"]} | {k: conn[k] for k in _DETAIL}
        rows.append((ts, conn["exchange"], None, None, state, conn["messages_received"], json.dumps(detail)))
        for symbol, sync in conn["books"].items():
            rows.append((ts, conn["exchange"], symbol, conn["book_channel"], sync, None, None))
    return rows


class StatusWriter:
    """Writes each report's rows to ``dsn`` on one thread. A report that arrives while another is being written
    waits for it, replacing any older one still waiting (counted in ``skipped``): a slow database never queues
    reports in memory, and the last report (the ingestor stopping) is always written."""

    def __init__(self, dsn: str) -> None:
        """``PgConfigError`` when ``dsn`` cannot be parsed."""
        self.dsn = dsn
        self.database = redact_dsn(dsn)
        self.rows_written = 0
        self.errors = 0
        self.skipped = 0
        self.last_error: str | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-status")
        self._lock = threading.Lock()
        self._busy = False
        self._next: list[StatusRow] | None = None

    def submit(self, health: Mapping[str, Any]) -> None:
        rows = status_rows(health)
        with self._lock:
            if self._busy:
                self.skipped += self._next is not None
                self._next = rows
                return
            self._busy = True
        self._thread.submit(self._drain, rows)

    def _drain(self, rows: list[StatusRow] | None) -> None:
        while rows is not None:
            self._write(rows)
            with self._lock:
                rows, self._next = self._next, None
                self._busy = rows is not None

    def _write(self, rows: list[StatusRow]) -> None:
        try:
            with pooled(self.dsn) as conn, conn.cursor() as cur:
                cur.executemany(_INSERT, rows)
        except (PgError, psycopg.Error) as exc:
            self.errors += 1
            message = scrub(str(exc).strip(), self.dsn)
            if message != self.last_error:  # once per distinct failure, not at every report
                log.warning("collector_status not written to %s: %s", self.database, message)
            self.last_error = message
            return
        self.rows_written += len(rows)
        self.last_error = None

    def close(self) -> None:
        """Wait for the rows being written and waiting, then stop the thread."""
        self._thread.shutdown(wait=True)

    def health(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "rows_written": self.rows_written,
            "errors": self.errors,
            "skipped": self.skipped,
            "last_error": self.last_error,
        }
