"""Helpers for driving a ReplayServer from plain (synchronous) tests with a bare websockets client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection

T = TypeVar("T")


def run(factory: Callable[[], Coroutine[Any, Any, T]], timeout: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(factory(), timeout)

    return asyncio.run(bounded())


async def recv_n(ws: ClientConnection, n: int, timeout: float = 10.0) -> list[str]:
    out: list[str] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            message = await ws.recv()
            out.append(message if isinstance(message, str) else message.decode())
    return out


async def recv_quiet(ws: ClientConnection, quiet: float = 0.3) -> list[str]:
    """Everything that arrives until the socket stays silent for ``quiet`` seconds."""
    out: list[str] = []
    while True:
        try:
            message = await asyncio.wait_for(ws.recv(), quiet)
        except TimeoutError:
            return out
        out.append(message if isinstance(message, str) else message.decode())
