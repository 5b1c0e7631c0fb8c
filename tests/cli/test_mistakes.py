"""Every user mistake gives one line on stderr, no traceback, and a non-zero exit: `mdp` run as a user runs it (a
subprocess), one row of the table per mistake, with the fragment its line must hold and its exit code (2: click's
usage errors, 1: the rest). The captures are the real Binance spot recordings in demo/data (and a cryptofeed sample
of an exchange we do not support); the damaged ones are cut from them here."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mdplatform.capture import import_capture
from mdplatform.lake import read_raw
from mdplatform.warehouse import partition_exists

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "data" / "binance-spot"
MDP = str(Path(sys.executable).with_name("mdp"))
H23 = 1723158000 * 10**9  # 2024-08-08 23:00 UTC


@dataclass(frozen=True)
class Mistake:
    id: str
    #: the arguments; "{tmp}" stands for the test's folder, "{demo}" for demo/data/binance-spot, "{data}" for the
    #: shared recordings, "{repo}" for the repository
    argv: tuple[str, ...]
    fragment: str
    code: int
    env: dict[str, str] = field(default_factory=dict)


MISTAKES = [
    Mistake(
        "from-a-word",
        ("materialize", "--from", "yesterday"),
        "Invalid value for --from: not an ISO date or time: 'yesterday'; for example 2024-08-08",
        2,
    ),
    Mistake("from-month-13", ("materialize", "--from", "2024-13-45"), "'2024-13-45' (month must be in 1..12)", 2),
    Mistake(
        "backfill-hour-99",
        ("backfill", "--from", "2024-08-08T99", "--to", "2024-08-09"),
        "Invalid value for --from: not an ISO date or time: '2024-08-08T99' (hour must be in 0..23)",
        2,
    ),
    Mistake(
        "from-after-to",
        ("materialize", "--from", "2024-08-09", "--to", "2024-08-08"),
        "--from 2024-08-09 is not before --to 2024-08-08: the range is empty",
        2,
    ),
    Mistake(
        "outside-the-partitions",
        ("materialize", "--from", "2024-08-01", "--to", "2024-08-02"),
        "no hour of that range is a partition: partitions run from 2024-08-08 00:00 UTC (MDP_START",
        2,
        {"MDP_START": "2024-08-08"},
    ),
    Mistake(
        "plot-bad-date",
        (
            "plot",
            "candles",
            "--exchange",
            "binance",
            "--symbol",
            "BTCUSDT",
            "-o",
            "{tmp}/c.png",
            "--to",
            "2024-08-09",
            "--from",
            "2024-08-08T25:00",
        ),
        "Invalid value for --from: not an ISO date or time: '2024-08-08T25:00' (hour must be in 0..23)",
        2,
    ),
    Mistake(
        "import-not-a-capture",
        ("import-capture", "{repo}/README.md"),
        "{repo}/README.md: unrecognized capture format: known are hftbacktest ('<receive ns> <json>' lines",
        1,
    ),
    Mistake(
        "replay-not-a-capture",
        ("replay", "--capture", "{repo}/README.md"),
        "{repo}/README.md: unrecognized capture format: known are hftbacktest",
        1,
    ),
    Mistake(
        "import-empty-file",
        ("import-capture", "{tmp}/empty.gz"),
        "{tmp}/empty.gz: empty capture",
        1,
    ),
    Mistake(
        "lake-is-a-file",
        ("import-capture", "{demo}/btcusdt_20240808.gz"),
        "Not a directory: {tmp}/a-file/",
        1,
        {"MDP_LAKE": "{tmp}/a-file"},
    ),
    Mistake(
        "materialize-lake-is-a-file",
        ("materialize", "--from", "2024-08-08", "--to", "2024-08-09"),
        "Invalid value for --lake or MDP_LAKE: {tmp}/a-file is a file, not a lake folder",
        2,
        {"MDP_LAKE": "{tmp}/a-file", "MDP_START": "2024-08-08"},
    ),
    Mistake(
        "exchange-mismatch",
        ("import-capture", "{demo}/btcusdt_20240808.gz", "--exchange", "okx"),
        "{demo}/btcusdt_20240808.gz is a binance capture (by its content), not okx",
        1,
    ),
    Mistake(
        "futures-as-spot",
        ("import-capture", "{data}/binance-hftbacktest/usdm/btcusdt_20240808.gz", "--exchange", "binance"),
        "usdm/btcusdt_20240808.gz is a binance-usdm capture (by its content), not binance",
        1,
    ),
    Mistake(
        "unknown-exchange",
        ("import-capture", "{demo}/btcusdt_20240808.gz", "--exchange", "deribit"),
        "Invalid value for --exchange: unknown exchange 'deribit'",
        2,
    ),
    Mistake(
        "unsupported-venue",
        ("import-capture", "{data}/cryptofeed-samples/KRAKEN.ws.48.0.gz", "--exchange", "okx"),
        "KRAKEN.ws.48.0.gz: recorded from wss://ws.kraken.com, not a supported exchange",
        1,
    ),
    Mistake(
        "truncated-gzip",
        ("import-capture", "{tmp}/btcusdt_cut.gz"),
        "{tmp}/btcusdt_cut.gz is truncated (its gzip data ends early) after line",
        1,
    ),
    Mistake(
        "corrupt-gzip",
        ("import-capture", "{tmp}/corrupt.gz"),
        "{tmp}/corrupt.gz is corrupt (",
        1,
    ),
    Mistake("no-such-command", ("materialise",), "No such command 'materialise'", 2),
    Mistake(
        "ingest-unparsable-pg-dsn",
        ("ingest", "--config", "{tmp}/bad-pg.yaml", "--duration", "1"),
        "pg_dsn: the PostgreSQL DSN cannot be parsed (its text is not shown: it may hold a password)",
        1,
    ),
    Mistake(
        "ingest-status-http-typo",
        ("ingest", "--config", "{tmp}/ok.yaml", "--duration", "1"),
        "$MDP_STATUS_HTTP: must be HOST:PORT, PORT or off, not 'nine'",
        1,
        env={"MDP_STATUS_HTTP": "nine"},
    ),
]

#: a collector config whose exchange endpoint is a closed loopback port (nothing is reached)
CONFIG = """collectors:
  - exchange: binance
    symbols: [BTCUSDT]
    channels: [trade]
    ws_url: ws://127.0.0.1:9
status_http: {http}
"""


def _fill(text: str, tmp: Path, data: Path) -> str:
    return text.format(tmp=tmp, demo=DEMO, data=data, repo=REPO)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    return lines[0]


def _cut(src: Path, dst: Path, keep: int) -> None:
    """The first ``keep`` bytes of a gzip file: a recording cut short."""
    dst.write_bytes(src.read_bytes()[:keep])


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.id for m in MISTAKES])
def test_a_mistake_gives_one_line_and_a_non_zero_exit(mistake: Mistake, tmp_path: Path, shared_data: Path) -> None:
    (tmp_path / "a-file").write_text("not a lake\n")
    (tmp_path / "empty.gz").write_bytes(gzip.compress(b"\n\n"))
    (tmp_path / "corrupt.gz").write_bytes(b"\x1f\x8b" + bytes(range(256)) * 8)
    _cut(DEMO / "btcusdt_20240809.gz", tmp_path / "btcusdt_cut.gz", 600_000)
    (tmp_path / "ok.yaml").write_text(CONFIG.format(http="null"))
    (tmp_path / "bad-pg.yaml").write_text(CONFIG.format(http="'off'") + 'pg_dsn: "this is not a dsn"\n')
    env = {**os.environ, "MDP_LAKE": str(tmp_path / "lake"), "DAGSTER_HOME": str(tmp_path / "dagster")}
    env.update({k: _fill(v, tmp_path, shared_data) for k, v in mistake.env.items()})
    argv = [_fill(a, tmp_path, shared_data) for a in mistake.argv]
    proc = subprocess.run([MDP, *argv], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    line = _one_line(proc.stderr)
    assert line.startswith("Error: ") and _fill(mistake.fragment, tmp_path, shared_data) in line, line
    assert proc.returncode == mistake.code, (proc.returncode, line)
    if mistake.id in ("exchange-mismatch", "futures-as-spot", "unsupported-venue", "lake-is-a-file"):
        assert not (tmp_path / "lake").exists()  # refused before anything landed


def test_a_truncated_capture_lands_its_whole_lines_and_says_so(tmp_path: Path) -> None:
    """The lines before the damage land (a recording cut short is what a killed recorder leaves), exactly those,
    and the one line says how many; the exit is non-zero."""
    capture = tmp_path / "btcusdt_cut.gz"
    _cut(DEMO / "btcusdt_20240809.gz", capture, 600_000)
    whole = gzip.decompress((DEMO / "btcusdt_20240809.gz").read_bytes()).split(b"\n")
    with gzip.open(capture, "rb") as fh, pytest.raises(EOFError):
        fh.read()
    lake = tmp_path / "lake"
    proc = subprocess.run([MDP, "import-capture", str(capture), "--lake", str(lake)], capture_output=True, text=True)
    line = _one_line(proc.stderr)
    m = re.search(r"after line (\d+): the lines before it are landed \((\d+) rows in all\), nothing after it$", line)
    assert m and proc.returncode == 1, line
    lines, rows = int(m.group(1)), int(m.group(2))
    assert 10_000 < lines == rows < len(whole) - 1  # every line of it is a frame (no blank, no bad line)
    raw = read_raw(str(lake), 0, 2**62).sort("conn_id", "seq")
    assert raw.height == rows
    assert raw.get_column("payload").to_list() == [w.split(b" ", 1)[1].decode() for w in whole[:lines]]


def _orphan_watchers(parent: int) -> list[int]:
    """Dagster's orphan watchers of ``parent`` (``watch_orphans.py <parent pid> <tail pid>``)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"watch_orphans.py") for a in argv) and str(parent).encode() in argv:
            found.append(int(pid))
    return found


@pytest.mark.timeout(480)
def test_ctrl_c_mid_hour_stops_with_one_line(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole foreground process group, Dagster's compute-log tails and their orphan watchers
    included: sent so, while a step runs, `mdp materialize` says in one line that it stopped and what it finished,
    and none of them prints a traceback."""
    lake = str(tmp_path / "lake")
    import_capture(sorted(DEMO.glob("btcusdt_*.gz")), "binance", lake)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "MDP_START": "2024-08-08",
        "MDP_BOOKS": "0",
        "MDP_PICTURES": "0",
    }
    args = [
        MDP,
        "materialize",
        "--lake",
        lake,
        "--from",
        "2024-08-08T23:00",
        "--to",
        "2024-08-10T23:00",
        "--no-progress",
    ]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 200
        while not (_orphan_watchers(proc.pid) and partition_exists(lake, "trades", H23)):
            assert time.monotonic() < deadline and proc.poll() is None, "no step with its log tails ran"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # as the terminal sends it
        out, err = proc.communicate(timeout=240)  # a loaded machine; it takes seconds
    finally:
        if proc.poll() is None:
            proc.kill()
    line = _one_line(err)
    m = re.fullmatch(
        r"Error: stopped by SIGINT after (\d+) of 48 hour\(s\); not run: (\S+ \S+) \.\. 2024-08-10 23:00 UTC; "
        r"finished whole: 2024-08-08 23:00 \.\. (\S+ \S+) UTC",
        line,
    )
    assert m and proc.returncode == 1, (proc.returncode, line)
    done = int(m.group(1))
    assert 1 <= done < 48 and m.group(2) == m.group(3)
    assert f"materialized {done} hour(s)" in out
