"""Soak: ten connections at a high sustained rate for ten minutes; memory, tasks and file handles must stay flat.

Three processes. The sender (``bench/ingest.py``'s hand-made WebSocket server, here paced) serves the Binance
BTCUSDT recording in a loop to every connection at ``--rate`` frames/s in total. The real ``Ingestor``, one
collector per connection (trade, depth, bookTicker), writes a raw lake (and its write-ahead journal) into a temp
dir. This process samples the ingestor every ``--every`` seconds (VmRSS, threads, CPU and open file descriptors
from ``/proc/<pid>``; its asyncio tasks and frame counts from inside it) and prints the curve: ``fds`` are the
descriptors held, apart from the files that come and go as data moves (``wr``: lake part files being written,
``seg``: journal segments open; ``jMB``: the journal on disk).

At the end, one verdict per figure beside its limit, measured in the same run, comparing the first minute after
``--warmup`` with the last minute (a third of a shorter run each): RSS (window means) may grow by less than
``--rss-limit-pct``; tasks, threads and held descriptors (window maxima) must not grow; the lake keeps up and the
journal is empty after the stop; the sender kept the rate; every frame the sender wrote is a row of the lake; no
errors, reconnects or book gaps. Exits non-zero if any verdict fails. ``--trace`` adds tracemalloc's top growth
inside the ingestor, to find what grows (it slows the ingestor several times: lower ``--rate``).

The recording is replayed byte for byte except that every pass after the first moves the depth diffs' update ids
(U, u) on by the span of one pass, so the U/u chain continues across the seam and every connection's book stays
synced for the whole run, as on a live feed (unshifted, every later diff would be stale: a path live data never
takes). The REST snapshot is the recording's own, which syncs the first pass.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 50000] [--connections 10] [--every 10] [--warmup 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import multiprocessing as mp
import os
import queue
import re
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from ingest import REPO, accept_websocket, answer_control, read_capture, ws_frame

#: the recording the issue names; the demo bundles the same file (byte for byte), used where shared/ is absent
CAPTURE = REPO.parent / "shared/data/binance-hftbacktest/spot/btcusdt_20240808.gz"
BUNDLED = REPO / "demo/data/binance-spot/btcusdt_20240808.gz"
CHANNELS = ("trade", "depth", "bookTicker")
#: the sender writes what is due every tick: short enough to look like a steady stream, long enough that ten
#: connections cost the sender little more than the bytes
TICK_S = 0.01
#: after a stall the sender catches up at most this much of a second's frames per tick (no multi-MB bursts)
CATCH_UP = 0.2
_IDS = re.compile(r'"U":(\d+),"u":(\d+)')


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"
    )]  # fmt: skip


def malloc_mb() -> dict[str, float]:
    """glibc's heap of this process in MB: in use (``heap_mb``, mmapped blocks included) and free but kept
    (``free_mb``); NaN without glibc 2.33+. Python's small objects live apart from it, in pymalloc's arenas."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        m = libc.mallinfo2()
    except (OSError, AttributeError):
        return {"heap_mb": float("nan"), "free_mb": float("nan")}
    return {"heap_mb": (m.uordblks + m.hblkhd) / 2**20, "free_mb": m.fordblks / 2**20}


# --- sender ----------------------------------------------------------------------------------------------------


class Passes:
    """The recording's WebSocket frames for pass ``k`` of the loop: the same bytes every pass except the depth
    diffs, whose ids move on by ``span`` per pass so that pass k+1's first U follows pass k's last u."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.base = [ws_frame(m.encode()) for m in messages]
        #: (index, text before U, U, text between, u, text after) of every depth diff
        self.depth: list[tuple[int, str, int, str, int, str]] = []
        for i, m in enumerate(messages):
            match = _IDS.search(m) if '"e":"depthUpdate"' in m else None
            if match:
                a, b = match.span(1), match.span(2)
                self.depth.append((i, m[: a[0]], int(match[1]), m[a[1] : b[0]], int(match[2]), m[b[1] :]))
        self.span = self.depth[-1][4] - self.depth[0][2] + 1 if self.depth else 0
        self._cache: dict[int, list[bytes]] = {0: self.base}

    def frames(self, k: int) -> list[bytes]:
        frames = self._cache.get(k)
        if frames is None:
            frames = list(self.base)
            shift = k * self.span
            for i, head, first, mid, last, tail in self.depth:
                frames[i] = ws_frame(f"{head}{first + shift}{mid}{last + shift}{tail}".encode())
            self._cache[k] = frames
            # the connections run nearly in step: a few recent passes serve them all
            while len(self._cache) > 16:
                del self._cache[min(self._cache)]
        return frames


def sender(
    capture: str,
    rate: float,
    ports: mp.Queue,  # type: ignore[type-arg]
    stop: Any,  # multiprocessing.Event (its class is not a public type)
    total: Synchronized,  # type: ignore[type-arg]
    reports: mp.Queue,  # type: ignore[type-arg]
    connections: int,
) -> None:
    """Serve ``capture`` in a loop to every WebSocket client at ``rate / connections`` frames/s each, until
    ``stop``; then report exactly how many frames each connection was given and whether the rate was kept."""
    messages, snapshots = read_capture(Path(capture))
    passes = Passes([m for _, m in messages])
    snapshot = snapshots[0].encode()
    per_s = rate / connections
    #: per connection: frames written, seconds blocked in drain (the receiver not reading), most seconds behind
    #: schedule, seconds of sending
    stats: list[dict[str, float]] = []
    stopping = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not await accept_websocket(reader, writer, snapshot):
            return
        st = {"sent": 0.0, "blocked_s": 0.0, "behind_s": 0.0, "elapsed_s": 0.0, "open": 1.0}
        stats.append(st)
        gone = asyncio.Event()
        replies = asyncio.create_task(answer_control(reader, writer, gone))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        sent = k = pos = 0
        frames = passes.frames(0)
        max_chunk = max(1, int(per_s * CATCH_UP))
        try:
            while not (stopping.is_set() or gone.is_set()):
                due = int((loop.time() - t0) * per_s)
                st["behind_s"] = max(st["behind_s"], (due - sent) / per_s - TICK_S)
                n = min(due - sent, max_chunk)
                if n > 0:
                    parts = []
                    left = n
                    while left:
                        take = min(left, len(frames) - pos)
                        parts.append(b"".join(frames[pos : pos + take]))
                        pos += take
                        left -= take
                        if pos == len(frames):
                            k, pos = k + 1, 0
                            frames = passes.frames(k)
                    writer.write(b"".join(parts))
                    sent += n
                    st["sent"] = sent
                    total.value += n
                    w0 = time.perf_counter()
                    await writer.drain()
                    st["blocked_s"] += time.perf_counter() - w0
                await asyncio.sleep(TICK_S)
            st["elapsed_s"] = loop.time() - t0
            await writer.drain()
            st["open"] = 0.0
            await gone.wait()  # the ingestor closes its connections when it stops
        except ConnectionError:  # the ingestor dropped the connection: its frames in flight show as missing
            st["elapsed_s"] = st["elapsed_s"] or loop.time() - t0
            st["open"] = 0.0
        finally:
            replies.cancel()
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        ports.put(server.sockets[0].getsockname()[1])
        cpu0 = time.process_time()
        async with server:
            # the stop flag lives in another process: looked at a few times a second, off the hot path
            while not stop.is_set():
                await asyncio.sleep(0.1)
            stopping.set()
            for _ in range(300):  # every connection's last write handed to the socket
                if not any(st["open"] for st in stats):
                    break
                await asyncio.sleep(0.1)
            reports.put(
                {
                    "connections": len(stats),
                    "sent": int(sum(st["sent"] for st in stats)),
                    "unfinished": sum(1 for st in stats if st["open"]),
                    "elapsed_s": max((st["elapsed_s"] for st in stats), default=0.0),
                    "rate": sum(st["sent"] / st["elapsed_s"] for st in stats if st["elapsed_s"]),
                    "blocked_s": max((st["blocked_s"] for st in stats), default=0.0),
                    "behind_s": max((st["behind_s"] for st in stats), default=0.0),
                    "cpu_s": time.process_time() - cpu0,
                    "frames_per_pass": len(passes.base),
                    "span": passes.span,
                }
            )
            await asyncio.sleep(3600)  # the ingestor closes its connections; this process is then killed

    asyncio.run(main())


# --- ingestor --------------------------------------------------------------------------------------------------


def ingestor(
    port: int,
    connections: int,
    root: str,
    every: float,
    warmup: float,
    trace: bool,
    expect: Synchronized,  # type: ignore[type-arg]
    samples: mp.Queue,  # type: ignore[type-arg]
) -> None:
    """The real Ingestor, one collector (one connection) per sender connection. Every ``every`` seconds it puts
    what only it can see (its asyncio tasks, frame counts) on ``samples``; once ``expect`` is set to the frames
    the sender wrote it stops when all have arrived (or a minute later) and reports how it ended."""
    import pyarrow as pa

    from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
    from mdplatform.ingest import Ingestor

    if trace:
        tracemalloc.start()
    collectors = tuple(
        ExchangeCollectorConfig(
            exchange="binance",
            symbols=("BTCUSDT",),
            channels=CHANNELS,
            ws_url=f"ws://127.0.0.1:{port}",
            rest_url=f"http://127.0.0.1:{port}/api/v3/depth",
        )
        for _ in range(connections)
    )
    config = IngestConfig(collectors, lake=f"{root}/lake")
    # the write-ahead journal is being added: exercise it from the day it exists
    if "journal" in {f.name for f in dataclasses.fields(IngestConfig)}:
        config = dataclasses.replace(config, journal=f"{root}/journal")
    ing = Ingestor(config, status_every_s=1e9)  # no status log lines between the table's rows

    def received() -> int:
        # the connections exist once the ingestor has started its collectors
        return sum(c.counters.messages_received for col in ing.manager.collectors for c in col.connections)

    async def control(stop: asyncio.Event) -> list[str]:
        t0 = time.monotonic()
        n = 0
        deadline = None
        warm: tracemalloc.Snapshot | None = None
        while True:
            await asyncio.sleep(0.2)
            now = time.monotonic()
            target = expect.value
            if target >= 0:
                deadline = deadline or now + 60
                if received() >= target or now >= deadline:
                    break
            elif now >= t0 + (n + 1) * every:
                n += 1
                samples.put(
                    {
                        "t": now - t0,
                        "tasks": len(asyncio.all_tasks()),
                        "received": received(),
                        "landed": ing.writer.stats.rows_written,
                        "arrow_mb": pa.total_allocated_bytes() / 2**20,
                        "py_kblocks": sys.getallocatedblocks() / 1000,
                        **malloc_mb(),
                    }
                )
                if trace and warm is None and now - t0 >= warmup:
                    warm = tracemalloc.take_snapshot()
        stop.set()
        if warm is None:
            return []
        top = tracemalloc.take_snapshot().compare_to(warm, "lineno")[:15]
        return [str(s) for s in top]

    async def run() -> dict[str, Any]:
        stop = asyncio.Event()
        ctl = asyncio.create_task(control(stop))
        result = await ing.run(stop=stop)
        if not ctl.done():  # stopped by SIGINT/SIGTERM rather than by the soak
            ctl.cancel()
        top = (await asyncio.gather(ctl, return_exceptions=True))[0]
        status = result.status
        per = status["collectors"]
        return {
            "received": status["messages_received"],
            "rows_written": result.rows_written,
            "files_written": result.files_written,
            "events_written": result.events_written,
            "errors": status["errors"],
            "frame_errors": status["frame_errors"],
            "reconnects": status["reconnects"],
            "sync_errors": sum(s["sync_errors"] for s in per),
            "snapshots": sum(s["snapshots"] for s in per),
            "book_sync": sorted({state for s in per for state in s["book_sync"].values()}),
            "tracemalloc": top if isinstance(top, list) else [],
        }

    samples.put({"done": asyncio.run(run())})


# --- the soak --------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    t: float = 0.0
    rss_mb: float = 0.0
    #: where the RSS is, seen from inside: glibc's heap in use and free but kept (mallinfo2), the Arrow pool's
    #: allocations, Python's small-object blocks in use (thousands)
    heap_mb: float = 0.0
    free_mb: float = 0.0
    arrow_mb: float = 0.0
    py_kblocks: float = 0.0
    tasks: int = 0
    threads: int = 0
    #: descriptors held: all but the files that come and go as the data moves (the two below)
    fds: int = 0
    #: lake part files open at the moment (the writer thread writes one at a time)
    writing: int = 0
    #: journal segments open (the current one; the one before until its files are in the lake), and on disk
    segments: int = 0
    journal_mb: float = 0.0
    sent: int = 0
    received: int = 0
    landed: int = 0
    #: CPU seconds the ingestor has used (all its threads)
    cpu_s: float = 0.0
    #: CPU seconds the machine has spent on anything but the soak's three processes
    others_s: float = 0.0
    #: ... as a percentage of one core over the interval before the sample (by this process's clock, ``wall``)
    others_pct: float = 0.0
    wall: float = 0.0


def proc_status(pid: int) -> tuple[float, int]:
    """VmRSS (MB) and thread count of a process, as the kernel reports them."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss / 1024, threads


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (``/proc/<pid>/stat`` utime, stime)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (``/proc/stat``: all but idle and iowait)."""
    with open("/proc/stat") as fh:
        ticks = [int(v) for v in fh.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def fd_kinds(pid: int, root: Path) -> dict[str, int]:
    """Open file descriptors by kind: socket, pipe, anon_inode, file; and apart from those, the files that come and
    go as the data moves: ``lake`` (a part file being written) and ``segment`` (a journal segment)."""
    kinds: dict[str, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed between the listing and the look
            continue
        if target.startswith(f"{root}/lake/"):
            kind = "lake"
        elif target.startswith(f"{root}/journal/") and ".wal" in target:
            kind = "segment"
        elif target.startswith("/"):
            kind = "file"
        else:
            kind = target.split(":", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def journal_on_disk(root: Path) -> tuple[int, float]:
    """Journal segments under ``root/journal`` and their size in MB."""
    sizes = []
    for path in (root / "journal").glob("*/*.wal"):
        with contextlib.suppress(FileNotFoundError):  # deleted between the listing and the look
            sizes.append(path.stat().st_size)
    return len(sizes), sum(sizes) / 2**20


def count_lake(lake: Path) -> tuple[int, int]:
    """Rows of the raw lake: frames, and REST snapshots (landed beside the frames in channel depthSnapshot)."""
    import duckdb

    files = f"{lake}/raw/**/*.parquet"
    if not list(lake.glob("raw/**/*.parquet")):
        return 0, 0
    with duckdb.connect() as con:
        row = con.execute(
            "select count(*) filter (where channel <> 'depthSnapshot'),"
            " count(*) filter (where channel = 'depthSnapshot')"
            f" from read_parquet('{files}', hive_partitioning = false)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def slope_per_min(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) in MB per minute."""
    if len(points) < 2:
        return 0.0
    mt = sum(t for t, _ in points) / len(points)
    mv = sum(v for _, v in points) / len(points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return 60 * sum((t - mt) * (v - mv) for t, v in points) / den if den else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50_000, help="frames/s over all connections (default 50000)")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument(
        "--every", type=float, help="seconds between samples (default: 10, or a 30th of a shorter run than 5 min)"
    )
    parser.add_argument(
        "--warmup", type=float, help="seconds before the reference sample (default: 60, or a third of a shorter run)"
    )
    parser.add_argument("--rss-limit-pct", type=float, default=10.0, help="allowed RSS growth after warm-up, %%")
    parser.add_argument("--capture", type=Path, default=CAPTURE if CAPTURE.exists() else BUNDLED)
    parser.add_argument(
        "--trace",
        action="store_true",
        help="tracemalloc in the ingestor: top growth after warm-up (slows it down several times: use a lower --rate)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (lake, journal)")
    args = parser.parse_args()
    duration = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(60.0, duration / 3)
    # a short run is sampled more often, so that its windows still hold several samples each
    if args.every is None:
        args.every = min(10.0, duration / 30)
    root = Path(tempfile.mkdtemp(prefix="mdp-soak-"))
    ctx = mp.get_context("spawn")
    ports: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    reports: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    samples: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    stop = ctx.Event()
    total = ctx.Value("q", 0, lock=False)
    expect = ctx.Value("q", -1, lock=False)
    send = ctx.Process(
        target=sender,
        args=(str(args.capture), args.rate, ports, stop, total, reports, args.connections),
        daemon=True,
    )
    send.start()
    port = ports.get(timeout=120)
    ing = ctx.Process(
        target=ingestor,
        args=(port, args.connections, str(root), args.every, warmup, args.trace, expect, samples),
        daemon=True,
    )
    ing.start()
    assert ing.pid is not None
    assert send.pid is not None
    pids = (ing.pid, send.pid)

    def others() -> float:
        # the machine is shared: what other work took shows whether a dip in the curve was the ingestor's own
        return machine_busy_s() - sum(cpu_seconds(pid) for pid in pids) - time.process_time()

    cpu0, others0, wall0 = cpu_seconds(ing.pid), others(), time.monotonic()
    print(f"cpu cores: {os.cpu_count()}, python {sys.version.split()[0]}, lake {root}/lake")
    print(
        f"soak: {args.connections} connections x ({', '.join(CHANNELS)}) BTCUSDT, target {args.rate:,.0f} frames/s "
        f"({args.rate / args.connections:,.0f} per connection), {args.minutes:g} min, a sample every {args.every:g} s,"
        f" reference after {warmup:g} s; replaying {args.capture}"
    )
    print(
        f"{'t s':>5} {'RSS MB':>6} {'heap':>5} {'free':>5} {'arrow':>5} {'pyblk k':>7} {'tasks':>5} {'thr':>3} "
        f"{'fds':>3} {'wr':>2} {'seg':>3} {'jMB':>3} {'received':>11} {'landed':>11} {'frames/s':>8} {'CPU %':>5} "
        f"{'other':>5}",
        flush=True,
    )
    curve: list[Sample] = []
    fds_last: dict[str, int] = {}
    done: dict[str, Any] | None = None
    try:
        while True:
            try:
                msg = samples.get(timeout=max(60.0, 3 * args.every))
            except queue.Empty:
                print("the ingestor sent no sample for a minute: giving up", file=sys.stderr)
                return 2
            if "done" in msg:  # stopped on its own (SIGINT)
                done = msg["done"]
                break
            rss, threads = proc_status(ing.pid)
            kinds = fd_kinds(ing.pid, root)
            writing, segments = kinds.pop("lake", 0), kinds.pop("segment", 0)
            s = Sample(
                t=msg["t"],
                rss_mb=rss,
                heap_mb=msg["heap_mb"],
                free_mb=msg["free_mb"],
                arrow_mb=msg["arrow_mb"],
                py_kblocks=msg["py_kblocks"],
                tasks=msg["tasks"],
                threads=threads,
                fds=sum(kinds.values()),
                writing=writing,
                segments=segments,
                journal_mb=journal_on_disk(root)[1],
                sent=total.value,
                received=msg["received"],
                landed=msg["landed"],
                cpu_s=cpu_seconds(ing.pid),
                others_s=others(),
                wall=time.monotonic(),
            )
            prev = curve[-1] if curve else Sample(cpu_s=cpu0, others_s=others0, wall=wall0)
            rate = (s.received - prev.received) / (s.t - prev.t)
            cpu = 100 * (s.cpu_s - prev.cpu_s) / (s.wall - prev.wall)
            s.others_pct = 100 * (s.others_s - prev.others_s) / (s.wall - prev.wall)
            curve.append(s)
            fds_last = kinds
            print(
                f"{s.t:5.0f} {s.rss_mb:6.1f} {s.heap_mb:5.1f} {s.free_mb:5.1f} {s.arrow_mb:5.1f} {s.py_kblocks:7.1f} "
                f"{s.tasks:5d} {s.threads:3d} {s.fds:3d} {s.writing:2d} {s.segments:3d} {s.journal_mb:3.0f} "
                f"{s.received:11,d} {s.landed:11,d} {rate:8,.0f} {cpu:5.0f} {s.others_pct:5.0f}",
                flush=True,
            )
            if s.t >= duration - args.every / 2:
                break
        stop.set()
        report = reports.get(timeout=60)
        expect.value = report["sent"]
        while done is None:
            msg = samples.get(timeout=180)
            done = msg.get("done")
        ing.join(timeout=60)
        landed, snapshots = count_lake(root / "lake")
        left = journal_on_disk(root)
        if not curve:
            print("stopped before the first sample: nothing to judge", file=sys.stderr)
            return 2
    finally:
        stop.set()
        for proc in (ing, send):
            if proc.is_alive():
                proc.kill()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return verdicts(args, warmup, curve, fds_last, report, done, landed, snapshots, left)


def verdicts(
    args: argparse.Namespace,
    warmup: float,
    curve: list[Sample],
    fds_last: dict[str, int],
    report: dict[str, Any],
    done: dict[str, Any],
    landed: int,
    snapshots: int,
    journal_left: tuple[int, float],
) -> int:
    ref = next((s for s in curve if s.t >= warmup), curve[-1])
    last = curve[-1]
    after = [s for s in curve if s.t >= ref.t]
    # every figure is judged on a window of samples (the first minute after warm-up, the last minute; a third of a
    # shorter run each) rather than on two single samples, which can land on what comes and goes: RSS follows the
    # writer's sawtooth (a part of up to 50k frames held as Python strings, then as an Arrow table, two in
    # flight), tens of MB from one sample to the next; the ingestor's 200 ms tick waits in asyncio.wait_for,
    # which runs the wait as a task of its own that is gone for an instant every tick. A leak moves a whole window:
    # RSS is compared by the windows' means, the counts by their largest
    n = max(1, round(min(60.0, (last.t - ref.t) / 3) / args.every))
    span = n * args.every
    first_w, last_w = after[:n], after[-n:]

    def mean(window: list[Sample], name: str) -> float:
        return sum(float(getattr(s, name)) for s in window) / len(window)

    base, end = mean(first_w, "rss_mb"), mean(last_w, "rss_mb")
    # where it went, by the same windows: what grows in use is kept alive; what grows free is the allocators'
    inside = "; ".join(
        f"{label} {mean(first_w, name):.1f} -> {mean(last_w, name):.1f}"
        for label, name in (
            ("glibc heap in use", "heap_mb"),
            ("free kept", "free_mb"),
            ("Arrow pool", "arrow_mb"),
            ("Python blocks (k)", "py_kblocks"),
        )
    )
    limit_mb = base * args.rss_limit_pct / 100
    grow = end - base
    peak = max(s.rss_mb for s in after)
    sent = report["sent"]

    def counts(name: str) -> tuple[str, bool]:
        def seen(window: list[Sample]) -> str:
            lo, hi = min(getattr(s, name) for s in window), max(getattr(s, name) for s in window)
            return f"{lo}" if lo == hi else f"{lo}..{hi}"

        most = max(getattr(s, name) for s in first_w), max(getattr(s, name) for s in last_w)
        return f"{seen(first_w)} in the {span:.0f} s after warm-up -> {seen(last_w)} in the last {span:.0f} s", (
            most[1] <= most[0]
        )

    tasks, threads, fds = counts("tasks"), counts("threads"), counts("fds")
    no_growth = f"the last {span:.0f} s at most what the {span:.0f} s after warm-up had"
    # frames received but not yet in a committed lake file: by design up to a part (the writer's 50k rows) per
    # minute before it is written early, and a closing minute's remainder; a lake falling behind grows past it
    lag = max(s.received - s.landed for s in after)
    lag_limit = 2 * 50_000 + 5 * args.rate
    checks = [
        (
            "RSS",
            f"window means {base:.1f} MB after warm-up -> {end:.1f} MB at the end ({grow:+.1f} MB, "
            f"{100 * grow / base:+.1f} %; {n} samples each); single samples {ref.rss_mb:.1f} -> "
            f"{last.rss_mb:.1f}, peak {peak:.1f}; fitted slope {slope_per_min([(s.t, s.rss_mb) for s in after]):+.2f} "
            f"MB/min. Inside: {inside}",
            f"growth < {args.rss_limit_pct:g} % ({limit_mb:.1f} MB)",
            grow < limit_mb,
        ),
        ("tasks", tasks[0], no_growth, tasks[1]),
        ("threads", threads[0], no_growth, threads[1]),
        (
            "fds",
            f"held {fds[0]} (at the end: {', '.join(f'{k} {v}' for k, v in sorted(fds_last.items()))}); "
            f"open at most: {max(s.writing for s in curve)} lake part, {max(s.segments for s in curve)} journal "
            "segment(s)",
            f"held: {no_growth}; at most 1 part, 2 segments",
            fds[1] and max(s.writing for s in curve) <= 1 and max(s.segments for s in curve) <= 2,
        ),
        (
            "backlog",
            f"the lake at most {lag:,} frames ({lag / args.rate:.1f} s) behind after warm-up; journal at most "
            f"{max(s.journal_mb for s in after):.0f} MB on disk, {journal_left[0]} segments ({journal_left[1]:.0f} MB)"
            " left after the stop",
            f"< 2 parts of 50k + 5 s of frames ({lag_limit:,.0f}); no segment left",
            lag < lag_limit and journal_left[0] == 0,
        ),
        (
            "rate",
            f"sender wrote {report['rate']:,.0f} frames/s over {report['elapsed_s']:.0f} s (at most "
            f"{report['behind_s']:.2f} s behind schedule; blocked on the socket {report['blocked_s']:.1f} s; "
            f"sender CPU {report['cpu_s']:.0f} s; other work on the machine took {mean(curve, 'others_pct'):.0f} % of "
            f"a core on average, up to {max(s.others_pct for s in curve):.0f} %)",
            f">= 99 % of {args.rate:,.0f}",
            report["rate"] >= 0.99 * args.rate and report["unfinished"] == 0,
        ),
        (
            "frames",
            f"sent {sent:,} received {done['received']:,} landed {landed:,} (+ {snapshots} REST snapshots landed of "
            f"{done['snapshots']} fetched)",
            "all equal",
            sent == done["received"] == landed
            and done["rows_written"] == landed + snapshots == landed + done["snapshots"],
        ),
        (
            "health",
            f"{done['errors']} errors, {done['reconnects']} reconnects, {done['sync_errors']} book sync errors, "
            f"{report['connections']} connections served, books {'/'.join(done['book_sync'])}",
            f"0, 0, 0, {args.connections}, synced",
            done["errors"] == done["reconnects"] == done["sync_errors"] == 0
            and report["connections"] == args.connections
            and done["book_sync"] == ["synced"],
        ),
    ]
    print(
        f"\nverdicts: reference = the sample at t={ref.t:.0f} s (after the {warmup:g} s warm-up), last at "
        f"t={last.t:.0f} s; {done['files_written']:,} raw files, {done['events_written']:,} events; "
        f"{report['frames_per_pass']:,} frames per pass of the recording, depth ids + {report['span']:,} per pass"
    )
    for name, value, limit, ok in checks:
        print(f"  {name:8} {'ok  ' if ok else 'FAIL'} {value}   [limit: {limit}]")
    if done["tracemalloc"]:
        print("\ntracemalloc, largest growth from the reference to the end:")
        for line in done["tracemalloc"]:
            print(f"  {line}")
    failed = [name for name, _, _, ok in checks if not ok]
    print(f"\nsoak {'FAILED: ' + ', '.join(failed) if failed else 'passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
