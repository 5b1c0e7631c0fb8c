"""Import speed: ``mdp import-capture`` of the test day beside a simple importer writing the same raw rows.

The test day (``bench/testday.py``: the bundled BTCUSDT spot recording tiled into 24 hours, ids and times
continuous) is imported, in the same run and interleaved, by

- ``mdp import-capture``: every frame routed by the exchange module, numbered per connection, the events a live
  collector records (open, subscribed, alive, the book session's sync...), one file per exchange and hour with
  the raw rows in row groups by channel group, a landing manifest per hour;
- a simple importer (``SIMPLE`` below): the gzip read line by line with the standard library, channel and symbol
  cut out of the stream name, ``seq`` counted per connection, the same raw rows written with pyarrow, one file
  per receive minute; no events, no checks.

Each run is a child process measured by ``wait4`` (wall, CPU, peak RSS). Printed: every run, then the median wall
time and CPU of each, their ratio (goal: the import at least 0.8x the simple importer's speed) and the import's
peak RSS (limit 500 MB). The two lakes' raw rows are then compared (row count and a hash of every column of every
row: the same rows), and the import's raw files are counted per exchange and hour (at most one).
Exits 1 when a goal is missed or the rows differ.

    .venv/bin/python bench/import_speed.py [--hours 6] [--runs 2] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import testday  # noqa: E402
from _report import bench_line  # noqa: E402

SPEED_GOAL = 0.8
LIMIT_MB = 500

#: the reference: read the gzip line by line, write each receive minute's raw rows with pyarrow
SIMPLE = r"""
import gzip, os, sys
import pyarrow as pa, pyarrow.parquet as pq
from mdplatform.schemas import RAW_ARROW

path, out, conn = sys.argv[1], sys.argv[2], sys.argv[3]
rest = conn + "/rest"
ts_type = RAW_ARROW.field("recv_ts").type
minute_ns = 60 * 10**9
cols = ([], [], [], [], [], [])
minute = None
seq = rest_seq = 0

def flush():
    if not cols[0]:
        return
    n = len(cols[0])
    table = pa.table(
        [pa.array(cols[0], pa.int64()).cast(ts_type), pa.array(["binance"] * n), pa.array(cols[1]),
         pa.array(cols[2]), pa.array(cols[3]), pa.array(cols[4], pa.int64()), pa.array(cols[5])],
        schema=RAW_ARROW,
    )
    folder = f"{out}/minute={minute}"
    os.makedirs(folder, exist_ok=True)
    pq.write_table(table, f"{folder}/part.parquet", compression="zstd")
    for c in cols:
        c.clear()

with gzip.open(path, "rt") as fh:
    for line in fh:
        ts, _, frame = line.rstrip("\n").partition(" ")
        t = int(ts)
        m = t - t % minute_ns
        if m != minute:
            flush()
            minute = m
        if frame.startswith('{"stream":"'):
            name, _, channel = frame[11 : frame.index('"', 11)].partition("@")
            channel, symbol = channel.partition("@")[0], name.upper()
            seq += 1
            c, s = conn, seq
        else:  # the inline REST depth snapshot
            channel, symbol = "depthSnapshot", "BTCUSDT"
            rest_seq += 1
            c, s = rest, rest_seq
        cols[0].append(t)
        cols[1].append(channel)
        cols[2].append(symbol)
        cols[3].append(c)
        cols[4].append(s)
        cols[5].append(frame)
flush()
"""


@dataclass(frozen=True, slots=True)
class Run:
    name: str
    wall_s: float
    cpu_s: float
    peak_mb: float


def run_child(name: str, args: list[str], log: Path) -> Run:
    """Run a command to its end; its own rusage through ``wait4``."""
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(args, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{name} failed: {log.read_text()[-2000:]}")
    return Run(name, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def raw_digest(files: str) -> tuple[int, int]:
    """(rows, a hash over every column of every row, order-free) of the raw Parquet files matching ``files``."""
    import duckdb

    ((rows, digest),) = duckdb.sql(
        "SELECT count(*), sum(hash(recv_ts, exchange, channel, symbol, conn_id, seq, payload)::HUGEINT) "
        f"FROM read_parquet('{files}')"
    ).fetchall()
    return int(rows), int(digest)


def files_per_hour(lake: Path) -> int:
    """The most raw files any exchange-hour of the lake has."""
    counts: dict[tuple[str, str, str], int] = {}
    for f in (lake / "raw").rglob("*.parquet"):
        parts = f.relative_to(lake / "raw").parts
        key = (parts[0], parts[1], parts[2] if len(parts) > 2 else "")
        counts[key] = counts.get(key, 0) + 1
    return max(counts.values(), default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=6, help="hours of the test day to import (default 6)")
    parser.add_argument("--runs", type=int, default=2, help="runs of each importer, interleaved (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mdp-import-speed-"))
    failures: list[str] = []
    try:
        capture = tmp / "testday.gz"
        made = testday.write_capture(capture, args.hours)
        print(
            f"cpu cores: {os.cpu_count()}; test day: {args.hours} h, {made.frames:,} frames, "
            f"{capture.stat().st_size / 2**20:,.0f} MB gzip (made in {made.seconds:.0f} s)",
            flush=True,
        )
        py = str(REPO / ".venv/bin/python")
        runs: list[Run] = []
        for i in range(args.runs):
            simple_out = tmp / f"simple-{i}"
            lake = tmp / f"lake-{i}"
            for name, cmd in (
                ("simple importer", [py, "-c", SIMPLE, str(capture), str(simple_out), testday.CONN_ID]),
                ("mdp import-capture", [py, "-m", "mdplatform", "import-capture", str(capture), "--exchange",
                                        "binance", "--lake", str(lake)]),
            ):  # fmt: skip
                r = run_child(name, cmd, tmp / f"{name.split()[0]}-{i}.log")
                runs.append(r)
                print(
                    f"run {i + 1}  {r.name:19} wall {r.wall_s:6.1f} s  cpu {r.cpu_s:6.1f} s  peak {r.peak_mb:4.0f} MB"
                )
            if i < args.runs - 1:
                shutil.rmtree(simple_out)
                shutil.rmtree(lake)
        print(f"  mdp said: {(tmp / f'mdp-{args.runs - 1}.log').read_text().strip()}")

        def med(name: str, attr: str) -> float:
            return statistics.median(getattr(r, attr) for r in runs if r.name == name)

        s_wall, m_wall = med("simple importer", "wall_s"), med("mdp import-capture", "wall_s")
        s_cpu, m_cpu = med("simple importer", "cpu_s"), med("mdp import-capture", "cpu_s")
        peak = max(r.peak_mb for r in runs if r.name == "mdp import-capture")
        speed = s_wall / m_wall
        print(
            f"import speed {speed:.2f}x the simple importer (median wall {m_wall:.1f} s vs {s_wall:.1f} s; "
            f"goal >= {SPEED_GOAL}x); CPU {m_cpu:.1f} s vs {s_cpu:.1f} s ({s_cpu / m_cpu:.2f}x)"
        )
        print(f"import peak RSS {peak:.0f} MB (limit {LIMIT_MB} MB; simple importer "
              f"{max(r.peak_mb for r in runs if r.name == 'simple importer'):.0f} MB)")  # fmt: skip
        bench_line("mdp import-capture vs the simple importer (median wall)", m_wall, "s", s_wall, speed,
                   f">= {SPEED_GOAL}", speed >= SPEED_GOAL)  # fmt: skip
        bench_line("mdp import-capture peak RSS", round(peak), "MB", None, None, f"< {LIMIT_MB} MB", peak < LIMIT_MB)
        if speed < SPEED_GOAL:
            failures.append(f"import at {speed:.2f}x the simple importer, goal {SPEED_GOAL}x")
        if peak > LIMIT_MB:
            failures.append(f"import peak RSS {peak:.0f} MB over {LIMIT_MB} MB")

        last = args.runs - 1
        ours = raw_digest(str(tmp / f"lake-{last}" / "raw" / "**" / "*.parquet"))
        theirs = raw_digest(str(tmp / f"simple-{last}" / "*" / "*.parquet"))
        print(f"raw rows: import {ours[0]:,}, simple importer {theirs[0]:,}, capture lines {made.frames:,}; "
              f"row hashes {'equal' if ours == theirs else 'DIFFER'}")  # fmt: skip
        if ours != theirs or ours[0] != made.frames:
            failures.append("the import's raw rows differ from the simple importer's")
        most = files_per_hour(tmp / f"lake-{last}")
        print(f"raw files per exchange-hour: at most {most} (limit 1)")
        bench_line("raw rows equal the simple importer's (hash)", ours[0], "rows", theirs[0], None, "equal",
                   ours == theirs)  # fmt: skip
        bench_line("raw files per exchange-hour after an import", most, "files", None, None, "<= 1", most <= 1)
        if most > 1:
            failures.append(f"{most} raw files in one exchange-hour")
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
