"""Counters a connection keeps, and how they add up to a collector's status and health."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["ConnectionCounters", "iso_ns"]


def iso_ns(ns: int | None) -> str | None:
    if not ns:
        return None
    seconds, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


@dataclass(slots=True)
class ConnectionCounters:
    conn_id: str = ""
    state: str = "idle"  # idle | connecting | connected | backoff | stopped
    url: str = ""
    messages_received: int = 0
    messages_processed: int = 0
    errors: int = 0
    reconnects: int = 0
    #: sequence gaps and checksum mismatches reported by the exchange's session (each triggers a resync)
    sync_errors: int = 0
    snapshots: int = 0
    last_message_ns: int = 0
    connected_since_ns: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "conn_id": self.conn_id,
            "state": self.state,
            "url": self.url,
            "messages_received": self.messages_received,
            "messages_processed": self.messages_processed,
            "errors": self.errors,
            "reconnects": self.reconnects,
            "sync_errors": self.sync_errors,
            "snapshots": self.snapshots,
            "last_message_time": iso_ns(self.last_message_ns),
            "connected_since": iso_ns(self.connected_since_ns),
            "last_error": self.last_error,
        }
