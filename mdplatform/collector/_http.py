"""The running ingestor's health and metrics over HTTP: ``/health`` (its health document as JSON: 200 when healthy,
503 when degraded, down or stopped, the reasons in ``problems``) and ``/metrics`` (Prometheus text, through
``prometheus_client``).

The server runs on threads of its own (``prometheus_client``'s threading WSGI server), never in the event loop; a
request asks the loop for one snapshot (``call_soon_threadsafe``: the counters are read where they are written,
between two callbacks, so a snapshot is consistent and the receive loop only pays for building it) and renders it
on its thread. A loop that does not answer within ``LOOP_TIMEOUT_S`` is itself the answer: 503, "not responding".
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, ProcessCollector, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["HEALTH_STATES", "LOOP_TIMEOUT_S", "StatusServer", "metric_families"]

log = logging.getLogger("mdplatform.ingest")

#: how long a request waits for the event loop's snapshot before answering that the ingestor is not responding
LOOP_TIMEOUT_S = 5.0
#: the ingestor's health, best first (``Ingestor.health``)
HEALTH_STATES = ("healthy", "degraded", "down", "stopped")
#: a connection's states (``ConnectionCounters.state``)
CONNECTION_STATES = ("idle", "connecting", "connected", "backoff", "stopped")
_CONN = ["exchange", "connection"]

Snapshot = Callable[[], dict[str, Any]]


class _NotResponding(Exception):
    pass


class _Quiet(WSGIRequestHandler):
    """No line on stderr per request (a scraper every few seconds would flood the ingestor's log)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StatusServer:
    """``/health`` and ``/metrics`` of the ingestor whose event loop is ``loop``, from ``snapshot()`` (its health
    document, computed on the loop). ``start`` binds (OSError when the address is taken), ``close`` stops."""

    def __init__(self, snapshot: Snapshot, loop: asyncio.AbstractEventLoop, host: str, port: int) -> None:
        self._snapshot = snapshot
        self._loop = loop
        self.host = host
        self.port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Families(self.snapshot))
        ProcessCollector(registry=self.registry)  # memory, CPU, open files of the ingestor's process
        self._metrics = make_wsgi_app(self.registry)
        self._server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        server = make_server(self.host, self.port, self._app, ThreadingWSGIServer, handler_class=_Quiet)
        server.daemon_threads = True
        self._server, self.port = server, server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="mdp-status-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def snapshot(self) -> dict[str, Any]:
        """The health document, computed on the event loop; ``_NotResponding`` when the loop does not answer."""
        done: Future[dict[str, Any]] = Future()

        def take() -> None:
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(self._snapshot())
                except BaseException as exc:  # handed to the waiting request, which answers 500
                    done.set_exception(exc)

        try:
            self._loop.call_soon_threadsafe(take)
            return done.result(timeout=LOOP_TIMEOUT_S)
        except RuntimeError as exc:  # the loop is closed: the ingestor has stopped
            raise _NotResponding("the ingestor has stopped") from exc
        except FutureTimeout:
            done.cancel()
            raise _NotResponding(f"the ingestor's event loop did not answer within {LOOP_TIMEOUT_S:g}s") from None

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            metrics: Iterable[bytes] = self._metrics(environ, start_response)
            return metrics
        if path != "/health":
            return _reply(start_response, "404 Not Found", {"error": "not found: try /health or /metrics"})
        try:
            doc = self.snapshot()
        except _NotResponding as exc:
            return _reply(start_response, "503 Service Unavailable", {"status": "down", "problems": [str(exc)]})
        code = "200 OK" if doc.get("status") == "healthy" else "503 Service Unavailable"
        return _reply(start_response, code, doc)


def _reply(start_response: StartResponse, status: str, doc: Mapping[str, Any]) -> list[bytes]:
    body = json.dumps(doc, indent=2, default=str).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class _Families:
    """The metrics of one snapshot, taken when Prometheus scrapes (a custom collector: nothing is updated in
    between)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        try:
            doc = self._snapshot()
        except _NotResponding:
            yield GaugeMetricFamily("mdp_ingestor_responding", "The ingestor's event loop answered the scrape.", 0)
            return
        yield GaugeMetricFamily("mdp_ingestor_responding", "The ingestor's event loop answered the scrape.", 1)
        yield from metric_families(doc)


def metric_families(doc: Mapping[str, Any]) -> Iterator[Metric]:
    """Prometheus metrics of a health document (``Ingestor.health``)."""
    status = GaugeMetricFamily("mdp_health_status", "The ingestor's health: 1 for the current state.", labels=["state"])
    for state in HEALTH_STATES:
        status.add_metric([state], float(doc.get("status") == state))
    yield status
    yield GaugeMetricFamily(
        "mdp_healthy", "1 when the ingestor is healthy (/health answers 200).", float(doc.get("status") == "healthy")
    )
    yield from _connection_families(doc.get("connections", []))
    yield from _lake_families(doc.get("lake", {}))
    pg = doc.get("pg")
    if pg is not None:
        yield CounterMetricFamily(
            "mdp_pg_status_rows", "collector_status rows written to PostgreSQL.", pg["rows_written"]
        )
        yield CounterMetricFamily("mdp_pg_status_errors", "Failed writes of collector_status rows.", pg["errors"])


def _connection_families(rows: list[dict[str, Any]]) -> Iterator[Metric]:
    def gauge(name: str, doc: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=_CONN)

    def counter(name: str, doc: str) -> CounterMetricFamily:
        return CounterMetricFamily(name, doc, labels=_CONN)

    state = GaugeMetricFamily("mdp_connection_state", "1 for the connection's current state.", labels=[*_CONN, "state"])
    up = gauge("mdp_connection_up", "1 while the connection is connected.")
    ever = gauge("mdp_connection_ever_connected", "1 once the connection has completed a handshake.")
    received = counter("mdp_connection_messages_received", "WebSocket frames received and landed.")
    rate = gauge("mdp_connection_messages_per_second", "Frames per second over the last 10 s.")
    age = gauge("mdp_connection_last_message_age_seconds", "Seconds since the last frame (or the connect).")
    gaps = counter("mdp_connection_gaps", "Book sequence gaps and checksum mismatches (each triggers a resync).")
    reconnects = counter("mdp_connection_reconnects", "Reconnects of the connection.")
    errors = counter("mdp_connection_errors", "Errors of the connection (failed connects, closes, refusals...).")
    frame_errors = counter("mdp_connection_frame_errors", "Landed frames that could not be interpreted.")
    subscribed = gauge("mdp_connection_subscribed_streams", "Streams subscribed on the connection.")
    synced = GaugeMetricFamily("mdp_book_synced", "1 while the book is in sync.", labels=["exchange", "symbol"])
    book_state = GaugeMetricFamily(
        "mdp_book_sync_state", "1, labelled with the book's sync state.", labels=["exchange", "symbol", "state"]
    )
    for row in rows:
        labels = [row["exchange"], str(row["connection"])]
        for name in CONNECTION_STATES:
            state.add_metric([*labels, name], float(row["state"] == name))
        up.add_metric(labels, float(row["state"] == "connected"))
        ever.add_metric(labels, float(row["ever_connected"]))
        received.add_metric(labels, row["messages_received"])
        rate.add_metric(labels, row["msgs_per_s"])
        if row["last_message_age_s"] is not None:
            age.add_metric(labels, row["last_message_age_s"])
        gaps.add_metric(labels, row["gaps"])
        reconnects.add_metric(labels, row["reconnects"])
        errors.add_metric(labels, row["errors"])
        frame_errors.add_metric(labels, row["frame_errors"])
        subscribed.add_metric(labels, row["subscribed"])
        for symbol, sync in row["books"].items():
            synced.add_metric([row["exchange"], symbol], float(sync == "synced"))
            book_state.add_metric([row["exchange"], symbol, sync], 1)
    yield from (state, up, ever, received, rate, age, gaps, reconnects, errors, frame_errors, subscribed)
    yield from (synced, book_state)


def _lake_families(lake: Mapping[str, Any]) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "mdp_lake_failing",
        "1 while the lake cannot be written (frames wait in the journal).",
        float(lake.get("state") == "failing"),
    )
    yield CounterMetricFamily("mdp_lake_write_errors", "Failed lake writes.", lake.get("write_errors", 0))
    yield CounterMetricFamily(
        "mdp_lake_frames_appended", "Frames handed to the lake writer.", lake.get("frames_appended", 0)
    )
    yield CounterMetricFamily(
        "mdp_lake_frames_written",
        "Frames written to the lake (with those replayed from the journal, an earlier run's included).",
        lake.get("frames_written", 0),
    )
    if "journal_bytes" in lake:
        yield GaugeMetricFamily(
            "mdp_journal_bytes", "Journal bytes on disk (frames not yet committed to the lake).", lake["journal_bytes"]
        )
        yield GaugeMetricFamily(
            "mdp_journal_budget_bytes", "Disk the journal may fill while the lake fails.", lake["journal_budget_bytes"]
        )
        yield GaugeMetricFamily(
            "mdp_journal_backlog_segments", "Journal segments waiting for the lake.", lake["backlog_segments"]
        )
