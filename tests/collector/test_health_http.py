"""Health you can watch: a running ingestor, collecting from the local replay of a real Binance recording, serves
``/health`` and ``/metrics`` on loopback, and `mdp status` reads them (or the status file) as an operator would.

The metrics are parsed with ``prometheus_client``'s own parser and checked against what the replay sent and what
landed in the lake; nothing here is measured by time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from _live import SPOT, dead_port, head, live_ingestor, wait_for
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from mdplatform.cli import cli
from mdplatform.collector import ConfigError, ExchangeCollectorConfig, IngestConfig, Rates, load_config
from mdplatform.lake import read_events, read_raw
from mdplatform.replay import ReplayServer

ALL_TIME = (0, 2**62)
#: the first lines of the recording: about a minute of BTCUSDT trades, depth diffs and book tickers
LINES = 6_000
#: every client connection is dropped once after this many frames: one reconnect, and a book that syncs again
DROP_AFTER = 2_500


def _binance(server: ReplayServer | None) -> ExchangeCollectorConfig:
    assert server is not None
    return ExchangeCollectorConfig(
        exchange="binance",
        symbols=("BTCUSDT",),
        channels=("trade", "depth", "bookTicker"),
        ws_url=server.ws_url,
        rest_url=server.rest_url,
        reconnect_initial_s=0.05,
    )


def _metrics(url: str) -> dict[str, list[Sample]]:
    reply = httpx.get(f"{url}/metrics", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def _value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    found = [s.value for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]


def _health(url: str) -> tuple[int, dict[str, Any]]:
    reply = httpx.get(f"{url}/health", timeout=10)
    assert reply.headers["content-type"] == "application/json"
    return reply.status_code, reply.json()


def _status(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["status", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _only(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    (row,) = rows
    return row


@pytest.mark.timeout(180)
def test_a_running_ingestor_over_replay_serves_health_metrics_and_mdp_status(
    lake: str, shared_data: Path, tmp_path: Path
) -> None:
    capture = head(shared_data / SPOT, tmp_path, LINES)
    status_file = tmp_path / "status.json"
    with live_ingestor(lake, _binance, capture=capture, drop_after=DROP_AFTER, status_file=str(status_file)) as live:
        assert live.server is not None and live.ingestor is not None
        server = live.server
        # every frame the replay sent has arrived, and the book synced again after the dropped connection
        wait_for(lambda: server.finished.is_set() and _health(live.url)[0] == 200, 90, "replayed, healthy")
        wait_for(lambda: _health(live.url)[1]["connections"][0]["messages_received"] == server.sent, 30, "all in")
        code, health = _health(live.url)
        metrics = _metrics(live.url)
        status_code, status_out = _status("--url", live.url)
        file_code, file_out = _status("--status-file", str(status_file))
        json_code, json_out = _status("--url", live.url.removeprefix("http://"), "--json")
        missing = httpx.get(f"{live.url}/nope", timeout=10)
        elsewhere = _status("--url", f"{live.url}/nope")  # asks /nope/health: not an ingestor's answer
        sent = server.sent

    # /health: 200, healthy, one connection row that says what the replay did to it
    assert code == 200 and health["status"] == "healthy" and health["problems"] == []
    conn = _only(health["connections"])
    assert conn["exchange"] == "binance" and conn["connection"] == 0 and conn["state"] == "connected"
    assert conn["ever_connected"] is True
    assert conn["messages_received"] == sent and conn["reconnects"] == 1
    assert conn["books"] == {"BTCUSDT": "synced"} and conn["book_channel"] == "depth"
    assert isinstance(conn["msgs_per_s"], float) and conn["msgs_per_s"] >= 0
    assert missing.status_code == 404
    assert elsewhere == (1, f"Error: {live.url}/nope/health answered HTTP 404, not an ingestor's health\n")

    # /metrics: the same connection, counted as the replay and the lake count it
    assert _value(metrics, "mdp_ingestor_responding") == 1
    assert _value(metrics, "mdp_healthy") == 1
    assert _value(metrics, "mdp_health_status", state="healthy") == 1
    assert _value(metrics, "mdp_health_status", state="down") == 0
    conn_labels = {"exchange": "binance", "connection": "0"}
    assert _value(metrics, "mdp_connection_messages_received_total", **conn_labels) == sent
    assert _value(metrics, "mdp_connection_reconnects_total", **conn_labels) == 1
    assert _value(metrics, "mdp_connection_up", **conn_labels) == 1
    assert _value(metrics, "mdp_connection_state", state="connected", **conn_labels) == 1
    assert _value(metrics, "mdp_connection_state", state="backoff", **conn_labels) == 0
    assert _value(metrics, "mdp_connection_ever_connected", **conn_labels) == 1
    assert _value(metrics, "mdp_connection_subscribed_streams", **conn_labels) == 3
    assert _value(metrics, "mdp_connection_messages_per_second", **conn_labels) >= 0
    assert _value(metrics, "mdp_connection_last_message_age_seconds", **conn_labels) >= 0
    assert _value(metrics, "mdp_book_synced", exchange="binance", symbol="BTCUSDT") == 1
    assert _value(metrics, "mdp_book_sync_state", exchange="binance", symbol="BTCUSDT", state="synced") == 1
    assert _value(metrics, "mdp_lake_write_errors_total") == 0
    assert _value(metrics, "mdp_lake_failing") == 0
    assert _value(metrics, "mdp_journal_backlog_segments") == 0
    assert _value(metrics, "mdp_journal_budget_bytes") == 2048 * 2**20
    assert "process_resident_memory_bytes" in metrics

    # after the stop: what the counters said is what landed
    raw = read_raw(lake, *ALL_TIME)
    landed = raw.filter(pl.col("channel") != "depthSnapshot")
    assert landed.height == sent
    events = read_events(lake, *ALL_TIME)
    gaps = events.filter(pl.col("kind").is_in(["gap", "checksum"])).height
    assert _value(metrics, "mdp_connection_gaps_total", **conn_labels) == gaps == conn["gaps"]
    assert _value(metrics, "mdp_lake_frames_appended_total") <= raw.height

    # mdp status: the table, exit 0 while healthy
    assert status_code == 0, status_out
    lines = _lines(status_out)
    assert lines[0] == f"ingestor {health['writer']} ({live.url}): HEALTHY"
    assert lines[1].split() == [
        "CONNECTION",
        "STATE",
        "MESSAGES",
        "MSG/S",
        "LAST",
        "MSG",
        "GAPS",
        "RECONNECTS",
        "BOOKS",
    ]
    row = lines[2].split()
    assert row[:3] == ["binance/0", "connected", str(sent)]
    assert row[4].endswith("s") and row[5] == "ago"  # the last message's age, as of that request
    assert row[-4:] == [str(gaps), "1", "1/1", "synced"]
    assert (
        lines[3].startswith("journal ") and "0 segment(s) waiting for the lake; lake ok, 0 write error(s)" in lines[3]
    )
    assert len(lines) == 4  # no problem lines
    assert file_code == 0 and _lines(file_out)[0].endswith(f"({status_file}): HEALTHY"), file_out
    assert json_code == 0 and json.loads(json_out)["status"] == "healthy"

    # the status file the stopped ingestor left says so: not healthy, exit 1
    code, out = _status("--status-file", str(status_file))
    assert code == 1
    assert _lines(out)[0].endswith("DEGRADED") and f"problem: binance: {conn['conn_id']} is stopped" in out, out


@pytest.mark.timeout(60)
def test_a_collector_that_never_connected_is_down(lake: str) -> None:
    port = dead_port()

    def unreachable(_: ReplayServer | None) -> ExchangeCollectorConfig:
        return ExchangeCollectorConfig(
            exchange="binance",
            symbols=("BTCUSDT",),
            channels=("trade",),
            ws_url=f"ws://127.0.0.1:{port}/ws",
            rest_url=f"http://127.0.0.1:{port}",
            reconnect_initial_s=0.05,
        )

    with live_ingestor(lake, unreachable) as live:
        wait_for(lambda: _health(live.url)[1]["connections"][0]["errors"] >= 2, 30, "two failed connects")
        code, health = _health(live.url)
        metrics = _metrics(live.url)
        status_code, status_out = _status("--url", live.url)

    assert code == 503 and health["status"] == "down"
    problems = health["problems"]
    assert isinstance(problems, list)
    assert problems[0].startswith("binance never connected (") and "connection failed" in problems[0], problems
    conn = _only(health["connections"])
    assert conn["ever_connected"] is False and conn["messages_received"] == 0 and conn["last_message_age_s"] is None
    assert _value(metrics, "mdp_healthy") == 0
    assert _value(metrics, "mdp_health_status", state="down") == 1
    assert _value(metrics, "mdp_connection_ever_connected", exchange="binance", connection="0") == 0
    assert _value(metrics, "mdp_connection_up", exchange="binance", connection="0") == 0
    assert _value(metrics, "mdp_connection_errors_total", exchange="binance", connection="0") >= 2
    assert "mdp_connection_last_message_age_seconds" not in metrics  # never a message: no age to report
    assert status_code == 1
    lines = _lines(status_out)
    assert lines[0].endswith("): DOWN")
    assert lines[2].split()[:3] == ["binance/0", "never", "connected"]
    assert f"problem: {problems[0]}" in lines


def test_mdp_status_says_in_one_line_when_nothing_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = dead_port()
    code, out = _status("--url", f"127.0.0.1:{port}")
    assert code == 1
    assert _lines(out) == [
        f"Error: no ingestor answers at http://127.0.0.1:{port}/health (ConnectError: [Errno 111] Connection "
        "refused): is `mdp ingest` running there? (its address: status_http in its config, or $MDP_STATUS_HTTP)"
    ]
    monkeypatch.setenv("MDP_STATUS_HTTP", str(port))  # the default address comes from the environment
    code, out = _status()
    assert code == 1 and f"no ingestor answers at http://127.0.0.1:{port}/health" in out
    monkeypatch.setenv("MDP_STATUS_HTTP", "off")
    code, out = _status()
    assert (code, _lines(out)) == (1, ["Error: $MDP_STATUS_HTTP is off: pass --url or --status-file"])

    code, out = _status("--status-file", str(tmp_path / "missing.json"))
    assert code == 1 and len(_lines(out)) == 1 and "cannot read the status file" in out

    # a status file nobody has written for a while: the ingestor is not running, whatever the file says
    stale = tmp_path / "status.json"
    connection = {
        "exchange": "okx",
        "connection": 0,
        "state": "connected",
        "ever_connected": True,
        "messages_received": 12,
        "msgs_per_s": 0.5,
        "last_message_age_s": 1.0,
        "gaps": 0,
        "reconnects": 0,
        "books": {},
    }
    health = {"status": "healthy", "problems": [], "time": "2026-01-01T00:00:00Z", "every_s": 10.0}
    stale.write_text(json.dumps({"status": {}, "health": health | {"connections": [connection]}}))
    code, out = _status("--status-file", str(stale))
    assert code == 1
    lines = _lines(out)
    assert lines[0].endswith("STALE")
    assert lines[-1].startswith("problem: the status file was written ") and lines[-1].endswith("it is not running")


def test_the_status_address_is_configured_or_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ingest.yaml"
    entry = "collectors: [{exchange: binance, symbols: [BTCUSDT], channels: [trade]}]\n"
    config.write_text(entry + "status_http: off\n")
    assert load_config(config).status_http == "off"
    config.write_text(entry + "status_http: 9200\n")
    assert load_config(config).status_http == "9200"
    config.write_text(entry + "status_http: localhost:http\n")
    with pytest.raises(ConfigError, match=r"status_http: must be HOST:PORT, PORT or off, not 'localhost:http'"):
        load_config(config)
    config.write_text(entry)
    monkeypatch.setenv("MDP_STATUS_HTTP", "nine")
    with pytest.raises(ConfigError, match=r"\$MDP_STATUS_HTTP: must be HOST:PORT"):
        load_config(config)
    with pytest.raises(ConfigError, match="status_http"):
        IngestConfig((), status_http="1.2.3.4:99999")


def test_msgs_per_second_span_the_window() -> None:
    rates = Rates(window_s=10.0, every_s=1.0)
    key = object()
    assert rates.per_second(key, 0.0, 0) == 0.0  # nothing sampled yet

    def counts(count: int) -> Callable[[], list[tuple[object, int]]]:
        return lambda: [(key, count)]

    for t in range(0, 31):
        rates.sample(float(t), counts(100 * t))
        rates.sample(t + 0.5, counts(-1))  # not due: ignored
    # from the newest sample at least 10 s old (t=20, 2000) to 3100 at t=30.5
    assert rates.per_second(key, 30.5, 3_100) == pytest.approx(1_100 / 10.5)


@pytest.mark.timeout(90)
def test_a_connection_waiting_to_reconnect_is_degraded(lake: str, shared_data: Path, tmp_path: Path) -> None:
    capture = head(shared_data / SPOT, tmp_path, 2_000)

    def slow_to_reconnect(server: ReplayServer | None) -> ExchangeCollectorConfig:
        # the first reconnect waits 15-30 s (30 s times a random 0.5-1.0): long enough to look at it
        return replace(_binance(server), reconnect_initial_s=30.0, reconnect_max_s=30.0)

    with live_ingestor(lake, slow_to_reconnect, capture=capture, drop_after=500) as live:
        wait_for(lambda: _health(live.url)[1]["connections"][0]["state"] == "backoff", 60, "dropped, waiting")
        code, health = _health(live.url)
        metrics = _metrics(live.url)
        status_code, status_out = _status("--url", live.url)
        assert live.server is not None
        sent = live.server.sent

    assert code == 503 and health["status"] == "degraded"
    conn = _only(health["connections"])
    assert conn["ever_connected"] is True and conn["messages_received"] == sent and conn["reconnects"] == 0
    assert f"binance: {conn['conn_id']} is backoff" in health["problems"]
    labels = {"exchange": "binance", "connection": "0"}
    assert _value(metrics, "mdp_health_status", state="degraded") == 1
    assert _value(metrics, "mdp_connection_state", state="backoff", **labels) == 1
    assert _value(metrics, "mdp_connection_up", **labels) == 0
    assert _value(metrics, "mdp_connection_messages_received_total", **labels) == sent
    assert status_code == 1
    lines = _lines(status_out)
    assert lines[0].endswith("): DEGRADED") and lines[2].split()[:3] == ["binance/0", "backoff", str(sent)]
    assert f"problem: binance: {conn['conn_id']} is backoff" in lines
