"""Ingest throughput: the bundled Binance capture at full speed over a local socket into the raw lake.

The sender is a bare asyncio server in its own process that does the WebSocket handshake by hand and then
writes pre-built frames straight to the socket (a Python ``websockets`` server tops out near 80k frames/s, which
would measure the sender, not us). Two receivers run against it, each in a fresh process so peak memory is its
own: a bare ``websockets`` client that only counts frames (the ceiling on this machine), and the real collector
(route, book-sync bookkeeping, raw lake writer with Parquet files). Prints messages/s and peak RSS for both.

    .venv/bin/python bench/ingest.py [--repeat 3] [--copies 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gzip
import hashlib
import multiprocessing as mp
import os
import resource
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAPTURES = sorted((REPO / "demo/data/binance-spot").glob("*.gz"))
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_capture(path: Path) -> tuple[list[tuple[int, str]], list[str]]:
    """One capture file: its stream messages (receive ns, JSON text) and its REST snapshot bodies, in file order."""
    messages: list[tuple[int, str]] = []
    snapshots: list[str] = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            ts, msg = line.rstrip("\n").split(" ", 1)
            if msg.startswith('{"lastUpdateId"'):
                snapshots.append(msg)
                continue
            messages.append((int(ts), msg))
    return messages, snapshots


def load_capture(copies: int) -> tuple[list[bytes], bytes]:
    """WebSocket frames (bytes, pre-encoded) of every stream message, and the first REST snapshot body."""
    frames: list[tuple[int, str]] = []
    snapshot = b""
    for path in CAPTURES:
        messages, snapshots = read_capture(path)
        frames += messages
        if not snapshot and snapshots and "btcusdt" in path.name:
            snapshot = snapshots[0].encode()
    frames.sort(key=lambda f: f[0])
    encoded = [ws_frame(msg.encode()) for _, msg in frames]
    return encoded * copies, snapshot


def ws_frame(payload: bytes) -> bytes:
    """An unmasked server-to-client text frame."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


async def accept_websocket(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, snapshot: bytes) -> bool:
    """Read one HTTP request: a REST call (``/api/...``) is answered with ``snapshot`` and closed (False); anything
    else is taken for a WebSocket upgrade and accepted by hand (True), after which the caller writes frames."""
    request = await reader.readuntil(b"\r\n\r\n")
    path = request.split(b" ", 2)[1]
    if path.startswith(b"/api/"):
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(snapshot)}\r\n\r\n".encode()
            + snapshot
        )
        await writer.drain()
        writer.close()
        return False
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    return True


def serve(port_queue: mp.Queue, copies: int) -> None:  # type: ignore[type-arg]
    frames, snapshot = load_capture(copies)
    blob = b"".join(frames)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not await accept_websocket(reader, writer, snapshot):
            return
        view = memoryview(blob)
        for i in range(0, len(blob), 1 << 20):
            writer.write(view[i : i + (1 << 20)])
            await writer.drain()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client goes away
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_queue.put((server.sockets[0].getsockname()[1], len(frames)))
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def bare_client(port: int, expected: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from websockets.asyncio.client import connect

    async def run() -> float:
        async with connect(f"ws://127.0.0.1:{port}/stream", compression=None, max_size=2**24, max_queue=4096) as ws:
            n = 0
            t0 = 0.0
            async for _ in ws:
                if n == 0:
                    t0 = time.perf_counter()
                n += 1
                if n == expected:
                    return time.perf_counter() - t0
        raise RuntimeError("connection closed early")

    elapsed = asyncio.run(run())
    out.put((expected / elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, {}))


def ingestor(port: int, expected: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from mdplatform.collector import CollectorManager, ExchangeCollectorConfig
    from mdplatform.lake import RawWriter, read_raw

    lake = tempfile.mkdtemp(prefix="mdp-bench-")

    async def run() -> tuple[float, dict[str, int]]:
        writer = RawWriter(lake)
        config = ExchangeCollectorConfig(
            exchange="binance",
            symbols=("BTCUSDT", "ETHUSDT"),
            channels=("trade", "depth", "bookTicker"),
            ws_url=f"ws://127.0.0.1:{port}",
            rest_url=f"http://127.0.0.1:{port}/api/v3/depth",
        )
        manager = CollectorManager([config], writer)
        await manager.start()
        conn = manager.collectors[0].connections[0]
        while conn.counters.messages_received == 0:
            await asyncio.sleep(0.0005)
        t0 = time.perf_counter()
        while conn.counters.messages_received < expected:
            await asyncio.sleep(0.01)
            writer.flush_closed()
        elapsed = time.perf_counter() - t0
        await manager.stop()
        await asyncio.to_thread(writer.close)
        status = manager.get_status()
        return elapsed, {"errors": status["errors"], "rows_written": writer.stats.rows_written}

    try:
        elapsed, info = asyncio.run(run())
        info["rows_in_lake"] = read_raw(lake, 0, 2**62, columns=["seq"]).height
    finally:
        shutil.rmtree(lake, ignore_errors=True)
    out.put((expected / elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, info))


def measure(target: Callable[..., None], copies: int) -> tuple[float, float, dict[str, int], int]:
    ctx = mp.get_context("spawn")
    ports: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    results: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    sender = ctx.Process(target=serve, args=(ports, copies), daemon=True)
    sender.start()
    port, n = ports.get(timeout=120)
    receiver = ctx.Process(target=target, args=(port, n, results))
    receiver.start()
    rate, rss_mb, info = results.get(timeout=600)
    receiver.join()
    sender.kill()
    return rate, rss_mb, info, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--copies", type=int, default=2, help="send the capture this many times back to back")
    args = parser.parse_args()
    if not CAPTURES:
        sys.exit("bundled capture not found under demo/data/binance-spot")
    print(f"cpu cores: {os.cpu_count()}, python {sys.version.split()[0]}")
    for name, target in (("bare websockets client", bare_client), ("mdp ingestor -> raw lake", ingestor)):
        rates, rss = [], []
        info: dict[str, int] = {}
        n = 0
        for _ in range(args.repeat):
            rate, peak, info, n = measure(target, args.copies)
            rates.append(rate)
            rss.append(peak)
        best = max(rates)
        print(
            f"{name:26} {n:>8,} frames  best {best:>9,.0f} msg/s  median {sorted(rates)[len(rates) // 2]:>9,.0f} msg/s"
            f"  peak RSS {max(rss):6.0f} MB  {info or ''}"
        )


if __name__ == "__main__":
    main()
