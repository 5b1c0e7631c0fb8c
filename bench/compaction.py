"""Compaction of the test day: raw files, bytes and the time ``mdp lake compact`` takes, a reader meanwhile, and what a
trades read costs before and after.

The test day (``bench/testday.py``: the bundled BTCUSDT spot recording tiled into 24 hours) is landed as the
collector lands it: one raw file and one events file per minute (``RawWriter``, every frame). Then, in the same run:

1. a trades read of the whole day (``read_raw(channels=trade)``) on the minute files, and a read of every channel
   (the reference: what a read that skipped nothing costs); time and bytes this process read from disk
   (``/proc/self/io``);
2. compaction into hour files (``compact``, days left as hours) while a reader thread reads the day's trades
   hour by hour over and over: every read must return exactly the rows it returned before (no hour half-compacted,
   none read twice);
3. the trades read again on the hour files, then a day file (``day_age`` 0), and again.

Printed: files and MB per step, compaction's time, raw files per exchange-day (goal: at most 25), the reader's reads
and mismatches (goal: none), and each trades read's time and bytes beside the full read's. Exits 1 when a goal is
missed.

    .venv/bin/python bench/compaction.py [--hours 24] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import testday  # noqa: E402
from _report import bench_line  # noqa: E402

from mdplatform.lake import compact, read_raw  # noqa: E402

HOUR_NS = 3600 * 10**9
FILES_PER_DAY = 25
TRADES = ["trade", "aggTrade"]


def read_bytes() -> int:
    """Bytes this process has read through system calls so far (``rchar``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def files(root: Path, tree: str) -> tuple[int, int]:
    paths = [p for p in (root / tree).rglob("*.parquet")]
    return len(paths), sum(p.stat().st_size for p in paths)


def per_day(root: Path) -> int:
    """The most raw files any exchange-day has."""
    counts: dict[tuple[str, str], int] = {}
    for p in (root / "raw").rglob("*.parquet"):
        key = p.relative_to(root / "raw").parts[:2]
        counts[(key[0], key[1])] = counts.get((key[0], key[1]), 0) + 1
    return max(counts.values(), default=0)


def timed_read(root: str, channels: list[str] | None) -> tuple[int, float, int]:
    """(rows, seconds, bytes read) of a read of the whole lake."""
    before, t0 = read_bytes(), time.perf_counter()
    rows = read_raw(root, 0, 2**62, channels=channels, columns=["recv_ts", "channel", "payload"]).height
    return rows, time.perf_counter() - t0, read_bytes() - before


def show(label: str, read: tuple[int, float, int], reference: tuple[int, float, int]) -> None:
    rows, seconds, nbytes = read
    print(
        f"  {label:34} {rows:>11,} rows {seconds:6.2f} s {nbytes / 2**20:8,.1f} MB read   "
        f"(every channel: {reference[1]:6.2f} s {reference[2] / 2**20:8,.1f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24, help="hours of the test day (default 24)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mdp-compaction-"))
    root = tmp / "lake"
    failures: list[str] = []
    try:
        made = testday.cached_lake(str(root), args.hours)
        raw_before, events_before = files(root, "raw"), files(root, "events")
        print(
            f"test day {args.hours} h: {made.frames:,} frames in {raw_before[0]:,} raw files "
            f"({raw_before[1] / 2**20:,.0f} MB), {events_before[0]:,} events files (written in {made.seconds:.0f} s)"
        )
        first, last = made.plan.first_hour, made.plan.first_hour + args.hours * HOUR_NS
        hours = list(range(first, last, HOUR_NS))
        expected = {h: read_raw(str(root), h, h + HOUR_NS, channels=TRADES).height for h in hours}

        print("trades read of the whole lake, minute files:")
        full = timed_read(str(root), None)
        show("trades, minute files", timed_read(str(root), TRADES), full)

        stop = threading.Event()
        reads: list[int] = []
        wrong: list[str] = []

        def reader() -> None:
            while not stop.is_set():
                for h in hours:
                    try:
                        n = read_raw(str(root), h, h + HOUR_NS, channels=TRADES).height
                    except Exception as exc:
                        wrong.append(f"hour {h}: {exc!r}")
                        continue
                    reads.append(n)
                    if n != expected[h]:
                        wrong.append(f"hour {h}: {n} trade rows, {expected[h]} before")
                    if stop.is_set():
                        return

        thread = threading.Thread(target=reader, name="reader")
        thread.start()
        try:
            hourly = compact(str(root), day_age_ns=10**30)
        finally:
            stop.set()
            thread.join()
        raw_hours, events_hours = files(root, "raw"), files(root, "events")
        print(
            f"compaction into hours: {hourly.seconds:.1f} s; raw {raw_before[0]:,} files "
            f"{raw_before[1] / 2**20:,.0f} MB -> {raw_hours[0]:,} files {raw_hours[1] / 2**20:,.0f} MB; events "
            f"{events_before[0]:,} -> {events_hours[0]:,} files; at most {per_day(root)} raw files per exchange-day "
            f"(goal <= {FILES_PER_DAY})"
        )
        print(f"  a reader meanwhile: {len(reads):,} hour reads of trades, {len(wrong)} wrong (goal 0)")
        most = per_day(root)
        bench_line("raw files per exchange-day, after compaction", most, "files", raw_before[0], None,
                   f"<= {FILES_PER_DAY}", most <= FILES_PER_DAY)  # fmt: skip
        bench_line("raw MB of the day, after compaction", round(raw_hours[1] / 2**20), "MB",
                   round(raw_before[1] / 2**20), raw_hours[1] / raw_before[1])  # fmt: skip
        bench_line(f"compaction of the test day ({args.hours} h) into hour files", hourly.seconds, "s")
        bench_line("wrong reads by a reader during compaction", len(wrong), "reads", len(reads), None, "== 0",
                   not wrong)  # fmt: skip
        if per_day(root) > FILES_PER_DAY:
            failures.append(f"{per_day(root)} raw files in one exchange-day")
        failures += wrong[:5]
        again = compact(str(root), day_age_ns=10**30)
        print(f"  run again: {len(again.spans)} span(s) rewritten in {again.seconds:.2f} s (goal 0)")
        if again.spans:
            failures.append("a second run rewrote spans")
        bench_line("files a second compaction rewrote", len(again.spans), "spans", None, None, "== 0", not again.spans)

        full = timed_read(str(root), None)
        trades_read = timed_read(str(root), TRADES)
        show("trades, hour files", trades_read, full)
        bench_line("trades read of the day, hour files: bytes read", round(trades_read[2] / 2**20), "MB",
                   round(full[2] / 2**20), trades_read[2] / full[2])  # fmt: skip
        daily = compact(str(root), day_age_ns=0)
        raw_days = files(root, "raw")
        print(
            f"compaction into days: {daily.seconds:.1f} s; raw {raw_hours[0]:,} -> {raw_days[0]:,} files "
            f"{raw_days[1] / 2**20:,.0f} MB"
        )
        full = timed_read(str(root), None)
        show("trades, day files", timed_read(str(root), TRADES), full)
        h = hours[len(hours) // 2]
        one = read_raw(str(root), h, h + HOUR_NS, channels=TRADES).height
        print(f"  one hour of trades from the day files: {one:,} rows (before compaction: {expected[h]:,})")
        if one != expected[h]:
            failures.append("an hour read from a day file differs")
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
