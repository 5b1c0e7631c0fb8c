"""Ingest throughput: the bundled Binance capture at full speed over a local socket into the raw lake.

The sender is a bare asyncio server in its own process that does the WebSocket handshake by hand and then
writes pre-built frames straight to the socket (a Python ``websockets`` server tops out near 80k frames/s, which
would measure the sender, not us). Three receivers take turns against it, round after round (the machine is shared:
each ratio is taken between receivers measured in the same run), each in a fresh process so peak memory is its own:

- a bare ``websockets`` client that receives each frame (the library the collector used before),
- a bare picows client that receives each frame's payload as text and counts it (the collector's library: the
  ceiling on this machine),
- the real ingestor (``mdplatform.ingest.Ingestor``: routing, book-sync bookkeeping, liveness pings, the
  write-ahead journal, Parquet raw lake and events), whose lake is then counted: every frame must have landed;
  on its compiled receive path (``collector/_batcher.pyx``), and, for reference, on the pure-Python one
  (``MDP_RECEIVE=python``: what an install without Cython gets).

Prints messages/s (median and best of the rounds), peak RSS, the ingestor's ratios to both bare clients beside their
limits (at least 0.85x the bare client of its own library, at least 1.0x a bare ``websockets`` client), and messages
per CPU-second of each receiving thread: on a shared machine the wall-clock rates swing with the other work, the CPU
time a frame costs does not (it is the rate each would reach with a core to itself).

    .venv/bin/python bench/ingest.py [--repeat 3] [--copies 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import hashlib
import json
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


def load_capture(copies: int) -> tuple[list[bytes], dict[bytes, bytes]]:
    """WebSocket frames (bytes, pre-encoded) of every stream message, and each symbol's first REST snapshot body
    (by the symbol as the depth request names it: ``BTCUSDT``)."""
    frames: list[tuple[int, str]] = []
    snapshot: dict[bytes, bytes] = {}
    for path in CAPTURES:
        messages, snapshots = read_capture(path)
        frames += messages
        symbol = path.name.split("_", 1)[0].upper().encode()
        if snapshots and symbol not in snapshot:
            snapshot[symbol] = snapshots[0].encode()
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


async def accept_websocket(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, snapshots: dict[bytes, bytes]
) -> bool:
    """Read one HTTP request: a REST call (``/api/...?symbol=X``) is answered with X's snapshot and closed (False);
    anything else is taken for a WebSocket upgrade and accepted by hand (True), after which the caller writes
    frames. (Each symbol its own snapshot: one symbol's given for another never syncs its book, and every one of its
    depth frames would go through the session's buffering for the whole run.)"""
    request = await reader.readuntil(b"\r\n\r\n")
    path = request.split(b" ", 2)[1]
    if path.startswith(b"/api/"):
        symbol = path.partition(b"symbol=")[2].partition(b"&")[0].upper()
        snapshot = snapshots.get(symbol, b'{"code":-1121,"msg":"Invalid symbol."}')
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


async def answer_control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gone: asyncio.Event) -> None:
    """Answer the client's control frames as an exchange does: the collector pings every few seconds to prove the
    connection alive and closes it when no pong comes within its idle limit; on stop it closes with a handshake.
    Sets ``gone`` when the client closes or goes away."""
    try:
        while True:
            head = await reader.readexactly(2)
            n = head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", await reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await reader.readexactly(8))[0]
            mask = await reader.readexactly(4) if head[1] & 0x80 else bytes(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(n)))
            # control payloads are at most 125 bytes: a one-byte length; a write lands between two whole frames
            opcode = head[0] & 0x0F
            if opcode == 0x9:  # ping -> pong
                writer.write(bytes([0x8A, len(data)]) + data)
            elif opcode == 0x8:  # close -> close
                writer.write(bytes([0x88, len(data)]) + data)
                return
    except (asyncio.IncompleteReadError, ConnectionError):
        return
    finally:
        gone.set()


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
        # then as an exchange: pongs, and the close handshake the ingestor begins when it stops
        await answer_control(reader, writer, asyncio.Event())
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_queue.put((server.sockets[0].getsockname()[1], len(frames)))
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def bare_websockets(port: int, expected: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from websockets.asyncio.client import connect

    async def run() -> tuple[float, float]:
        async with connect(f"ws://127.0.0.1:{port}/stream", compression=None, max_size=2**24, max_queue=4096) as ws:
            n = 0
            t0 = cpu0 = 0.0
            async for _ in ws:
                if n == 0:
                    t0, cpu0 = time.perf_counter(), time.thread_time()
                n += 1
                if n == expected:
                    return time.perf_counter() - t0, time.thread_time() - cpu0
        raise RuntimeError("connection closed early")

    elapsed, cpu = asyncio.run(run())
    out.put((expected / elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, {"cpu_s": cpu}))


def bare_picows(port: int, expected: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from picows import WSFrame, WSListener, WSTransport, ws_connect

    class Counter(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.n = 0
            self.t0 = self.cpu0 = 0.0
            self.payload = ""
            self.done: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            self.payload = frame.get_payload_as_utf8_text()
            self.n += 1
            if self.n == 1:
                self.t0, self.cpu0 = time.perf_counter(), time.thread_time()
            if self.n == expected:
                self.done.set_result((time.perf_counter() - self.t0, time.thread_time() - self.cpu0))

    async def run() -> tuple[float, float]:
        transport, counter = await ws_connect(Counter, f"ws://127.0.0.1:{port}/stream", max_frame_size=2**24)
        elapsed = await counter.done
        transport.disconnect()
        return elapsed

    elapsed, cpu = asyncio.run(run())
    out.put((expected / elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, {"cpu_s": cpu}))


def ingestor(port: int, expected: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
    from mdplatform.collector._connection import compiled_receive
    from mdplatform.ingest import Ingestor
    from mdplatform.lake import read_raw

    root = tempfile.mkdtemp(prefix="mdp-bench-")
    config = ExchangeCollectorConfig(
        exchange="binance",
        symbols=("BTCUSDT", "ETHUSDT"),
        channels=("trade", "depth", "bookTicker"),
        ws_url=f"ws://127.0.0.1:{port}",
        rest_url=f"http://127.0.0.1:{port}/api/v3/depth",
    )
    ing = Ingestor(IngestConfig((config,), journal=f"{root}/journal"), lake=f"{root}/lake", status_every_s=1e9)

    async def run() -> tuple[int, float, float]:
        stop = asyncio.Event()
        task = asyncio.create_task(ing.run(stop=stop))
        while not ing.manager.collectors[0].connections:
            await asyncio.sleep(0.001)
        counters = ing.manager.collectors[0].connections[0].counters
        while counters.messages_received == 0:
            await asyncio.sleep(0.0005)
        cpu0, counted = time.thread_time(), counters.messages_received
        while counters.messages_received < expected:
            await asyncio.sleep(0.002)
        # the clock stops when the last frame is counted (handed to the lake writer); it started at the first
        # frame's receive time, read from the lake below (frames are counted in batches: the first count comes later)
        end_ns, cpu = time.time_ns(), time.thread_time() - cpu0
        cpu *= expected / (expected - counted)  # the CPU time of every frame, at the rate of those measured
        stop.set()
        await task  # every buffered row written
        return end_ns, cpu, (time.time_ns() - end_ns) / 1e9

    try:
        end_ns, cpu, closing_s = asyncio.run(run())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        raw = read_raw(f"{root}/lake", 0, 2**62, columns=["conn_id", "recv_ts"])
        stream = raw.filter(~raw["conn_id"].str.ends_with("/rest"))
        elapsed = (end_ns - stream["recv_ts"].dt.epoch("ns").min()) / 1e9  # type: ignore[operator]
        info = {
            "compiled": compiled_receive(),
            "cpu_s": cpu,
            "errors": ing.manager.get_status()["errors"],
            # the stream's frames; the REST depth snapshots the book sync fetched are landed beside them
            "frames_in_lake": stream.height,
            "snapshots_in_lake": raw.filter(raw["conn_id"].str.ends_with("/rest")).height,
            "then_written_in_s": round(closing_s, 2),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out.put((expected / elapsed, rss, info))


def measure(target: Callable[..., None], copies: int) -> tuple[float, float, dict[str, float], int]:
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


def python_ingestor(port: int, expected: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    os.environ["MDP_RECEIVE"] = "python"  # (a process of its own: set before mdplatform is imported)
    ingestor(port, expected, out)


INGESTOR = "mdp ingestor -> raw lake"
RECEIVERS: dict[str, Callable[..., None]] = {
    "bare websockets client": bare_websockets,
    "bare picows client": bare_picows,
    INGESTOR: ingestor,
    "  same, Python receive path": python_ingestor,
}


#: the ingestor's rate at least these times each bare client's (issue 15)
LIMITS = (("bare picows client", 0.85), ("bare websockets client", 1.0))


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def bench_line(
    name: str, figure: float, unit: str, reference: float | None = None, limit: float | None = None, *, at_least: bool
) -> None:
    """One figure as a ``BENCH`` line for bench/run_all.py (``limit``: a ratio to ``reference``, or the figure's)."""
    ratio = None if reference is None else figure / reference
    value = ratio if ratio is not None else figure
    row = {
        "bench": "ingest",
        "name": name,
        "figure": round(figure),
        "unit": unit,
        "reference": None if reference is None else round(reference),
        "ratio": None if ratio is None else round(ratio, 3),
        "limit": None if limit is None else f"{'>=' if at_least else '<='} {limit:g}",
        "pass": None if limit is None else (value >= limit if at_least else value <= limit),
    }
    print("BENCH " + json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--copies", type=int, default=2, help="send the capture this many times back to back")
    args = parser.parse_args()
    if not CAPTURES:
        sys.exit("bundled capture not found under demo/data/binance-spot")
    from importlib.metadata import version

    print(
        f"cpu cores: {os.cpu_count()}, python {sys.version.split()[0]}, picows {version('picows')}, "
        f"websockets {version('websockets')}; {args.repeat} rounds, the receivers in turn in each"
    )
    rates: dict[str, list[float]] = {name: [] for name in RECEIVERS}
    cpu_rates: dict[str, list[float]] = {name: [] for name in RECEIVERS}
    rss: dict[str, list[float]] = {name: [] for name in RECEIVERS}
    landed: list[str] = []
    all_landed = True
    landed_counts: list[int] = []
    n = 0
    for _ in range(args.repeat):
        for name, target in RECEIVERS.items():
            rate, peak, info, n = measure(target, args.copies)
            rates[name].append(rate)
            cpu_rates[name].append(n / info["cpu_s"])
            rss[name].append(peak)
            if "frames_in_lake" in info:
                if name == INGESTOR and not info["compiled"]:
                    print("  the compiled receive path is not built here: the ingestor received in Python")
                landed.append(
                    f"{name.strip()}: {info['frames_in_lake']:,} of {n:,} frames (+{info['snapshots_in_lake']} REST "
                    f"snapshots), written {info['then_written_in_s']} s after the last one arrived"
                )
                landed_counts.append(int(info["frames_in_lake"]))
                if info["frames_in_lake"] != n or info["errors"]:
                    all_landed = False
                    print(f"  not every frame landed, or errors: {info}")
    print(f"{n:,} frames (the capture {args.copies} times); msg/s per round in the order run:")
    for name in RECEIVERS:
        each = " ".join(f"{r:,.0f}" for r in rates[name])
        print(
            f"  {name:28} median {_median(rates[name]):>9,.0f}  best {max(rates[name]):>9,.0f}  "
            f"peak RSS {max(rss[name]):5.0f} MB  ({each})"
        )
    ours, ours_cpu = rates[INGESTOR], cpu_rates[INGESTOR]
    for ref, limit in LIMITS:
        per_round = [a / b for a, b in zip(ours, rates[ref], strict=True)]
        ratio = _median(ours) / _median(rates[ref])
        verdict = "met" if ratio >= limit else "NOT met"
        rounds = " ".join(f"{r:.2f}" for r in per_round)
        print(f"  ingestor / {ref:22} {ratio:5.2f}x  (limit {limit:.2f}x: {verdict}; per round {rounds})")
    python = rates["  same, Python receive path"]
    for ref, _ in LIMITS:
        print(f"  (Python receive path / {ref}: {_median(python) / _median(rates[ref]):.2f}x)")
    # the receiving thread's CPU time per frame does not depend on what else the machine runs: the rate each would
    # reach on a core of its own (the ingestor's writer thread runs beside it, on the other core)
    print("  msg per CPU-second of the receiving thread (median), what each reaches with a core to itself:")
    for name in RECEIVERS:
        print(f"    {name:28} {_median(cpu_rates[name]):>9,.0f}")
    for ref in ("bare picows client", "bare websockets client"):
        print(f"  ingestor / {ref:22} {_median(ours_cpu) / _median(cpu_rates[ref]):5.2f}x by CPU time")
    print(f"  landed in the lake, each round: {'; '.join(landed)}")
    for ref, limit in LIMITS:
        bench_line(f"ingestor vs {ref}", _median(ours), "msg/s", _median(rates[ref]), limit, at_least=True)
        bench_line(
            f"ingestor vs {ref}, by CPU time", _median(ours_cpu), "msg/CPU-s", _median(cpu_rates[ref]), at_least=True
        )
    bench_line("ingestor peak RSS", max(rss[INGESTOR]), "MB", at_least=False)
    bench_line("frames in the lake, fewest of the rounds", min(landed_counts), "frames", n, 1.0, at_least=True)
    if not all_landed:
        sys.exit("not every frame landed in the lake, or the ingestor reported errors")


if __name__ == "__main__":
    main()
