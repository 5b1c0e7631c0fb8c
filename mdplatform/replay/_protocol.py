"""What the replay server needs from one exchange's protocol adapter.

The server owns the sockets, the shared cursor, pacing and the test hooks; an adapter owns everything that
is exchange specific: which recorded frames are replayed under which subscription key, how timestamps are
shifted, the book state a mid-stream subscriber or a REST call needs, and how client messages are answered.
Adding an exchange to the replay means one module with a ``ReplayProtocol`` subclass and one registry line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from ..capture import CapturedFrame

__all__ = ["HttpReply", "Prepared", "Query", "ReplayClient", "ReplayProtocol"]

#: parsed query string: name -> values
Query = dict[str, list[str]]
#: (HTTP status, JSON body)
HttpReply = tuple[int, bytes]


@dataclass(slots=True)
class Prepared:
    """A recorded frame made ready for the cursor: encoded once, whatever the number of clients.

    ``key`` is the subscription key the frame is sent under (None: the frame is not sent over the socket,
    like a REST snapshot reply or a recorded subscribe ack); ``stream`` names it in the counters;
    ``update`` is adapter state the cursor applies when it passes the frame (a book diff or snapshot).
    """

    recv_ns: int
    key: str | None
    stream: str
    data: bytes | None
    update: object | None = None


class ReplayClient:
    """One connected socket: its subscription keys and the frames waiting for the next batched write."""

    __slots__ = ("dropped", "id", "keys", "names", "outbox", "ws")

    def __init__(self, ws: ServerConnection, client_id: int) -> None:
        self.ws = ws
        self.id = client_id
        #: subscription keys frames are matched against (adapter-defined strings)
        self.keys: set[str] = set()
        #: subscription names as the client wrote them -> key (for LIST_SUBSCRIPTIONS, unsubscribe)
        self.names: dict[str, str] = {}
        #: complete WebSocket frames (wire bytes) not yet handed to the transport, in wire order
        self.outbox: list[bytes] = []
        self.dropped = False

    def subscribe(self, name: str, key: str) -> bool:
        """Add a subscription; False when the key was already subscribed."""
        new = key not in self.keys
        self.names[name] = key
        self.keys.add(key)
        return new

    def unsubscribe(self, name: str) -> None:
        key = self.names.pop(name, None)
        if key is not None and key not in self.names.values():
            self.keys.discard(key)


class ReplayProtocol(ABC):
    """One exchange's wire protocol, server side."""

    #: the registry id this adapter serves ("binance", "okx", ...)
    exchange_id: str
    #: whether the exchange pings clients at the protocol level (Binance) or clients ping with text (OKX)
    server_pings: bool = True

    def __init__(self, exchange_id: str) -> None:
        self.exchange_id = exchange_id
        #: whole-minute rebase shift applied to every exchange timestamp, in ms (0: frames unchanged)
        self.shift_ms = 0

    @abstractmethod
    def scan(self, frame: CapturedFrame, *, times: bool) -> int | None:
        """Pre-pass over the recording (before the server starts): remember what must be known in advance
        (recorded REST snapshots); with ``times``, return the latest exchange time in the frame (ms)."""

    @abstractmethod
    def prepare(self, frame: CapturedFrame) -> Prepared | None:
        """The frame as the cursor will send it (shifted by ``shift_ms``), or None to skip it."""

    @abstractmethod
    def advance(self, frame: Prepared) -> None:
        """The cursor passes ``frame``: update the server-side state (books)."""

    @abstractmethod
    def accepts(self, path: str) -> bool:
        """Whether a WebSocket upgrade on ``path`` is served."""

    @abstractmethod
    def on_open(self, client: ReplayClient, path: str, query: Query) -> list[bytes]:
        """A client connected (subscriptions from the URL); returns frames to send first."""

    @abstractmethod
    def on_message(self, client: ReplayClient, text: str) -> list[bytes]:
        """A client's text frame: update its subscriptions and return the replies, in wire order."""

    @abstractmethod
    def http_get(self, path: str, query: Query) -> HttpReply | None:
        """A plain HTTP GET; None for unknown paths (404)."""
