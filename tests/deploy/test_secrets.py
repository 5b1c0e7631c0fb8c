"""Secrets never leak: the Binance API key (MDP_BINANCE_API_KEY) and credentials in a REST URL are sent, and appear
in no log record (every logger at DEBUG, httpx and httpcore included), no exception (chained causes included) and
no page of history, whatever the server answers (429, 418, 500, 4xx, nothing at all), even when it echoes the
request back; and the ingestor's status, health, log and lake hold none of the secrets the environment carries
(a DSN with a password, the API key, the S3 secret). Every server is on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import socket
import threading
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import polars as pl
import pytest
import websockets

from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.exchanges.binance._history import BinanceTradeHistory
from mdplatform.history import RestClient, RestError
from mdplatform.ingest import Ingestor

MS = 1_000_000
START_NS = 1_723_161_600_000 * MS  # 2024-08-09T00:00Z
#: stands for "everything the server was sent" in a scripted body: the server echoes it, as debugging proxies do
ECHO = "<ECHO>"


@dataclass
class Reply:
    status: int
    body: str = "[]"
    headers: dict[str, str] = field(default_factory=dict)


class Server:
    """A loopback HTTP server answering GETs with the scripted replies in turn (the last one repeats) and recording
    the headers of every request."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = dict(self.headers.items())
                outer.requests.append(headers)
                reply = outer.replies[min(len(outer.requests), len(outer.replies)) - 1]
                # the credentials first, so that a message cut short still reaches them
                ordered = sorted(headers.items(), key=lambda kv: kv[0] not in ("X-MBX-APIKEY", "Authorization"))
                echoed = "; ".join(f"{k}: {v}" for k, v in ordered)
                body = reply.body.replace(ECHO, json.dumps(echoed)[1:-1]).encode()
                self.send_response(reply.status)
                for key, value in {"Content-Type": "application/json", **reply.headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # quiet: the test reads the records
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.http.server_address[1])

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = "mdpkey" + secrets.token_hex(29)  # 64 characters, like Binance's
    monkeypatch.setenv("MDP_BINANCE_API_KEY", key)
    return key


@pytest.fixture
def everything(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # the root logger: httpx, httpcore, websockets and ours all record
    return caplog


#: the test's own WebSocket server logs what it receives (credentials included): not the code under test
SERVER_LOGGER = "tests.loopback_server"


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as a handler would write it: message, arguments, traceback."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    records = [r for r in caplog.records if not r.name.startswith(SERVER_LOGGER)]
    return "\n".join(formatter.format(record) + repr(record.args) for record in records)


def _exception_text(exc: BaseException) -> str:
    """The exception as it would be printed or logged, every cause and context included, and its attributes."""
    return "".join(traceback.format_exception(exc)) + repr(exc) + repr(vars(exc))


def _assert_absent(secret_values: list[str], **where: str) -> None:
    for name, text in where.items():
        for secret in secret_values:
            assert secret not in text, f"a secret appears in {name}"


def _fetch(base_url: str, **client_options: float) -> tuple[list[object], RestClient]:
    """Locate the first aggTrade at START_NS through the real Binance history code, which adds the API key."""
    history = BinanceTradeHistory("spot", "aggTrade")

    async def run() -> tuple[list[object], RestClient]:
        async with RestClient(**client_options) as client:
            pages = [
                p async for p in history.fetch(client, "BTCUSDT", START_NS, START_NS + 60_000 * MS, base_url=base_url)
            ]
            return pages, client

    return asyncio.run(asyncio.wait_for(run(), 30))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the API key ----------------------------------------------------------------------------------------------------


def test_the_api_key_is_sent_through_429_and_500_and_never_logged(
    api_key: str, everything: pytest.LogCaptureFixture
) -> None:
    replies = (
        Reply(429, '{"code":-1003,"msg":"Too many requests: ' + ECHO + '"}', {"Retry-After": "0"}),
        Reply(500, "<html>upstream error for " + ECHO + "</html>"),
        Reply(200, "[]"),
    )
    with Server(*replies) as server:
        pages, client = _fetch(f"http://127.0.0.1:{server.port}", backoff_s=0.01)
    # the key was really in play: sent with every request, answered 429 then 500 then 200
    assert [r.get("X-MBX-APIKEY") for r in server.requests] == [api_key] * 3
    assert (client.stats.throttled, client.stats.retries) == (1, 2)
    assert len(pages) == 1
    assert any(r.name == "httpx" and "HTTP Request" in r.getMessage() for r in everything.records)
    assert any(r.name == "mdplatform.history" and "HTTP 429" in r.getMessage() for r in everything.records)
    _assert_absent([api_key], logs=_logged(everything), pages=repr(pages))


@pytest.mark.parametrize(
    "reply",
    [
        Reply(429, '{"code":-1003,"msg":"Too many requests: ' + ECHO + '"}', {"Retry-After": "0"}),
        Reply(418, '{"code":-1003,"msg":"banned: ' + ECHO + '"}', {"Retry-After": "3600"}),
        Reply(500, "<html>upstream error for " + ECHO + "</html>"),
        Reply(401, '{"code":-2015,"msg":"Invalid API-key ' + ECHO + '"}'),
        # a plain body is quoted up to 200 characters: this one is cut 16 characters into the key
        Reply(403, "x" * 170 + ECHO),
    ],
    ids=["429-exhausted", "418-ban", "500-exhausted", "401-echo", "403-cut"],
)
def test_an_error_never_carries_the_key_even_when_the_server_echoes_it(
    reply: Reply, api_key: str, everything: pytest.LogCaptureFixture
) -> None:
    with Server(reply) as server, pytest.raises(RestError) as caught:
        _fetch(f"http://127.0.0.1:{server.port}", backoff_s=0.01, max_retries=2)
    assert server.requests and all(r.get("X-MBX-APIKEY") == api_key for r in server.requests)
    exc = caught.value
    assert exc.status == reply.status
    assert "***" in exc.message, "the echoed key is blanked, the rest of the exchange's message kept"
    _assert_absent([api_key, api_key[:16], api_key[-16:]], logs=_logged(everything), exception=_exception_text(exc))


def test_a_transport_error_never_carries_the_key(api_key: str, everything: pytest.LogCaptureFixture) -> None:
    with pytest.raises(RestError) as caught:
        _fetch(f"http://127.0.0.1:{_closed_port()}", backoff_s=0.01, max_retries=1)
    assert caught.value.status == 0 and "transport error" in caught.value.message
    _assert_absent([api_key], logs=_logged(everything), exception=_exception_text(caught.value))


# --- credentials in a REST URL --------------------------------------------------------------------------------------


def test_credentials_in_a_rest_url_are_sent_as_basic_auth_and_never_logged(
    everything: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MDP_BINANCE_API_KEY", raising=False)
    password = "p@ss:/" + secrets.token_hex(12)  # characters that must be quoted in a URL
    token = base64.b64encode(f"mdp:{password}".encode()).decode()
    forms = [password, quote(password, safe=""), token, password[6:]]
    with Server(Reply(500, "busy"), Reply(200, "[]")) as server:
        pages, _ = _fetch(f"http://mdp:{quote(password, safe='')}@127.0.0.1:{server.port}", backoff_s=0.01)
        assert [r.get("Authorization") for r in server.requests] == [f"Basic {token}"] * 2
    # httpx logs each request's URL at INFO: it must be the URL without the credentials
    http_lines = [r.getMessage() for r in everything.records if r.name == "httpx"]
    assert http_lines and all(f"http://127.0.0.1:{server.port}/api/v3/aggTrades?" in line for line in http_lines)
    _assert_absent(forms, logs=_logged(everything), pages=repr(pages))

    everything.clear()
    echoing = Server(Reply(400, '{"code":-1100,"msg":"bad request ' + ECHO + '"}'))
    with echoing as server, pytest.raises(RestError) as caught:
        _fetch(f"http://mdp:{quote(password, safe='')}@127.0.0.1:{server.port}", backoff_s=0.01)
    assert "***" in caught.value.message  # the echoed Authorization token
    _assert_absent(forms, logs=_logged(everything), exception=_exception_text(caught.value))


# --- the ingestor ---------------------------------------------------------------------------------------------------


@dataclass
class Ingested:
    logs: str
    status: str
    status_file: str
    lake: str
    connections: int


def _lake_text(root: Path) -> str:
    """Every value of every Parquet file in the lake (rows as text; compressed pages hide substrings from a grep)
    and every other file's bytes."""
    parts = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            parts.append(repr(pl.read_parquet(path).rows()))
        else:
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def _ingest(tmp_path: Path, caplog: pytest.LogCaptureFixture, userinfo: str = "") -> Ingested:
    """Run the ingestor for a moment against a silent loopback WebSocket server (Binance trades, so no REST)."""
    connections: list[object] = []

    async def handler(ws: websockets.ServerConnection) -> None:
        connections.append(ws.request.headers if ws.request else None)
        await ws.wait_closed()

    async def run() -> Ingestor:
        async with websockets.serve(handler, "127.0.0.1", 0, logger=logging.getLogger(SERVER_LOGGER)) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            collector = ExchangeCollectorConfig(
                exchange="binance",
                symbols=("BTCUSDT",),
                channels=("trade",),
                ws_url=f"ws://{userinfo}127.0.0.1:{port}",
                rest_url=f"http://{userinfo}127.0.0.1:{_closed_port()}",
            )
            config = IngestConfig((collector,), status_file=str(tmp_path / "status.json"))
            ingestor = Ingestor(config, lake=str(tmp_path / "lake"), status_every_s=0.5)
            await ingestor.run(duration_s=2.5)
            return ingestor

    ingestor = asyncio.run(asyncio.wait_for(run(), 60))
    status = json.dumps([ingestor.status(), ingestor.health()], default=str)  # the lake writer's health too
    return Ingested(
        _logged(caplog), status, (tmp_path / "status.json").read_text(), _lake_text(tmp_path / "lake"), len(connections)
    )


def test_the_ingestor_keeps_the_environments_secrets_out_of_status_logs_and_lake(
    tmp_path: Path, everything: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, api_key: str
) -> None:
    password = secrets.token_hex(16)
    s3_secret = secrets.token_hex(20)
    monkeypatch.setenv("MDP_PG_DSN", f"postgresql+psycopg2://mdp:{password}@timescaledb:5432/mdp")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", password)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_secret)
    seen = _ingest(tmp_path, everything)
    assert seen.connections >= 1 and "'open'" in seen.lake  # it did connect, and recorded it in the lake
    for where, text in vars(seen).items():
        if isinstance(text, str):
            _assert_absent([password, s3_secret, api_key], **{where: text})


def test_credentials_in_an_endpoint_url_stay_out_of_the_ingestors_status_logs_and_lake(
    tmp_path: Path, everything: pytest.LogCaptureFixture
) -> None:
    password = "pw" + secrets.token_hex(16)
    token = base64.b64encode(f"mdp:{password}".encode()).decode()  # websockets logs request headers at DEBUG
    seen = _ingest(tmp_path, everything, userinfo=f"mdp:{password}@")
    assert seen.connections >= 1
    leaks = [
        where for where, text in vars(seen).items() if isinstance(text, str) and (password in text or token in text)
    ]
    assert not leaks, f"the endpoint's credentials are in: {leaks}"


def test_the_servers_are_loopback_only() -> None:
    with Server(Reply(200)) as server:
        assert server.http.server_address[0] == "127.0.0.1"
