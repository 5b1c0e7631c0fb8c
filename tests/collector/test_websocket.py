"""What the collector's WebSocket client does beyond picows' frames: fragmented messages reassembled, the server's
close code and reason recorded, TLS verified against the trusted certificates (a certificate nobody vouches for
is refused; the same server trusted is read)."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from _collector_util import until
from websockets.asyncio.server import ServerConnection, serve

from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events, read_raw

ALL = (0, 2**62)
SPOT = "binance-hftbacktest/spot/btcusdt_20240808.gz"


def _trades(shared_data: Path, n: int) -> list[str]:
    out = []
    with gzip.open(shared_data / SPOT, "rt") as fh:
        for line in fh:
            frame = line.split(" ", 1)[1].rstrip("\n")
            if frame.startswith('{"stream":"btcusdt@trade"'):
                out.append(frame)
                if len(out) == n:
                    return out
    raise AssertionError("not enough trades in the recording")


async def _collect(url: str, lake: str, done: Callable[[dict[str, Any]], bool], *, idle_s: float = 0) -> Ingestor:
    """Run the ingestor against ``url`` until ``done(status)`` (and ``idle_s`` more), then stop it."""
    config = ExchangeCollectorConfig(
        exchange="binance", symbols=("BTCUSDT",), channels=("trade",), ws_url=url, reconnect_initial_s=0.05
    )
    ingestor = Ingestor(IngestConfig((config,)), lake=lake)
    stop = asyncio.Event()
    task = asyncio.create_task(ingestor.run(stop=stop))
    try:
        await until(lambda: done(ingestor.manager.get_status()), 20)
        await asyncio.sleep(idle_s)
    finally:
        stop.set()
        await task
    return ingestor


@pytest.mark.timeout(60)
def test_fragments_are_one_frame_and_the_servers_close_reason_is_recorded(
    lake: str, shared_data: Path, receive: str
) -> None:
    first, second, third = _trades(shared_data, 3)

    async def handler(ws: ServerConnection) -> None:
        await ws.send(first)
        await ws.send([second[:10], second[10:200], second[200:]])  # one message in three frames
        await ws.send(third)
        await ws.close(1011, "maintenance")

    async def scenario() -> Ingestor:
        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            return await _collect(f"ws://127.0.0.1:{port}", lake, lambda s: s["messages_received"] >= 3, idle_s=0.2)

    ingestor = asyncio.run(scenario())
    raw = read_raw(lake, *ALL).sort("conn_id", "seq")
    conn_id = raw["conn_id"][0]
    first_conn = raw.filter(pl.col("conn_id") == conn_id)
    assert first_conn.select("seq", "channel", "payload").rows()[:3] == [
        (1, "trade", first),
        (2, "trade", second),
        (3, "trade", third),
    ]
    closes = read_events(lake, *ALL).filter((pl.col("kind") == "close") & (pl.col("conn_id") == conn_id))
    assert closes["detail"].to_list() == ["closed by the server: 1011 maintenance"]
    assert ingestor.manager.get_status()["frame_errors"] == 0


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.timeout(60)
def test_tls_is_verified(tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trades = _trades(shared_data, 2)
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def handler(ws: ServerConnection) -> None:
        for t in trades:
            await ws.send(t)
        await ws.wait_closed()

    async def scenario(lake: str, done: Callable[[dict[str, Any]], bool]) -> Ingestor:
        async with serve(handler, "127.0.0.1", 0, ssl=context, compression=None) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            return await _collect(f"wss://localhost:{port}", lake, done)

    # a certificate nobody vouches for: refused, every attempt, nothing received
    refused = asyncio.run(scenario(str(tmp_path / "refused"), lambda s: s["errors"] >= 2))
    status = refused.manager.get_status()
    assert status["messages_received"] == 0
    last_error = status["collectors"][0]["connections"][0]["last_error"]
    assert last_error.startswith("connection failed: SSLCertVerificationError"), last_error
    assert "CERTIFICATE_VERIFY_FAILED" in last_error and "self-signed certificate" in last_error
    # the same server, its certificate trusted: the frames are received over TLS
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    trusted = asyncio.run(scenario(str(tmp_path / "trusted"), lambda s: s["messages_received"] >= 2))
    assert trusted.manager.get_status()["errors"] == 0
    assert read_raw(str(tmp_path / "trusted"), *ALL).sort("seq")["payload"].to_list() == trades


@pytest.mark.timeout(60)
def test_a_connection_cut_during_the_handshake_is_an_ordinary_failure(lake: str) -> None:
    attempts: list[int] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(1)
        await reader.readuntil(b"\r\n\r\n")  # the upgrade request, never answered
        writer.close()

    async def scenario() -> Ingestor:
        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            return await _collect(f"ws://127.0.0.1:{port}", lake, lambda s: s["errors"] >= 3)

    status = asyncio.run(scenario()).manager.get_status()
    assert len(attempts) >= 3 and status["messages_received"] == 0
    conn = status["collectors"][0]["connections"][0]
    assert (
        conn["last_error"]
        == "connection failed: ConnectionResetError: the connection ended during the WebSocket handshake"
    )
