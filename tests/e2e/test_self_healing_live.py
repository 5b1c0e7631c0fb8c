"""Live self-healing with no manual step: the ingestor reaches `mdp replay` (the real spot recording, rebased to the
last minutes, 30x) through a proxy that cuts the link for 1.5 s (45 s of market, lost as on a real exchange), while
the real `dagster-daemon` runs this repo's definitions with both sensors on:

- the landed-data sensor materializes the hour as the collector lands it: coverage shows the outage;
- the gap sensor requests a backfill run for it, which fetches the lost trades from the replay's REST
  `historicalTrades` (the recording's own trades) and lands them;
- the landed-data sensor sees the backfill land and materializes the hour again.

In the end every 1m candle of the replayed span is complete and has the recording's trades, the minutes of the
outage included. The replay moves exchange times to the minutes just before now, so in the first 4 minutes of an
hour the test waits until that span lies inside the current hour.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import polars as pl
import pytest
from _proxy import CuttingProxy
from candle_reference import H00, MIN, read_lines, write_lines

from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_backfill
from mdplatform.replay import ReplayServer
from mdplatform.schemas import CANDLES, COVERAGE
from mdplatform.transforms import HOUR_NS, floor_ns
from mdplatform.warehouse import partition_path, read_partition

REPO = Path(__file__).resolve().parents[2]
S = 10**9
# mostly waiting (for the clock, the daemon's ticks): `make test` runs it beside the CPU-bound suite
pytestmark = pytest.mark.waits

SPAN_S = 150  # the slice of the recording replayed: 00:00:00 .. 00:02:30 exchange time
SPEED = 30


def _wait_for_a_quiet_clock() -> None:
    """The replayed exchange times end in the minute before the current one and start SPAN_S earlier (at most 3.5
    minutes before the current minute): wait, at most 4 minutes, until they lie in the current hour. (Data of the
    previous hour received in this one waits for that hour's window to complete, MDP_LATENESS_S later.) Rolling
    into the next hour while healing is harmless: what lands then belongs to the hour it is about."""
    while time.gmtime().tm_min < 4:
        time.sleep(2)


def _daemon(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("dagster-daemon")
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(exe), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the daemon and the runs it launched stop together
        )


def _runs(home: Path) -> list[tuple[str, str]]:
    """(job name, status) of every run the instance recorded."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        return [(r.job_name, r.status.value) for r in instance.get_runs()]


@pytest.mark.timeout(600)
def test_sensors_heal_a_live_outage(tmp_path: Path, shared_data: Path) -> None:
    source = shared_data / "binance-hftbacktest/spot/btcusdt_20240809.gz"
    capture = write_lines([(r, f) for r, f in read_lines(source) if r < H00 + SPAN_S * S], tmp_path / "slice.gz")
    trade_ms = [orjson.loads(f)["data"]["T"] for _, f in read_lines(capture) if '"e":"trade"' in f]
    lake = tmp_path / "lake"
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    _wait_for_a_quiet_clock()

    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "MDP_LAKE": str(lake),
        "MDP_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "MDP_REST_URL": f"http://127.0.0.1:{port}",
        "MDP_SENSOR_INTERVAL_S": "2",
    }
    env.pop("MDP_START", None)

    async def scenario(daemon: subprocess.Popen[bytes]) -> tuple[int, int, int]:
        replay = ReplayServer([capture], speed=SPEED, rebase=True, pause_when_idle=False, verbose=False, port=port)
        async with replay as server:
            proxy = CuttingProxy(("127.0.0.1", server.port))
            proxy_port = await proxy.start()
            config = ExchangeCollectorConfig(
                exchange="binance",
                symbols=("BTCUSDT",),
                channels=("trade",),
                ws_url=f"ws://127.0.0.1:{proxy_port}",
                rest_url=server.rest_url,
                reconnect_initial_s=0.05,
                reconnect_max_s=0.5,
                liveness_interval_s=0.5,
            )
            ingestor = Ingestor(IngestConfig((config,)), lake=str(lake), status_every_s=1.0)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            frames = sum(1 for _ in read_lines(capture))
            while server.position < frames // 3:
                await asyncio.sleep(0.01)
            proxy.cut(1.5)
            await server.wait_finished(timeout=60)
            await asyncio.sleep(2.0)  # the last pongs
            stop.set()
            await task
            await proxy.stop()
            reconnects = int(ingestor.manager.get_status()["reconnects"])
            # the daemon heals while the replay still serves REST
            healed = await asyncio.to_thread(_wait_healed, lake, server.shift_ns, trade_ms, daemon, home)
            return server.missed, reconnects, healed

    daemon = _daemon(env, tmp_path / "daemon.log")
    try:
        missed, reconnects, healed_after = asyncio.run(scenario(daemon))
        assert missed > 100 and reconnects >= 1, (missed, reconnects)
        assert healed_after > 0
        runs = _runs(home)
        jobs = Counter(job for job, _ in runs)
        assert jobs["mdp_backfill"] >= 1 and jobs["mdp_hourly"] >= 2, runs
        finished = [status for _, status in runs if status in ("SUCCESS", "FAILURE", "CANCELED")]
        assert finished and set(finished) == {"SUCCESS"}, runs
        backfilled = read_backfill(str(lake), 0, 2**62)
        assert backfilled.height > 0 and set(backfilled.get_column("channel")) == {"trade"}
        fetched = sum(len(orjson.loads(p)) for p in backfilled.get_column("payload"))
        print(f"healed {healed_after} s after the ingestor stopped; {fetched} trades fetched from REST history")
        # coverage says which stretch came from REST history: the outage, inside the replayed span
        coverage = pl.concat(
            [
                df
                for h in {floor_ns(m, HOUR_NS) for m in backfilled.get_column("minute").to_list()}
                if (df := read_partition(partition_path(str(lake), "coverage", h), COVERAGE)) is not None
            ]
        )
        healed = coverage.filter(pl.col("detail").str.contains("backfilled", literal=True))
        assert healed.height >= 1 and set(healed.get_column("status")) == {"covered"}
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healed(lake: Path, shift_ns: int, trade_ms: list[int], daemon: subprocess.Popen[bytes], home: Path) -> int:
    """Seconds until every whole 1m candle of the replayed span is complete with the recording's trade count."""
    per_minute = Counter((t * 1_000_000 + shift_ns) // MIN * MIN for t in trade_ms)
    first, last = min(per_minute), max(per_minute)
    whole = [m for m in per_minute if first < m < last]  # the slice's first and last minutes are partial
    hour = floor_ns(first, HOUR_NS)
    began = time.monotonic()
    while time.monotonic() - began < 300:
        assert daemon.poll() is None, (home.parent / "daemon.log").read_text()[-3000:]
        got = read_partition(partition_path(str(lake), "candles", hour), CANDLES)
        if got is not None:
            ones = got.filter(pl.col("timeframe") == "1m").with_columns(pl.col("open_time").cast(pl.Int64).alias("t"))
            rows = {t: (c, n) for t, c, n in ones.select("t", "complete", "trade_count").iter_rows()}
            if all(rows.get(m) == (True, per_minute[m]) for m in whole):
                return int(time.monotonic() - began) + 1
        time.sleep(2)
    log = (home.parent / "daemon.log").read_text()[-3000:]
    raise AssertionError(f"not healed in 300 s; runs {_runs(home)}; candles {got}; daemon log: {log}")
