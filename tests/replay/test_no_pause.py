"""``pause_when_idle=False`` (``mdp replay --no-pause``): once the first client subscribed the recording runs on like
a live exchange, and a client that is away misses what was sent meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _replay_util import recv_n, recv_quiet, run
from click.testing import CliRunner
from websockets.asyncio.client import connect

from mdplatform.capture import read_capture
from mdplatform.replay import ReplayServer

SPOT = "binance-hftbacktest/spot/btcusdt_20240808.gz"
STREAMS = "btcusdt@trade/btcusdt@depth@100ms/btcusdt@bookTicker"
TOTAL = 41_248


async def _away_and_back(server: ReplayServer, first: int, away_s: float) -> tuple[list[str], list[str]]:
    url = f"{server.ws_url}/stream?streams={STREAMS}"
    async with connect(url, compression=None, max_queue=None) as ws:
        before = await recv_n(ws, first)
    await asyncio.sleep(away_s)
    async with connect(url, compression=None, max_queue=None) as ws:
        await server.wait_finished(30)
        after = await recv_quiet(ws, 0.3)
    return before, after


@pytest.mark.parametrize("pause", [False, True])
def test_a_client_away_misses_frames_only_without_pause(shared_data: Path, pause: bool) -> None:
    path = shared_data / SPOT
    recorded = [f.frame for f in read_capture(path) if f.kind == "ws"]
    assert len(recorded) == TOTAL

    async def scenario() -> tuple[list[str], list[str], int, int]:
        # 346 s of recording in under 2 s: 0.2 s away is about 40 s of market
        async with ReplayServer([path], speed=200, pause_when_idle=pause, verbose=False) as server:
            before, after = await _away_and_back(server, 2_000, 0.2)
            return before, after, server.sent, server.missed

    before, after, sent, missed = run(scenario)
    assert before == recorded[: len(before)]
    # the second connection gets the recording from wherever the cursor is, to the end, in order
    assert after == recorded[TOTAL - len(after) :]
    lost = TOTAL - len(before) - len(after)
    if pause:
        # the cursor waited for the next client: only frames around the closing socket are lost (a few dozen; a few
        # hundred on a loaded machine, against ~4,700 in the 0.2 s away without the pause)
        assert missed < 500
        assert lost < 1_000
    else:
        # frames passed while nobody was connected went to nobody, as on a real exchange
        assert missed > 1_000
        assert lost >= missed
        assert sent + missed == TOTAL


def test_no_pause_on_the_command_line(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mdplatform import cli
    from mdplatform.replay import _run

    seen: dict[str, object] = {}

    def fake_run_replay(paths: list[str], **kwargs: object) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(_run, "run_replay", fake_run_replay)
    monkeypatch.setattr("mdplatform.replay.run_replay", fake_run_replay)
    result = CliRunner().invoke(cli.cli, ["replay", "--capture", str(shared_data / SPOT), "--no-pause"])
    assert result.exit_code == 0, result.output
    assert seen["pause_when_idle"] is False
    CliRunner().invoke(cli.cli, ["replay", "--capture", str(shared_data / SPOT)])
    assert seen["pause_when_idle"] is True
