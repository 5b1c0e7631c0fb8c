"""`mdp materialize` stops on SIGTERM and SIGINT between hours: each hour it ran is written whole, it exits
non-zero and says how far it got and what it did not run."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from candle_reference import spot_files

from mdplatform.capture import import_capture
from mdplatform.warehouse import partition_exists

REPO = Path(__file__).resolve().parents[2]
H23 = 1723158000 * 10**9  # 2024-08-08 23:00 UTC
HOUR = 3600 * 10**9


@pytest.mark.timeout(240)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_materialize_stops_between_hours(tmp_path: Path, shared_data: Path, sig: signal.Signals) -> None:
    lake = str(tmp_path / "lake")
    import_capture(spot_files(shared_data), "binance", lake)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1", "MDP_START": "2024-08-08"}
    # hours one after the other (the default on two cores), and side by side (more cores): both stop between hours
    env["MDP_HOUR_WORKERS"] = "1" if sig == signal.SIGTERM else "2"
    mdp = Path(sys.executable).with_name("mdp")
    # 48 hours: far more than run before the signal
    args = [str(mdp), "materialize", "--lake", lake, "--from", "2024-08-08T23:00", "--to", "2024-08-10T23:00"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait until the first step (trades and coverage) has written two hours of the run, then signal: the 46 hours
    # after the recording are quick, but not as quick as this poll
    deadline = time.monotonic() + 120
    while not partition_exists(lake, "trades", H23 + HOUR) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    m = re.search(rf"stopped by {sig.name} after (\d+) of 48 hour\(s\); not run: (\S+ \S+) \.\.", err)
    assert m, (out, err)
    done = int(m.group(1))
    assert 2 <= done < 48
    # every hour it ran is whole (trades, coverage, candles); none after
    for i in range(48):
        written = [partition_exists(lake, t, H23 + i * HOUR) for t in ("trades", "coverage", "candles")]
        assert written == [i < done] * 3, (i, written)
    assert f"materialized {done} hour(s)" in out
