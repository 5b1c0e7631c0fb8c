"""A frame of a recording, as the capture reader yields it and the replay adapters take it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CapturedFrame", "FrameKind"]

FrameKind = Literal["ws", "rest", "connect"]


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """One received message of a recording.

    ``kind`` is "ws" for a WebSocket frame and "rest" for a REST reply (a depth snapshot). ``symbol`` is only
    set for REST replies: the instrument the reply is about (from the request URL, the body, or the stream
    recorded in the same file), because a Binance spot snapshot body does not name it. ``line`` is the
    1-based line number in the source file. With ``read_capture(..., connects=True)`` a cryptofeed connect line
    is a "connect" marker too (``frame``: the URL; a new connection starts there).
    """

    recv_ns: int
    frame: str
    kind: FrameKind
    symbol: str = ""
    line: int = 0
