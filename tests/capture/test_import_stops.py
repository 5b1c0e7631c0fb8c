"""`mdp import-capture` writes the minutes a recording leaves behind as it goes (memory bounded by minutes, not by
the file), and stops on SIGTERM between two frames: what was read is in the lake exactly once, it exits non-zero and
says where it stopped. The capture is the real spot recording repeated 30 times, each copy 11 minutes later (receive
and exchange times shifted alike), so the import takes long enough to be interrupted."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from candle_reference import read_lines, spot_files

from mdplatform.lake import list_manifests, read_raw

S = 10**9
_TIMES = re.compile(r'"([ET])":(\d{13})')


def _long_capture(shared_data: Path, path: Path, copies: int) -> int:
    lines = read_lines(spot_files(shared_data)[0])
    span = lines[-1][0] - lines[0][0] + S
    n = 0
    with gzip.open(path, "wt", compresslevel=1) as fh:
        for k in range(copies):
            shift_ms = k * span // 1_000_000
            for r, f in lines:
                moved = _TIMES.sub(lambda m, d=shift_ms: f'"{m.group(1)}":{int(m.group(2)) + d}', f) if k else f
                fh.write(f"{r + k * span} {moved}\n")
                n += 1
    return n


@pytest.mark.timeout(240)
def test_import_writes_as_it_goes_and_stops_on_sigterm(tmp_path: Path, shared_data: Path) -> None:
    capture = tmp_path / "long.gz"
    total = _long_capture(shared_data, capture, 30)
    lake = str(tmp_path / "lake")
    mdp = Path(sys.executable).with_name("mdp")
    started = time.time_ns()
    proc = subprocess.Popen(
        [str(mdp), "import-capture", str(capture), "--exchange", "binance", "--lake", lake],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    # minutes land while the import is still reading (the landing log shows them)
    deadline = time.monotonic() + 120
    while not list_manifests(lake, started, time.time_ns() + 1) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the import ended before anything was written early"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    m = re.search(rf"stopped by SIGTERM at {re.escape(str(capture))}:(\d+)", err)
    assert m, (out, err)
    stopped_line = int(m.group(1))
    assert 1 < stopped_line < total
    rows = int(re.search(r"imported (\d+) rows", out).group(1))  # type: ignore[union-attr]
    assert "STOPPED at" in out
    # every line read before the stop is in the lake once, in order; nothing after it
    raw = read_raw(lake, 0, 2**62)
    assert raw.height == rows == stopped_line - 1
    expected = [f for _, f in read_lines(capture)[: stopped_line - 1]]
    assert raw.sort("recv_ts", maintain_order=True).get_column("payload").to_list() == expected
    assert raw.select(pl.struct("conn_id", "seq").is_unique().all()).item()
