"""The README's "Using it" commands as typed, each in a new login shell with nothing in its environment but PATH
(the system's, no venv) and HOME, at the root of a directory holding the demo's `.demo/` (`make demo`'s output).

The README's convention: every ```` ```sh ```` block under "## Using it" runs, one command a line (a line that
starts with a blank or `#` only comments the line before); its first block is the activation, typed before each
command; a block right after the line `<!-- readme-test: skip -->` is left out (commands that run until Ctrl-C or
need an exchange or PostgreSQL). Each command must exit 0 and print what `EXPECTED` says (a PNG for `-o FILE`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIP = "<!-- readme-test: skip -->"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: what each command must print, by the command's start (every command the test runs needs one: a new README command
#: fails here until it says what proves it worked); the demo lake holds 19,904 BTC-USDT and 14,515 ETH-USDT trades,
#: 179,316 frames and 2 REST snapshots, the book samples' count moves a little with the minute the replay shifts to
EXPECTED = {
    "mdp --version": r"\d+\.\d+",
    "mdp exchanges": r"(?m)^binance  .*✅(.*\n)*^okx  .*ws-snapshot",
    "mdp materialize": (
        r"materialized \d hour\(s\)(.*\n)*binance/BTC-USDT +19904 +19904 +10/11"
        r"(.*\n)*quality checks: [1-9]\d* passed, 0 failed"
    ),
    'mdp sql "select * from candles': r"BTC-USDT(.*\n)+\(20 rows\)",
    'mdp sql "select * from trade_counts" --format csv': r'"binance","BTC-USDT",19904,19904,',
    "mdp plot candles": r"11 1m candles \(1 incomplete\)",
    "mdp plot trade-heatmap": r"1[12] minutes, \d+ buckets",
    "mdp plot heatmap --exchange binance": r"binance BTC-USDT, \d+ 1s steps, \d+ book samples, 19904 trades",
    "mdp plot heatmap --exchange '*'": r"\* BTC-USD\*, \d+ 1s steps, \d+ book samples, 19904 trades",
    "mdp sql --rebuild-warehouse": r"book_snapshots +[1-9][\d,]* rows(.*\n)*trades +34,419 rows",
    "mdp lake stats": r"raw +binance +\d+ +179,318 ",
    "mdp lake compact": r"compacted \d+ span",
    "mdp import-capture": r"imported 179318 rows from 4 file",
}


def readme_blocks() -> tuple[list[str], list[list[str]], list[list[str]]]:
    """The activation block's commands, then the blocks run and the blocks skipped, each a list of commands."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Using it\n", 1)[1].split("\n## ", 1)[0]
    run: list[list[str]] = []
    skipped: list[list[str]] = []
    for match in re.finditer(r"(?m)^(?P<before>[^\n]*)\n```sh\n(?P<body>.*?)^```$", section, re.S):
        commands = [line for line in match["body"].splitlines() if line.strip() and line[0] not in " #"]
        (skipped if match["before"].strip() == SKIP else run).append(commands)
    return run[0], run[1:], skipped


def expected(command: str) -> str:
    starts = [start for start in EXPECTED if command.startswith(start)]
    assert starts, f"no EXPECTED output for the README command {command!r}: add what proves it worked"
    return EXPECTED[max(starts, key=len)]


def test_readme_convention_is_followed() -> None:
    activation, run, skipped = readme_blocks()
    assert len(activation) == 1 and activation[0].startswith("source .demo/env.sh ")
    commands = [c for block in run for c in block]
    assert len(commands) >= 10
    for command in commands:
        expected(command)
    # only what cannot run here is left out: collectors and the status of a running one, REST healing, a replay
    # server, PostgreSQL, the UI
    left_out = [c.split("#")[0].split()[:2] for block in skipped for c in block]
    assert {tuple(c) for c in left_out} <= {
        ("mdp", "ingest"),
        ("mdp", "status"),
        ("mdp", "backfill"),
        ("mdp", "replay"),
        ("mdp", "db"),
        ("make", "dagster"),
    }


@pytest.mark.timeout(900)
def test_readme_commands_run_as_typed(demo_dir: Path) -> None:
    activation, run, _ = readme_blocks()
    cwd = demo_dir.parent  # holds .demo/, as the repository does after `make demo`
    if not (cwd / "demo").exists():
        (cwd / "demo").symlink_to(REPO / "demo")  # the bundled captures the README names
    env = {"PATH": SYSTEM_PATH, "HOME": os.environ.get("HOME", "/root")}
    which = subprocess.run(
        ["bash", "-lc", "\n".join([*activation, "command -v mdp; echo $MDP_LAKE $FROM $TO"])],
        env=env, cwd=cwd, capture_output=True, text=True,
    )  # fmt: skip
    mdp, lake_and_hours = which.stdout.splitlines()
    assert Path(mdp) == Path(sys.executable).parent / "mdp"  # the venv's, which the system PATH does not hold
    lake, start, end = lake_and_hours.split()
    assert Path(lake) == demo_dir / "lake" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d", start) and start < end

    for command in (c for block in run for c in block):
        done = subprocess.run(
            ["bash", "-lc", "\n".join([*activation, command])], env=env, cwd=cwd, capture_output=True, text=True
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{command}\n-> exit {done.returncode}\n{output[-3000:]}"
        assert re.search(expected(command), output), f"{command}\n-> unexpected output:\n{output[-3000:]}"
        picture = re.search(r" -o (\S+)", command)
        if picture:
            png = (cwd / picture[1]).read_bytes()
            assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000, command
