"""A TCP proxy that can cut the link, for the live tests."""

from __future__ import annotations

import asyncio
import contextlib
import time

__all__ = ["CuttingProxy"]


class CuttingProxy:
    """Forwards TCP connections to ``upstream``; ``cut(seconds)`` drops every connection and refuses new ones
    (accepts and closes them at once) for that long."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.refuse_until = 0.0
        self.cuts = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.cut(0)
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def cut(self, seconds: float) -> None:
        self.cuts += 1
        self.refuse_until = time.monotonic() + seconds
        for writer in list(self._writers):
            writer.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self.refuse_until:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers -= {writer, up_writer}
