"""A Binance combined-stream endpoint that sends the bundled recording's trade frames, each exactly once, at a
steady rate to whichever client is connected, and records when it sent each: the ground truth the storage and
crash tests compare the lake with. It runs on its own thread and event loop, so it keeps its pace whatever the
ingestor (in this process or another) is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import threading
import time
from pathlib import Path

import polars as pl
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from mdplatform.lake import read_raw

__all__ = ["TradeFeed", "lake_payloads", "trade_frames"]

#: the spot recordings, BTCUSDT then ETHUSDT, each in the order received: 44,000 trade frames or so
SPOT = [f"binance-hftbacktest/spot/{s}_2024080{d}.gz" for s in ("btcusdt", "ethusdt") for d in (8, 9)]


def trade_frames(shared_data: Path, n: int) -> list[str]:
    """The first ``n`` trade frames of the spot recordings (distinct: every trade has its own id)."""
    out: list[str] = []
    for name in SPOT:
        with gzip.open(shared_data / name, "rt") as fh:
            for line in fh:
                frame = line.split(" ", 1)[1].rstrip("\n")
                if frame.startswith(('{"stream":"btcusdt@trade"', '{"stream":"ethusdt@trade"')):
                    out.append(frame)
                    if len(out) == n:
                        return out
    raise AssertionError(f"the recordings have only {len(out)} trade frames")


def lake_payloads(lake: str) -> list[str]:
    """Every raw frame in the lake (trades only: the feed sends nothing else)."""
    df = read_raw(lake, 0, time.time_ns() + 3600 * 10**9)
    return df.filter(pl.col("channel") == "trade")["payload"].to_list() if df.height else []


class TradeFeed:
    def __init__(self, frames: list[str], rate: float) -> None:
        self.frames = frames
        self.rate = rate
        #: (wall-clock ns when ``send`` returned, frame), in order
        self.sent: list[tuple[int, str]] = []
        self.connections = 0
        #: wall-clock ns when each connection was accepted
        self.connected_ns: list[int] = []
        self._next = 0
        self._paused = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self.port = 0

    def start(self) -> int:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self.port

    async def _start(self) -> None:
        self._stop = asyncio.Event()
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close() -> None:
            assert self._stop is not None
            self._stop.set()
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def done(self) -> bool:
        return self._next >= len(self.frames)

    def wait_sent(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.sent) < n:
            assert time.monotonic() < deadline, f"the feed sent {len(self.sent)} of {n} frames in {timeout}s"
            time.sleep(0.05)

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.connected_ns.append(time.time_ns())
        assert self._stop is not None
        step = 0.01
        per_step = max(1, round(self.rate * step))
        due = time.monotonic()
        with contextlib.suppress(ConnectionClosed):
            while not self._stop.is_set():
                if self._paused.is_set() or self.done():
                    await asyncio.sleep(step)
                    due = time.monotonic()
                    continue
                for _ in range(per_step):
                    if self.done():
                        break
                    frame = self.frames[self._next]
                    await ws.send(frame)
                    self._next += 1
                    self.sent.append((time.time_ns(), frame))
                due += step
                await asyncio.sleep(max(0.0, due - time.monotonic()))
