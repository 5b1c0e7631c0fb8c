"""An ingestor running on a thread of its own (its event loop there), optionally collecting from a replay server on
the same loop, so a test can ask it over HTTP and run `mdp status` the way an operator would: from outside."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.ingest import Ingestor, IngestResult
from mdplatform.replay import ReplayServer

SPOT = "binance-hftbacktest/spot/btcusdt_20240808.gz"


def head(capture: Path, folder: Path, lines: int) -> Path:
    """The first ``lines`` lines of a recording (its first minutes of the BTCUSDT spot streams)."""
    target = folder / capture.name
    with gzip.open(capture, "rt") as src, gzip.open(target, "wt") as dst:
        dst.writelines(itertools.islice(src, lines))
    return target


def dead_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in time: {what}")
        time.sleep(0.05)


@dataclass
class Live:
    ingestor: Ingestor | None = None
    server: ReplayServer | None = None
    result: IngestResult | None = None
    error: BaseException | None = None
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)

    @property
    def url(self) -> str:
        assert self.ingestor is not None and self.ingestor.http is not None
        return self.ingestor.http.url


@contextmanager
def live_ingestor(
    lake: str,
    collector: Callable[[ReplayServer | None], ExchangeCollectorConfig],
    *,
    capture: Path | None = None,
    drop_after: int | None = None,
    **config: Any,
) -> Iterator[Live]:
    """An ingestor of ``collector(server)`` (``server``: a replay of ``capture`` at full speed, None without one)
    with ``IngestConfig`` fields ``config``, serving ``/health`` and ``/metrics`` on a free loopback port; stopped
    (everything landed) when the block ends."""
    live = Live()
    stop = asyncio.Event()

    async def ingest(server: ReplayServer | None) -> None:
        ingest_config = IngestConfig((collector(server),), status_http="127.0.0.1:0", **config)
        live.ingestor = Ingestor(ingest_config, lake=lake, status_every_s=0.2)
        live.result = await live.ingestor.run(stop=stop)

    async def main() -> None:
        if capture is None:
            await ingest(None)
            return
        async with ReplayServer([capture], speed=0, drop_after=drop_after) as server:
            live.server = server
            await ingest(server)

    def run() -> None:
        try:
            live.loop.run_until_complete(main())
        except BaseException as exc:  # handed to the test
            live.error = exc

    thread = threading.Thread(target=run, name="live-ingestor")
    thread.start()
    try:

        def serving() -> bool:
            return live.error is not None or (live.ingestor is not None and live.ingestor.http is not None)

        wait_for(serving, 30, "the ingestor serves /health")
        if live.error is not None:
            raise live.error
        yield live
    finally:
        live.loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        live.loop.close()
    if live.error is not None:
        raise live.error
