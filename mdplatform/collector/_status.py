"""Counters a connection keeps, and how they add up to a collector's status and health."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._time import iso_ns

if TYPE_CHECKING:
    from ._collector import ExchangeCollector

__all__ = ["RATE_WINDOW_S", "ConnectionCounters", "Rates", "connection_rows", "never_connected"]

#: the span messages per second are measured over
RATE_WINDOW_S = 10.0


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


class Rates:
    """Messages per second of each connection over the last ``window_s``: the ingestor samples the message counts
    at its ticks (at most every ``every_s``), a reader divides; the receive loop pays nothing."""

    def __init__(self, window_s: float = RATE_WINDOW_S, every_s: float = 1.0) -> None:
        self.window_s = window_s
        self.every_s = every_s
        self._samples: dict[object, deque[tuple[float, int]]] = {}
        self._last = float("-inf")

    def sample(self, now_s: float, counts: Callable[[], Iterable[tuple[object, int]]]) -> None:
        """``counts()``: (key, messages so far) at monotonic time ``now_s``, asked only when a sample is due."""
        if now_s - self._last < self.every_s:
            return
        self._last = now_s
        for key, count in counts():
            samples = self._samples.setdefault(key, deque())
            samples.append((now_s, count))
            # the oldest sample kept is the newest one at least a window old: the rate spans a whole window
            while len(samples) > 1 and now_s - samples[1][0] >= self.window_s:
                samples.popleft()

    def per_second(self, key: object, now_s: float, count: int) -> float:
        """Messages per second from the oldest sample kept of ``key`` to ``count`` at ``now_s`` (0 before any)."""
        samples = self._samples.get(key)
        if not samples or now_s <= samples[0][0]:
            return 0.0
        since, then = samples[0]
        return (count - then) / (now_s - since)


def connection_rows(
    collectors: Sequence[ExchangeCollector], rates: Rates, now_ns: int, now_s: float
) -> list[dict[str, Any]]:
    """One row per connection for ``/health``, ``/metrics`` and ``mdp status``: ``connection`` numbers the
    connections of an exchange (stable across reconnects, unlike ``conn_id``); ``books`` is the sync state of each
    book the connection keeps (``book_channel``: the book channels it subscribed); ``last_message_age_s`` counts
    from the last frame or, before any, the connect."""
    rows: list[dict[str, Any]] = []
    numbered: dict[str, int] = {}
    for collector in collectors:
        exchange = collector.exchange.id
        books = collector.exchange.capabilities.book_channels
        for conn in collector.connections:
            c = conn.counters
            n = numbered[exchange] = numbered.get(exchange, -1) + 1
            rows.append(
                {
                    "exchange": exchange,
                    "connection": n,
                    "conn_id": c.conn_id or None,
                    "state": c.state,
                    "ever_connected": c.connected_since_ns > 0,
                    "messages_received": c.messages_received,
                    "msgs_per_s": round(rates.per_second(conn, now_s, c.messages_received), 3),
                    "last_message_age_s": round((now_ns - c.last_message_ns) / 1e9, 3) if c.last_message_ns else None,
                    "gaps": c.sync_errors,
                    "reconnects": c.reconnects,
                    "errors": c.errors,
                    "frame_errors": c.frame_errors,
                    "subscribed": c.subscribed,
                    "books": conn.session.sync_state() if conn.session is not None else {},
                    "book_channel": ",".join(sorted({s.channel for s in conn.subs} & books)) or None,
                    "last_error": c.last_error,
                }
            )
    return rows


def never_connected(collectors: Sequence[ExchangeCollector]) -> list[str]:
    """A problem per collector none of whose connections ever completed a handshake (a wrong URL, a blocked network,
    a refused upgrade): its data is missing entirely, so the ingestor is down, not merely degraded."""
    problems = []
    for collector in collectors:
        if any(conn.counters.connected_since_ns for conn in collector.connections):
            continue
        states = sorted({conn.counters.state for conn in collector.connections}) or ["not started"]
        errors = [conn.counters.last_error for conn in collector.connections if conn.counters.last_error]
        problem = f"{collector.exchange.id} never connected ({', '.join(states)})"
        problems.append(problem + (f": {errors[-1]}" if errors else ""))
    return problems
