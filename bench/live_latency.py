"""Live latency: how long after a 1m candle closes is it queryable in DuckDB?

Runs the real thing for a few minutes on loopback: `mdp replay --speed 1 --rebase` (the bundled BTCUSDT capture,
shifted so it plays as if live), `mdp ingest` into a fresh lake, and `dagster dev` whose sensor turns closed raw
minutes into runs. It polls DuckDB and prints, for every 1m candle, the delay between its close time and the
moment it was first seen.

    .venv/bin/python bench/live_latency.py [--minutes 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
CAPTURES = sorted((REPO / "demo/data/binance-spot").glob("btcusdt_*.gz"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def newest_candles(warehouse: Path) -> list[int] | None:
    """Close times (ns) of the 1m candles, or None while a run holds the file."""
    if not warehouse.exists():
        return []
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return None
    try:
        rows = con.sql("select epoch_ns(close_time) from candles where timeframe = '1m'").fetchall()
    except duckdb.Error:
        return []
    finally:
        con.close()
    return [int(r[0]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mdp-live-"))
    lake, home = work / "lake", work / "dagster"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "MDP_LAKE": str(lake), "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1"}
    port, ui_port = free_port(), free_port()
    mdp = [sys.executable, "-m", "mdplatform"]
    procs: list[subprocess.Popen[bytes]] = []

    def start(cmd: list[str], log: str) -> None:
        with open(work / log, "wb") as out:
            # own session: `dagster dev` ignores SIGTERM otherwise, and its children must go with it
            procs.append(subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True))  # fmt: skip

    (work / "ingest.yaml").write_text(
        "collectors:\n  - exchange: binance\n    symbols: [BTCUSDT]\n    channels: [trade, depth, bookTicker]\n"
        f"    ws_url: ws://127.0.0.1:{port}\n    rest_url: http://127.0.0.1:{port}/api/v3/depth\n"
    )
    try:
        start([sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(ui_port)], "dagster.log")
        start([*mdp, "replay", "--capture", *map(str, CAPTURES), "--speed", "1", "--rebase", "--port", str(port)],
              "replay.log")  # fmt: skip
        time.sleep(3)
        start([*mdp, "ingest", "--config", str(work / "ingest.yaml")], "ingest.log")
        seen: dict[int, float] = {}
        deadline = time.time() + args.minutes * 60
        while time.time() < deadline:
            closes = newest_candles(lake / "warehouse.duckdb")
            now = time.time()
            for close in closes or []:
                seen.setdefault(close, now)
            time.sleep(2)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    # candles of the replay's first minutes were already closed when the first run saw them: only candles that
    # closed while we were watching say anything about latency
    start_watch = min(seen.values(), default=0.0)
    delays = sorted(t - close / 1e9 for close, t in seen.items() if close / 1e9 > start_watch)
    print(f"work dir: {work}")
    print(f"1m candles seen: {len(seen)}; closed while watched: {len(delays)}")
    if delays:
        print(
            f"close -> queryable in DuckDB: min {delays[0]:.1f}s  median {statistics.median(delays):.1f}s  "
            f"max {delays[-1]:.1f}s  (polled every 2 s)"
        )


if __name__ == "__main__":
    main()
