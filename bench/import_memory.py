"""Import memory: a day of one symbol's full depth + trades through ``mdp import-capture``, peak RSS against 500 MB.

Issue 7: an import writes its files as it goes, with memory bounded whatever the capture's size (under 500 MB for
a day of one symbol's depth + trades); since issue 15 one file per exchange and hour, committed once the capture
has moved past the hour. The bundled BTCUSDT spot recording (depth@100ms, bookTicker, trade;
two files, 10.8 minutes with no break between them) is tiled end to end in time into an N-hour capture: copy k
has every receive time shifted by k whole periods (the recording's span rounded up to the next whole minute), so
receive times keep increasing; the frames stay byte-identical. Only receive times are shifted, because the
importer keys everything on them: minutes (partitions and flushes) and ``seq`` follow receive order, and exchange
times (``E``, ``T``) only annotate events with the newest one seen. Each copy's book frames repeat update ids
the session has already passed: its depth diffs are stale and its snapshot is ignored, which the importer
treats as no gap and drops no row for. (Materializing this lake is another matter: every copy after the first
repeats the same trade ids and exchange times, so ``trades`` would keep one day-old copy of each; this bench
measures the import only.)

Two child processes read the same gzip file, each measured by ``wait4`` so its peak RSS is its own: the floor (the
modules ``mdp import-capture`` loads, then a read-only pass over the lines) and the real ``mdp import-capture``.
The raw table it wrote is then counted (one row per line, ``seq`` 1..n without holes or repeats per connection).
Exits 1 if the peak is over the limit, the import failed or the counts differ.

    .venv/bin/python bench/import_memory.py [--hours 24] [--keep]
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing as mp
import os
import queue
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from _report import bench_line

REPO = Path(__file__).resolve().parents[1]
#: the recording, in time order: 2024-08-08 23:54:13 .. 08-09 00:05:04 UTC, one connection across both files
SOURCES = (REPO / "demo/data/binance-spot/btcusdt_20240808.gz", REPO / "demo/data/binance-spot/btcusdt_20240809.gz")
LIMIT_MB = 500
MINUTE_NS = 60 * 10**9
HOUR_NS = 60 * MINUTE_NS

#: the floor: what ``mdp import-capture`` imports (the CLI loads its plugins lazily, so no Dagster), then every line
#: of the capture read through the importer's own reader and thrown away
FLOOR = """
import sys
import mdplatform.cli, mdplatform.capture, mdplatform.exchanges, mdplatform.lake
n = 0
with mdplatform.capture.open_capture(sys.argv[1]) as fh:
    for _ in fh:
        n += 1
print(f"{n} lines read")
"""


def source_lines() -> Iterator[bytes]:
    """The recording's lines, both files in order, streamed."""
    for path in SOURCES:
        with gzip.open(path, "rb") as fh:
            yield from fh


def write_capture(out: Path, hours: float) -> tuple[int, int, int, int]:
    """Tile the recording over ``hours`` of receive time into ``out`` (gzip). Returns (lines, uncompressed bytes,
    copies, period ns). Lines whose shifted time falls at or after first + ``hours`` are left out, so the last copy
    is cut short. Written by a child process (``_tile``): it holds the recording in memory (27 MB), and this
    process's peak is what a child's ``ru_maxrss`` may inherit (see ``run_child``)."""
    ctx = mp.get_context("spawn")
    results: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    child = ctx.Process(target=_tile, args=(str(out), hours, results))
    child.start()
    while True:
        try:
            made: tuple[int, int, int, int] = results.get(timeout=1)
            break
        except queue.Empty:
            if not child.is_alive():
                sys.exit(f"writing the capture failed (exit {child.exitcode})")
    child.join()
    return made


def _tile(out: str, hours: float, results: mp.Queue) -> None:  # type: ignore[type-arg]
    """``write_capture``'s work: a copy at a time, compressed on a thread (``testday.write_gzip``; level 1: the bench
    measures the import, not the compressor, and the importer gunzips either way)."""
    from testday import write_gzip

    rows = [line.split(b" ", 1) for line in source_lines()]
    stamps = np.array([int(ts) for ts, _ in rows], dtype=np.int64)
    rests = [rest for _, rest in rows]
    first, span = int(stamps[0]), int(stamps[-1] - stamps[0])
    # the next whole minute above the span: copy k+1 starts strictly after copy k ends, and every copy keeps the
    # recording's phase within its minutes
    period = (span // MINUTE_NS + 1) * MINUTE_NS
    end = first + round(hours * HOUR_NS)
    copies = -(-(end - first) // period)
    kept = [int(np.count_nonzero(stamps + k * period < end)) for k in range(copies)]

    def chunks() -> Iterator[bytes]:
        for k in range(copies):
            shifted = (stamps + k * period).tolist()
            yield b"".join([b"%d %s" % (t, rest) for t, rest in zip(shifted, rests, strict=True) if t < end])

    size = write_gzip(out, chunks(), level=1)
    results.put((sum(kept), size, copies, period))


def run_child(args: list[str], cwd: Path, log: Path) -> tuple[int, float, float]:
    """Run a command to its end: (exit code, peak RSS in MB, wall seconds).

    ``os.wait4`` gives this child's own rusage, where ``RUSAGE_CHILDREN`` would be the largest of all children so
    far. Its ``ru_maxrss`` can include this process's own peak (subprocess starts children with vfork, and exec
    carries the high-water mark of the memory it replaces over), which is why this process streams everything
    and its own peak is printed beside the figures.
    """
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(args, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, wall


def run_line(name: str, peak_mb: float, wall_s: float, lines: int) -> str:
    return f"{name:21} peak RSS {peak_mb:6.0f} MB  wall {wall_s:6.0f} s  {lines / wall_s:>9,.0f} lines/s"


def raw_counts(lake: Path) -> tuple[int, list[str]]:
    """Rows of the lake's raw table, and what is wrong with its ``seq`` per connection (empty: each connection's
    rows are seq 1..n, once each)."""
    import duckdb

    glob = str(lake / "raw" / "**" / "*.parquet")
    con = duckdb.connect()
    per_conn = con.execute(
        "select conn_id, count(*), count(distinct seq), min(seq), max(seq) from read_parquet(?) group by conn_id",
        [glob],
    ).fetchall()
    problems = [
        f"{conn}: {n} rows, {distinct} distinct seq in {lo}..{hi}"
        for conn, n, distinct, lo, hi in per_conn
        if not (n == distinct == hi and lo == 1)
    ]
    return sum(row[1] for row in per_conn), problems


def landing_spread(lake: Path, started: float) -> tuple[int, int, float, float]:
    """Raw files, receive hours they cover, and the first and last file's write time in seconds after the import
    started: files written all through the run, not at its end, is what "hours as they finish" means."""
    files = list((lake / "raw").rglob("*.parquet"))
    hours = {f.parent for f in files}
    mtimes = sorted(f.stat().st_mtime for f in files)
    return len(files), len(hours), mtimes[0] - started, mtimes[-1] - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="hours of receive time to tile (default 24)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (capture, lake, logs)")
    args = parser.parse_args()
    if not all(p.exists() for p in SOURCES):
        sys.exit(f"bundled capture not found: {', '.join(map(str, SOURCES))}")
    tmp = Path(tempfile.mkdtemp(prefix="mdp-import-bench-"))
    failures: list[str] = []
    try:
        capture = tmp / "btcusdt_tiled.gz"
        lake = tmp / "lake"
        print(f"cpu cores: {os.cpu_count()}, python {sys.version.split()[0]}, temp dir {tmp}", flush=True)
        t0 = time.perf_counter()
        lines, size, copies, period = write_capture(capture, args.hours)
        print(
            f"capture   {args.hours:g} h of BTCUSDT spot depth@100ms + bookTicker + trade: {copies} copies of "
            f"{' + '.join(p.name for p in SOURCES)} every {period // MINUTE_NS} min (receive times shifted only)"
        )
        print(
            f"capture   {lines:>12,} lines  {size / 2**20:8,.0f} MB  gzip {capture.stat().st_size / 2**20:6,.0f} MB"
            f"  (written in {time.perf_counter() - t0:.0f} s)",
            flush=True,
        )

        py = str(REPO / ".venv/bin/python")
        rc, floor_mb, floor_s = run_child([py, "-c", FLOOR, str(capture)], tmp, tmp / "floor.log")
        if rc != 0:
            failures.append(f"read-only pass exited {rc}: {(tmp / 'floor.log').read_text()[-500:]}")
        print(run_line("read-only pass", floor_mb, floor_s, lines), flush=True)

        # this process's peak so far: the most a child's figure may have inherited (see run_child)
        own_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.time()
        cmd = [py, "-m", "mdplatform", "import-capture", str(capture), "--exchange", "binance", "--lake", str(lake)]
        rc, peak_mb, import_s = run_child(cmd, tmp, tmp / "import.log")
        output = (tmp / "import.log").read_text()
        print(run_line("mdp import-capture", peak_mb, import_s, lines))
        print(f"  mdp said: {output.strip()}")
        if rc != 0:
            failures.append(f"import exited {rc}")
        if "unreadable line" in output:
            failures.append("the import reported unreadable lines")

        print(
            f"import-capture peak RSS {peak_mb:.0f} MB  (limit {LIMIT_MB} MB; floor: read-only pass {floor_mb:.0f} MB)"
        )
        bench_line(f"mdp import-capture peak RSS, {args.hours:g} h capture", round(peak_mb), "MB", round(floor_mb),
                   None, f"< {LIMIT_MB} MB", peak_mb < LIMIT_MB)  # fmt: skip
        if peak_mb > LIMIT_MB:
            failures.append(f"peak RSS {peak_mb:.0f} MB over the {LIMIT_MB} MB limit")

        m = re.search(r"imported (\d+) rows", output)
        imported = int(m.group(1)) if m else -1
        rows, seq_problems = raw_counts(lake) if (lake / "raw").exists() else (0, [])
        print(f"raw rows in lake {rows:>12,}  capture lines {lines:>12,}  import summary {imported:>12,}")
        if not rows == lines == imported:
            failures.append("raw rows, capture lines and the import's count differ")
        failures += [f"seq: {p}" for p in seq_problems]
        if rows:
            files, hours, first_s, last_s = landing_spread(lake, started)
            print(
                f"raw files {files:,} over {hours:,} receive hours, written from {first_s:.0f} s to {last_s:.0f} s"
                f" of the {import_s:.0f} s import"
            )
        print(f"bench process peak RSS before the children {own_mb:.0f} MB (the most their figures may include)")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for failure in failures:
        print(f"FAIL: {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
