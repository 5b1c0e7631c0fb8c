"""The WebSocket client under a connection: picows, whose frames are parsed in C and handed over one callback each.

picows is a frame-level library: it reassembles nothing, answers pings (auto-pong) but not close frames, and checks
no UTF-8. ``WsLink`` adds what the collector relies on and the ``websockets`` library used to do: the close
handshake both ways (a server's close is answered with its own code; a close of ours waits ``CLOSE_TIMEOUT_S`` for
the answer), fragmented messages reassembled, WebSocket pings whose pongs are awaited (``ping``), the frame size
limit, credentials of the URL sent as HTTP basic auth, TLS verified against the system's certificates.

A subclass receives data frames in ``on_ws_frame``: complete data frames of ``CONTROL_MAX < size <=
MAX_FRAME_BYTES`` while ``plain`` are read straight from the frame (the hot path: no message type looked up, which
costs picows more than the payload); anything else goes through ``message``, which returns the data to land (text,
or bytes that are not UTF-8) or None.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from picows import WSCloseCode, WSError, WSFrame, WSListener, WSMsgType, WSProtocolError, WSTransport, ws_connect

__all__ = [
    "CLOSE_TIMEOUT_S",
    "CONTROL_MAX",
    "MAX_FRAME_BYTES",
    "NO_CLOSE_FRAME",
    "OPEN_TIMEOUT_S",
    "WsClosed",
    "WsError",
    "WsLink",
    "describe",
    "open_link",
]

#: the largest frame (or reassembled message) accepted; a larger one closes the connection with 1009 (a runaway or
#: hostile server must not exhaust memory), and it is lost
MAX_FRAME_BYTES = 2**24
#: picows' own limit, past which it drops the connection in its parser: beyond ours, so that a frame over ours is
#: refused by ``WsLink`` (picows refuses a frame while parsing ahead and would lose the one before it). Memory stays
#: bounded by it.
_PARSER_MAX_BYTES = 2 * MAX_FRAME_BYTES
#: control frames (ping, pong, close) carry at most 125 bytes: a complete frame larger than that is data
CONTROL_MAX = 125
OPEN_TIMEOUT_S = 10.0
#: how long a close of ours waits for the server's answer before the TCP connection is dropped
CLOSE_TIMEOUT_S = 2.0
#: why a connection ended that the server dropped without a close frame (the wording the events table has always
#: had, from the ``websockets`` library)
NO_CLOSE_FRAME = "ConnectionClosedError: no close frame received or sent"
#: the errors of opening a connection that are the network's or the server's (refused, reset, rejected handshake)
WsError = WSError

#: picows' log: at DEBUG it writes the handshake, at INFO a line per connection and disconnection (the collector
#: logs its own); kept at WARNING whatever the root level
_LOG = logging.getLogger("mdplatform.collector.picows")
_LOG.setLevel(logging.WARNING)

_TEXT, _BINARY, _CONTINUATION = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION
_PONG, _CLOSE = WSMsgType.PONG, WSMsgType.CLOSE


class WsClosed(Exception):
    """The connection ended without the close handshake we or the server began: dropped, or refused by us (an
    oversize frame, a protocol violation). The message says why in words."""


def describe(exc: BaseException) -> str:
    """Why a connection failed, in words."""
    if isinstance(exc, WsClosed):
        return str(exc)
    if isinstance(exc, WSProtocolError):
        code = int(getattr(exc.code, "value", exc.code))
        return f"protocol error ({exc.args[1] if len(exc.args) > 1 else exc}): closed with {code}"
    return f"{type(exc).__name__}: {exc}"


class WsLink(WSListener):
    def __init__(self) -> None:
        super().__init__()
        self.transport: WSTransport | None = None
        #: False while a fragmented message is assembled or after a close began: every frame takes ``message``
        self.plain = True
        #: binary messages are returned as bytes even when they are UTF-8 (an exchange that decodes them itself)
        self.binary_as_bytes = False
        self._pieces: list[bytes] | None = None
        self._piece_type = _TEXT
        self._pieces_size = 0
        self._closing = False
        #: data frames are no longer landed (a close that drops the rest, or the server's close)
        self._deaf = False
        #: why we dropped the connection (a refused frame), raised by ``wait_closed``
        self._refused: str | None = None
        self._pings: dict[bytes, asyncio.Future[None]] = {}
        self._ping_count = 0
        self._dropper: asyncio.TimerHandle | None = None
        self._gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # --- picows callbacks ---------------------------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._dropper is not None:
            self._dropper.cancel()
        for pong in self._pings.values():
            if not pong.done():
                pong.set_exception(WsClosed("the connection ended before the pong"))
                pong.exception()  # retrieved: a ping nobody awaits any more is not an error
        self._pings.clear()
        if not self._gone.done():
            self._gone.set_result(None)

    # --- frames -------------------------------------------------------------------------------------------------

    def message(self, frame: WSFrame) -> str | bytes | None:
        """A frame off the hot path: the data it completes (text; bytes when not UTF-8), or None (a control frame,
        a fragment, a frame after a close that drops the rest, a frame refused)."""
        kind = frame.msg_type
        if kind is _PONG:
            pong = self._pings.pop(frame.get_payload_as_bytes(), None)
            if pong is not None and not pong.done():
                pong.set_result(None)
            return None
        if kind is _CLOSE:
            self._answer_close()
            return None
        if self._deaf or (kind is not _TEXT and kind is not _BINARY and kind is not _CONTINUATION):
            return None
        size = frame.payload_size + self._pieces_size
        if size > MAX_FRAME_BYTES:
            limit = f"{MAX_FRAME_BYTES / 2**20:g} MiB"
            reason = f"frame of {size} bytes over the limit of {MAX_FRAME_BYTES}"
            self._refuse(f"a frame over the {limit} size limit was refused ({reason})", WSCloseCode.MESSAGE_TOO_BIG)
            return None
        if kind is _CONTINUATION:
            if self._pieces is None:
                self._refuse("a continuation frame without a message to continue", WSCloseCode.PROTOCOL_ERROR)
                return None
            self._pieces.append(frame.get_payload_as_bytes())
            self._pieces_size = size
            if not frame.fin:
                return None
            data, kind = b"".join(self._pieces), self._piece_type
            self._pieces, self._pieces_size = None, 0
            self.plain = True
        elif self._pieces is not None:
            self._refuse("a new message inside a fragmented one", WSCloseCode.PROTOCOL_ERROR)
            return None
        elif not frame.fin:
            self._pieces, self._piece_type, self._pieces_size = [frame.get_payload_as_bytes()], kind, size
            self.plain = False
            return None
        else:
            data = frame.get_payload_as_bytes()
        if kind is _BINARY and self.binary_as_bytes:
            return data
        try:
            return data.decode()
        except UnicodeDecodeError:
            return data

    def listener(self) -> WSListener:
        """What picows hands the connection's frames to: the link itself (a subclass may put a compiled listener in
        front of it, which calls the link's callbacks for what it does not handle)."""
        return self

    # --- sending ------------------------------------------------------------------------------------------------

    def send_text(self, message: str) -> None:
        assert self.transport is not None
        self.transport.send(_TEXT, message.encode())

    def ping(self) -> asyncio.Future[None]:
        """Send a WebSocket ping; the future is done when its pong arrives (every frame the server sent before
        answering has arrived by then: TCP keeps order), and fails if the connection ends first."""
        assert self.transport is not None
        self._ping_count += 1
        payload = str(self._ping_count).encode()
        pong = self._pings[payload] = asyncio.get_running_loop().create_future()
        self.transport.send_ping(payload)
        return pong

    def close(self, code: int = 1000, reason: str = "", *, drop_rest: bool = False) -> None:
        """Begin the close handshake; the connection is dropped when the server answers, or after
        ``CLOSE_TIMEOUT_S``. Frames arriving meanwhile are still received, unless ``drop_rest``."""
        self._deaf = self._deaf or drop_rest
        if self._closing or self.transport is None or self._gone.done():
            return
        self._closing, self.plain = True, False
        self.transport.send_close(WSCloseCode(code), reason.encode())
        self._dropper = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, self.transport.disconnect)

    def _answer_close(self) -> None:
        """The server's close frame: answered with its code unless we began, then the connection is dropped."""
        transport = self.transport
        assert transport is not None
        self._deaf = True
        if not self._closing:
            self._closing, self.plain = True, False
            handshake = transport.close_handshake
            received = handshake.recv if handshake is not None else None
            code = received.code if received is not None else WSCloseCode.NO_INFO
            # picows would put a code 0 on the wire for "no code": a close without one is answered with 1000
            transport.send_close(WSCloseCode.OK if code == WSCloseCode.NO_INFO else code)
        transport.disconnect()

    def _refuse(self, why: str, code: WSCloseCode) -> None:
        self._refused = f"{why}: closed with {code.value}"
        self.close(code.value, why[:120], drop_rest=True)

    # --- the end ------------------------------------------------------------------------------------------------

    def server_close(self) -> tuple[int, str] | None:
        """The code and reason of the server's close frame, if one came."""
        handshake = self.transport.close_handshake if self.transport is not None else None
        received = handshake.recv if handshake is not None else None
        if received is None:
            return None
        return int(received.code.value), received.reason

    @property
    def closing(self) -> bool:
        return self._closing

    async def wait_closed(self) -> None:
        """Until the connection is gone. Raises ``WsClosed`` when it ended without a close handshake begun by either
        side (dropped) or because we refused a frame, and what picows or a callback raised when that ended it."""
        transport = self.transport
        assert transport is not None
        await asyncio.shield(self._gone)
        await transport.wait_disconnected()
        if self._refused is not None:
            raise WsClosed(self._refused)
        if self.server_close() is None and not self._closing:
            raise WsClosed(NO_CLOSE_FRAME)

    async def closed(self, timeout: float) -> None:
        """Wait for the end (at most ``timeout``), whatever it was."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._gone), timeout)


_Link = TypeVar("_Link", bound=WsLink)


async def open_link(url: str, factory: Callable[[], _Link], *, timeout: float = OPEN_TIMEOUT_S) -> _Link:
    """Connect to ``url`` (its ``user:password@`` sent as HTTP basic auth, never in the request line; ``wss`` verified
    against the system's certificates) and complete the handshake within ``timeout``. ``factory`` makes the link,
    which receives every frame from the first one on (through its ``listener``)."""
    parts = urlsplit(url)
    headers: dict[str, str] = {}
    if parts.username is not None or parts.password is not None:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    context = ssl.create_default_context() if parts.scheme == "wss" else None
    kwargs: dict[str, Any] = {"extra_headers": headers} if headers else {}
    made: list[_Link] = []

    def listener() -> WSListener:
        made.append(factory())
        return made[-1].listener()

    transport, _ = await asyncio.wait_for(
        ws_connect(
            listener,
            url,
            ssl_context=context,
            websocket_handshake_timeout=timeout,
            logger_name=_LOG,
            enable_auto_ping=False,  # the connection's liveness loop pings and records each pong
            enable_auto_pong=True,
            max_frame_size=_PARSER_MAX_BYTES,
            max_redirects=3,
            **kwargs,
        ),
        timeout,
    )
    if not made or made[-1].transport is not transport:
        # picows completes the handshake with no listener when the connection ends in the middle of it
        raise ConnectionResetError("the connection ended during the WebSocket handshake")
    return made[-1]
