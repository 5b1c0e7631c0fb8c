"""Counters a connection keeps, and how they add up to a collector's status and health."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._time import iso_ns

__all__ = ["ConnectionCounters"]


@dataclass(slots=True)
class ConnectionCounters:
    conn_id: str = ""
    state: str = "idle"  # idle | connecting | connected | backoff | stopped
    url: str = ""
    messages_received: int = 0
    messages_processed: int = 0
    errors: int = 0
    #: landed frames that could not be interpreted (not UTF-8, a book frame the session could not apply, ...)
    frame_errors: int = 0
    reconnects: int = 0
    #: sequence gaps and checksum mismatches reported by the exchange's session (each triggers a resync)
    sync_errors: int = 0
    snapshots: int = 0
    #: subscriptions the exchange refused (``sub_error`` events), over every connection
    sub_errors: int = 0
    #: refusals on the current connection (health is degraded while there are any)
    refused: list[str] = field(default_factory=list)
    #: streams currently subscribed on the connection
    subscribed: int = 0
    last_message_ns: int = 0
    connected_since_ns: int = 0
    #: when the last ping was sent whose pong came back (the last ``alive`` event)
    last_alive_ns: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "conn_id": self.conn_id,
            "state": self.state,
            "url": self.url,
            "messages_received": self.messages_received,
            "messages_processed": self.messages_processed,
            "errors": self.errors,
            "frame_errors": self.frame_errors,
            "reconnects": self.reconnects,
            "sync_errors": self.sync_errors,
            "snapshots": self.snapshots,
            "sub_errors": self.sub_errors,
            "refused": list(self.refused),
            "subscribed": self.subscribed,
            "last_message_time": iso_ns(self.last_message_ns),
            "connected_since": iso_ns(self.connected_since_ns),
            "last_alive_time": iso_ns(self.last_alive_ns),
            "last_error": self.last_error,
        }
