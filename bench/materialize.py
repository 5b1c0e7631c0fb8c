"""Materialize (books off): ``mdp materialize`` on the test day beside a single-pass reference, interleaved.

Issue 15's goals, each printed beside its reference or limit from the same run:

1. **The test day** (``bench/testday.py``: the bundled BTCUSDT spot recording tiled into 24 hours, 13.24M frames,
   2.65M trades; written straight into a lake, raw rows identical to an import, or with ``--testday import``
   through ``mdp import-capture``): ``mdp materialize --from 2024-08-09T00 --to 2024-08-10T00`` (a subprocess,
   ``MDP_BOOKS=0``, a fresh ``DAGSTER_HOME`` and fresh derived tables each run, telemetry off) and
   ``bench/reference_materialize.py --duckdb`` (the same trades Parquet, DuckDB rows and 1m..1d candles in one polars
   pass, exact decimals), ``--runs`` rounds interleaved; wall and CPU time and peak RSS of each child from
   ``wait4``. Limit: the platform at least 0.5x the reference's speed (median wall). The reference's other variants
   (exact without DuckDB, Float64) run once each, for what decimals and DuckDB cost.
2. **Results stay exact**: the platform's candles (read back from the lake's ``candles`` partitions) equal the
   reference's in every column (1,440 of 1,440 1m candles, and 5m..1d), and its ``trades`` partitions equal the
   reference's row for row. Exits 1 if not (or if a run fails).
3. **Per-hour fixed cost** when hours run as a range: a lake holding only a collector's events (a connection with
   no frames) for 24 hours; ``mdp materialize`` of one hour and of N hours, the fastest of 3 interleaved runs each:
   (T_N - T_1) / (N - 1), limit 0.05 s for both the wall and the CPU time figure (N is 24 when the budget allows,
   else fewer).
4. **Start-up**: ``mdp --help``, median of 5, limit 0.5 s, beside a bare ``python -c pass``.
5. **Cost curve**: 1 day (the test day) and 7 and 30 days of trade frames written straight into lakes
   (``--density`` of the trades kept: lighter by default so the bench keeps to its budget) in hour files, the
   layout history has once compacted (``mdp lake compact``; a month of minute files took 280 s to write), platform
   and reference once each: seconds per million trades, and the speed ratio (limit 0.5). A point whose estimated
   time does not fit in what is left of ``--budget`` is skipped, saying so; ``--full`` runs full density without a
   budget.

They run in the order 4, 3, 1 and 2, 5 (the cheap fixed figures first, the curve last, in what the budget leaves).
Each figure is also printed as a ``BENCH {json}`` line (``bench/run_all.py`` collects them into one table).
``--src DIR`` measures another source tree (e.g. ``git archive HEAD | tar -x -C DIR``): it goes first on
PYTHONPATH of the platform's and the lake writer's processes.

    .venv/bin/python bench/materialize.py [--runs 3] [--budget 480] [--full] [--testday direct|import] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _report import bench_line

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
PY = str(REPO / ".venv/bin/python") if (REPO / ".venv/bin/python").exists() else sys.executable
HOUR_NS = 3600 * 10**9
RATIO_LIMIT = 0.5
FIXED_LIMIT_S = 0.05
HELP_LIMIT_S = 0.5
#: rounds of the fixed-cost runs (each figure the fastest of them)
FIXED_ROUNDS = 3
#: what a lake holds before materializing; everything else under its root is derived and removed between runs
INPUTS = {"raw", "events", "backfill", "backfill_events", "_landed"}
#: the curve's default trade densities per day count (--full: 1)
DENSITY = {7: 0.2, 30: 0.05}
TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d")


@dataclass(frozen=True, slots=True)
class Run:
    wall: float
    cpu: float
    sys: float
    rss_mb: float
    rc: int
    log: Path

    def text(self) -> str:
        return f"{self.wall:7.2f} s wall {self.cpu:7.2f} s CPU ({self.sys:5.2f} sys) {self.rss_mb:6,.0f} MB"

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]


emit = bench_line


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.began = time.monotonic()
        self.failures: list[str] = []
        self.src = Path(args.src).resolve() if args.src else None
        self.env = {**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1", "MDP_BOOKS": "0"}
        for name in ("MDP_WAREHOUSE", "MDP_START"):
            self.env.pop(name, None)
        if self.src is not None:
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.src), os.environ.get("PYTHONPATH")]))
        self.runs = 0

    # --- running children ---------------------------------------------------------------------------

    def left(self) -> float:
        return self.args.budget - (time.monotonic() - self.began) if self.args.budget else float("inf")

    def child(self, cmd: list[str], name: str, env: dict[str, str] | None = None) -> Run:
        """Run to its end; wall from here, CPU and peak RSS from ``wait4`` (this child's own rusage)."""
        self.runs += 1
        log = self.tmp / f"{self.runs:03d}-{name}.log"
        t0 = time.perf_counter()
        with open(log, "wb") as fh:
            proc = subprocess.Popen(cmd, cwd=self.tmp, env=env or self.env, stdout=fh, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        run = Run(
            wall,
            usage.ru_utime + usage.ru_stime,
            usage.ru_stime,
            usage.ru_maxrss / 1024,
            os.waitstatus_to_exitcode(status),
            log,
        )
        if run.rc != 0:
            self.failures.append(f"{name} exited {run.rc}: {run.tail()}")
        return run

    def platform(self, lake: Path, lo: str, hi: str, name: str = "platform") -> Run:
        """``mdp materialize`` on a lake holding only its inputs, with a fresh Dagster instance."""
        for child in lake.iterdir():
            if child.name not in INPUTS:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        home = self.tmp / "dagster-home"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()
        env = {**self.env, "DAGSTER_HOME": str(home), "MDP_LAKE": str(lake)}
        cmd = [PY, "-m", "mdplatform", "materialize", "--from", lo, "--to", hi, "--lake", str(lake)]
        return self.child(cmd, name, env)

    def reference(self, lake: Path, lo: str, hi: str, out: Path, *flags: str) -> Run:
        cmd = [
            PY,
            str(BENCH / "reference_materialize.py"),
            "--lake",
            str(lake),
            "--from",
            lo,
            "--to",
            hi,
            "--out",
            str(out),
            *flags,
        ]
        return self.child(cmd, "reference" + "".join(flags).replace("--", "-"))

    def testday(self, lake: Path, hours: int, *flags: str) -> tuple[Run, dict[str, object]]:
        """A lake from bench/testday.py (in a child: this process stays small, see ``child``)."""
        run = self.child([PY, str(BENCH / "testday.py"), "lake", str(lake), "--hours", str(hours), *flags], "lake")
        return run, _counts(run.log.read_text())

    # --- the sections ------------------------------------------------------------------------------

    def make_testday(self, lake: Path) -> dict[str, object]:
        hours = self.args.hours
        if self.args.testday == "import":
            capture = self.tmp / "testday.gz"
            made = self.child(
                [PY, str(BENCH / "testday.py"), "capture", str(capture), "--hours", str(hours)], "capture"
            )
            imported = self.child(
                [PY, "-m", "mdplatform", "import-capture", str(capture), "--exchange", "binance", "--lake", str(lake)],
                "import",
            )
            counts = _counts(made.log.read_text())
            print(f"test day  tiled capture {made.text()}; mdp import-capture {imported.text()}")
            capture.unlink(missing_ok=True)
        else:
            run, counts = self.testday(lake, hours)
            print(f"test day  written straight into the lake (raw rows as an import lands them): {run.text()}")
        print(
            f"test day  {counts.get('copies', 0)} copies, {counts.get('frames', 0):,} frames, "
            f"{counts.get('trades', 0):,} trades",
            flush=True,
        )
        return counts

    def test_day(self) -> tuple[float, float, int, float]:
        """Sections 1 and 2; returns (platform median wall, reference median wall, trades, lake seconds per
        frame)."""
        args = self.args
        lake = self.tmp / "testday-lake"
        t0 = time.monotonic()
        counts = self.make_testday(lake)
        lake_s = time.monotonic() - t0
        lo, hi = _range(counts)
        plat: list[Run] = []
        ref: list[Run] = []
        out = self.tmp / "reference-out"
        for i in range(args.runs):
            plat.append(self.platform(lake, lo, hi))
            ref.append(self.reference(lake, lo, hi, out, "--duckdb"))
            print(f"run {i + 1}   platform {plat[-1].text()}   reference {ref[-1].text()}", flush=True)
        trades = _reference_trades(ref[-1])  # the trades of the range (the lake holds a few more around it)
        exact = self.reference(lake, lo, hi, self.tmp / "reference-exact")
        floats = self.reference(lake, lo, hi, self.tmp / "reference-float", "--float")
        print(f"reference variants: exact, no DuckDB {exact.text()};  Float64, no DuckDB {floats.text()}")
        variants = f"{exact.wall:.2f} ({exact.cpu:.2f} CPU) / {floats.wall:.2f} ({floats.cpu:.2f} CPU)"
        p = statistics.median(r.wall for r in plat)
        r = statistics.median(x.wall for x in ref)
        pc = statistics.median(x.cpu for x in plat)
        rc = statistics.median(x.cpu for x in ref)
        ratio = r / p if p else 0.0
        ok = ratio >= RATIO_LIMIT
        p_mb, r_mb = max(x.rss_mb for x in plat), max(x.rss_mb for x in ref)
        print(
            f"MATERIALIZE test day {lo} .. {hi} ({trades:,} trades), median of {args.runs}: platform {p:.2f} s "
            f"({trades / p / 1000 if p else 0:,.1f}k trades/s, CPU {pc:.2f} s, peak {p_mb:,.0f} MB)  reference "
            f"{r:.2f} s (CPU {rc:.2f} s, peak {r_mb:,.0f} MB)  speed ratio {ratio:.2f} (CPU "
            f"{rc / pc if pc else 0:.2f}), limit {RATIO_LIMIT}  {'ok' if ok else 'FAIL'}",
            flush=True,
        )
        emit(
            "test day: platform vs reference (median wall)",
            round(p, 2),
            "s",
            round(r, 2),
            ratio,
            f">= {RATIO_LIMIT}",
            ok,
        )
        emit("test day: CPU time", round(pc, 2), "s CPU", round(rc, 2), rc / pc if pc else None)
        emit("test day: peak RSS", round(p_mb), "MB", round(r_mb))
        emit(
            "reference variants: exact+DuckDB / exact / Float64",
            f"{r:.2f} ({rc:.2f} CPU)",
            "s",
            variants,
        )
        self.check(lake, out, lo, hi)
        return p, r, trades, lake_s / max(int(str(counts.get("frames", 1))), 1)

    def check(self, lake: Path, reference_out: Path, lo: str, hi: str) -> None:
        """``check`` in a child: reading 2.6M trades twice would raise this process's peak, which the children
        started after it may inherit in their figures (see ``child``)."""
        run = self.child([PY, __file__, "--check", str(lake), str(reference_out), lo, hi], "check")
        print(run.log.read_text(), end="", flush=True)

    def help_time(self) -> None:
        help_runs = [self.child([PY, "-m", "mdplatform", "--help"], "help") for _ in range(5)]
        bare = [self.child([PY, "-c", "pass"], "python") for _ in range(5)]
        h = statistics.median(r.wall for r in help_runs)
        b = statistics.median(r.wall for r in bare)
        ok = h < HELP_LIMIT_S
        print(
            f"START-UP mdp --help median of 5: {h:.3f} s (python -c pass {b:.3f} s), limit {HELP_LIMIT_S} s  "
            f"{'ok' if ok else 'FAIL'}",
            flush=True,
        )
        emit("mdp --help start-up (median of 5)", round(h, 3), "s", round(b, 3), None, f"< {HELP_LIMIT_S} s", ok)

    def fixed_cost(self) -> float:
        """(T_N - T_1) / (N - 1) on a lake of events only: the fastest of ``FIXED_ROUNDS`` interleaved rounds of each
        (the least disturbed by whatever else the machine runs); CPU time beside it."""
        lake = self.tmp / "events-lake"
        made, counts = self.testday(lake, 24, "--channels", "trade", "--density", "0")
        first = _ns(_range(counts)[0])
        mid = first + 12 * HOUR_NS

        def hours(n: int) -> Run:
            start = mid if n == 1 else first
            return self.platform(lake, _hour(start), _hour(start + n * HOUR_NS), f"platform-{n}h")

        t1, t3 = [hours(1)], hours(3)
        # N = 24 when FIXED_ROUNDS rounds of 1 and N hours fit in a fifth of the budget (by the cost per hour that 1
        # and 3 hours show), else fewer, at least 3
        step = max(t3.wall - t1[0].wall, 0.0) / 2
        n = 24
        share = self.args.budget / 5 / FIXED_ROUNDS if self.args.budget and not self.args.full else float("inf")
        while n > 3 and t1[0].wall + (n - 1) * step > share:
            n -= 1
        tn = [t3] if n == 3 else []
        while len(tn) < FIXED_ROUNDS:
            tn.append(hours(n))
            if len(t1) < FIXED_ROUNDS:
                t1.append(hours(1))
        one, many = min(t1, key=lambda x: x.wall), min(tn, key=lambda x: x.wall)
        per_hour = (many.wall - one.wall) / (n - 1)
        per_hour_cpu = (min(x.cpu for x in tn) - min(x.cpu for x in t1)) / (n - 1)
        # judged on the larger of the two: on a loaded machine a difference of wall times can come out near zero or
        # below it, and CPU time leaves out waits (fsync)
        ok = max(per_hour, per_hour_cpu) < FIXED_LIMIT_S
        print(
            f"FIXED COST hours holding a collector's events and no trades, fastest of {FIXED_ROUNDS}: 1 hour "
            f"{one.wall:.2f} s, {n} hours {many.wall:.2f} s: {per_hour:.3f} s per hour (CPU {per_hour_cpu:.3f} s), "
            f"limit {FIXED_LIMIT_S} s  {'ok' if ok else 'FAIL'} (lake written in {made.wall:.1f} s)",
            flush=True,
        )
        emit(
            f"per-hour fixed cost ((T{n} - T1) / {n - 1}, fastest of {FIXED_ROUNDS})",
            round(per_hour, 4),
            "s/hour",
            f"T1 {one.wall:.2f} s; CPU {per_hour_cpu:.3f} s/hour",
            None,
            f"< {FIXED_LIMIT_S} s",
            ok,
        )
        return per_hour

    def curve(self, day: tuple[float, float, int, float], fixed: float) -> None:
        p1, r1, n1, lake_per_frame = day
        rows = [(f"test day ({self.args.hours} h)", 1.0, n1, p1, r1)]
        # what a trade costs the platform beyond the hours' fixed cost, and the reference
        per_trade = max(p1 - self.args.hours * fixed, 0.0) / max(n1, 1)
        ref_per_trade = r1 / max(n1, 1)
        for days in self.args.days:
            density = 1.0 if self.args.full else self.args.density.get(days, DENSITY.get(days, 1.0))
            trades = round(n1 / self.args.hours * 24 * days * density)
            estimate = days * 24 * fixed + trades * (per_trade + ref_per_trade + lake_per_frame)
            if not self.args.full and estimate > self.left():
                print(
                    f"CURVE {days} days at density {density:g} skipped: estimated {estimate:.0f} s, "
                    f"{self.left():.0f} s of the budget left (--full or a larger --budget runs it)",
                    flush=True,
                )
                emit(
                    f"cost curve: {days} days (density {density:g})",
                    "skipped",
                    "s per M trades",
                    None,
                    None,
                    f">= {RATIO_LIMIT}",
                    None,
                )
                continue
            lake = self.tmp / f"curve-{days}d"
            made, counts = self.testday(
                lake, days * 24, "--channels", "trade", "--density", str(density), "--layout", "hour"
            )
            lo, hi = _range(counts)
            plat = self.platform(lake, lo, hi, f"platform-{days}d")
            ref = self.reference(lake, lo, hi, self.tmp / f"reference-{days}d", "--duckdb")
            rows.append((f"{days} days", density, _reference_trades(ref), plat.wall, ref.wall))
            print(
                f"curve {days} days: lake {made.wall:.1f} s; platform {plat.text()}; reference {ref.text()}", flush=True
            )
            shutil.rmtree(lake, ignore_errors=True)
        print("CURVE range         density      trades  platform s  s/M trades  reference s  s/M trades  speed ratio")
        for label, density, trades, p, r in rows:
            ratio = r / p if p else 0.0
            ok = ratio >= RATIO_LIMIT
            m = max(trades, 1) / 1e6
            print(
                f"      {label:<14}  {density:>5g}  {trades:>10,}  {p:>10.2f}  {p / m:>10.2f}  {r:>11.2f}  "
                f"{r / m:>10.2f}  {ratio:>6.2f} (limit {RATIO_LIMIT}) {'ok' if ok else 'FAIL'}"
            )
            emit(
                f"cost curve: {label} (density {density:g}, {trades:,} trades)",
                round(p / m, 2),
                "s per M trades",
                round(r / m, 2),
                ratio,
                f">= {RATIO_LIMIT}",
                ok,
            )


def check(lake: Path, reference_out: Path, lo: str, hi: str) -> bool:
    """The platform's candles and trades (read back from the lake's partitions) equal the reference's, every
    column."""
    sys.path.insert(0, str(BENCH))
    import polars as pl
    from reference_materialize import compare_frames, read_hourly

    from mdplatform.schemas import CANDLES, TRADES
    from mdplatform.warehouse import read_partitions

    start, end = _ns(lo), _ns(hi)
    got = read_partitions(str(lake), "candles", start, end, CANDLES)
    want = read_hourly(reference_out, "candles")
    problems = compare_frames(got, want, ["timeframe", "open_time"])
    parts = []
    for tf in TIMEFRAMES:
        g, w = got.filter(pl.col("timeframe") == tf), want.filter(pl.col("timeframe") == tf)
        same = 0 if problems else w.height
        parts.append(f"{tf} {same:,} of {w.height:,} ({g.filter(pl.col('complete')).height:,} complete)")
    ok = not problems
    print(f"CANDLES equal to the reference, every column: {'; '.join(parts)}  {'ok' if ok else 'FAIL'}")
    one_minute = want.filter(pl.col("timeframe") == "1m").height
    figure = f"{0 if problems else want.height}/{want.height}"
    emit(
        "candles equal to the reference (all timeframes)", figure, "candles", f"1m {one_minute}", None, "all equal", ok
    )
    t_got = read_partitions(str(lake), "trades", start, end, TRADES)
    t_want = read_hourly(reference_out, "trades")
    t_problems = compare_frames(t_got, t_want, None)
    print(
        f"TRADES equal to the reference, row for row: {t_got.height:,} vs {t_want.height:,}  "
        f"{'ok' if not t_problems else 'FAIL'}"
    )
    for p in problems + t_problems:
        print(f"  {p}")
    return not (problems or t_problems)


def _counts(text: str) -> dict[str, object]:
    """The figures testday.py prints on its ``TESTDAY`` line."""
    for line in text.splitlines():
        if line.startswith("TESTDAY "):
            figures: dict[str, object] = json.loads(line[8:])
            return figures
    return {}


def _reference_trades(run: Run) -> int:
    """Trades of the range, from the reference's ``REFERENCE`` line."""
    for line in run.log.read_text().splitlines():
        if line.startswith("REFERENCE "):
            return int(json.loads(line[10:])["trades"])
    return 0


def _range(counts: dict[str, object]) -> tuple[str, str]:
    return str(counts["from"]), str(counts["to"])


def _ns(text: str) -> int:
    t = time.strptime(text, "%Y-%m-%dT%H")
    import calendar

    return calendar.timegm(t) * 10**9


def _hour(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H", time.gmtime(ns // 10**9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds on the test day (default 3)")
    parser.add_argument("--hours", type=int, default=24, help="hours of the test day (default 24)")
    parser.add_argument(
        "--testday",
        choices=("direct", "import"),
        default="direct",
        help="write the test day straight into the lake (default) or import its capture",
    )
    parser.add_argument(
        "--days",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[7, 30],
        help="the cost curve's longer ranges (default 7,30)",
    )
    parser.add_argument(
        "--density",
        type=lambda s: {int(k): float(v) for k, v in (p.split("=") for p in s.split(","))},
        default={},
        help="trade density per day count, e.g. 7=0.5,30=0.1 (default 7=0.2,30=0.05)",
    )
    parser.add_argument("--budget", type=float, default=480.0, help="seconds this bench aims to take (0: none)")
    parser.add_argument("--full", action="store_true", help="the curve at full density, no budget")
    parser.add_argument("--src", help="source tree to measure (first on PYTHONPATH); default this checkout")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (lakes, logs)")
    parser.add_argument("--check", nargs=4, metavar=("LAKE", "REFERENCE_OUT", "FROM", "TO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.check:
        lake, out, lo, hi = args.check
        sys.exit(0 if check(Path(lake), Path(out), lo, hi) else 1)
    tmp = Path(tempfile.mkdtemp(prefix="mdp-materialize-bench-"))
    bench = Bench(args, tmp)
    print(
        f"cpu cores {os.cpu_count()}, python {sys.version.split()[0]}, source {bench.src or REPO}, temp dir {tmp}, "
        f"budget {args.budget:.0f} s{' (--full: none)' if args.full else ''}",
        flush=True,
    )
    try:
        bench.help_time()
        per_hour = bench.fixed_cost()
        day = bench.test_day()
        bench.curve(day, per_hour)
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"bench took {time.monotonic() - bench.began:.0f} s (budget {args.budget:.0f} s); its own peak RSS "
            f"{own:.0f} MB (the most a child's figure may include)"
        )
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for failure in bench.failures:
        print(f"FAIL: {failure}")
    sys.exit(1 if bench.failures else 0)


if __name__ == "__main__":
    main()
