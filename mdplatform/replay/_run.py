"""``mdp replay``: serve captures until interrupted, reporting in lines a script can parse."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from pathlib import Path

from ..history import RateLimit
from ._server import ReplayServer

__all__ = ["run_replay"]


def run_replay(
    paths: Sequence[str | Path],
    *,
    exchange: str | None = None,
    speed: float = 1.0,
    rebase: bool = False,
    host: str = "127.0.0.1",
    port: int = 0,
    drop_after: int | None = None,
    pause_when_idle: bool = True,
    rest_limit: RateLimit | None = None,
) -> int:
    """Run a replay server until Ctrl-C / SIGTERM; returns the number of frames sent.

    Prints ``REPLAY_PORT=``, ``REPLAY_WS_URL=``, ``REPLAY_REST_URL=``, ``REPLAY_REST_BASE=``,
    ``REPLAY_REST_LIMIT=`` (weight/seconds), ``REPLAY_EXCHANGE=`` and ``REPLAY_SHIFT_NS=`` once listening,
    ``REPLAY_FINISHED=1`` and ``REPLAY_SENT=`` when the recording is exhausted (the server keeps serving), and a
    final ``REPLAY_REST_REQUESTS=``, ``REPLAY_REST_THROTTLED=`` and (last) ``REPLAY_SENT=`` on exit. ``pause_when_idle``
    False: once the first client subscribed, the recording runs on whether anyone is connected or not
    (``ReplayServer``). ``rest_limit``: the REST budget (default: the exchange's own).
    """
    server = ReplayServer(
        paths,
        exchange=exchange,
        speed=speed,
        rebase=rebase,
        host=host,
        port=port,
        drop_after=drop_after,
        pause_when_idle=pause_when_idle,
        rest_limit=rest_limit,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(server))
    print(f"REPLAY_REST_REQUESTS={server.rest_requests}\nREPLAY_REST_THROTTLED={server.rest_throttled}", flush=True)
    print(f"REPLAY_SENT={server.sent}", flush=True)
    return server.sent


async def _serve(server: ReplayServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(f"REPLAY_EXCHANGE={server.exchange}", flush=True)
    print(f"REPLAY_PORT={server.port}", flush=True)
    print(f"REPLAY_WS_URL={server.ws_url}", flush=True)
    print(f"REPLAY_REST_URL={server.rest_url}", flush=True)
    print(f"REPLAY_REST_BASE={server.rest_base}", flush=True)
    if server.rest_limit is not None:
        print(f"REPLAY_REST_LIMIT={server.rest_limit.weight}/{server.rest_limit.per_s:g}", flush=True)
    print(f"REPLAY_SHIFT_NS={server.shift_ns}", flush=True)

    async def report_finish() -> None:
        await server.finished.wait()
        print(f"REPLAY_FINISHED=1\nREPLAY_SENT={server.sent}\nREPLAY_MISSED={server.missed}", flush=True)

    reporter = asyncio.create_task(report_finish())
    try:
        await stop.wait()
    finally:
        reporter.cancel()
        await server.close()
