"""Types of the compiled receive path (``_batcher.pyx``)."""

from asyncio import AbstractEventLoop
from typing import Any

from picows import WSListener

PICOWS_VERSION: str
HANDOVER_ROWS: int
HANDOVER_BYTES: int
HANDOVER_NS: int

class Batch:
    rows: int
    data: memoryview
    offsets: memoryview
    routes: memoryview
    recv: memoryview
    min_recv: int
    max_recv: int
    last_recv: int
    def last_text(self) -> str: ...

class Batcher(WSListener):
    link: Any
    plain: bool
    started: bool
    binary_text: bool
    reused: int
    allocated: int
    def __init__(self, link: Any, loop: AbstractEventLoop, prefix: bytes | None, quotes: int) -> None: ...
    @property
    def pending(self) -> int: ...
    def hand_over(self) -> None: ...
