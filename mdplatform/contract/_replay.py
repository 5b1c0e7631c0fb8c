"""What the replay server needs from one exchange's protocol adapter.

The server owns the sockets, the shared cursor, pacing and the test hooks; an adapter owns everything that
is exchange specific: which recorded frames are replayed under which subscription key, how timestamps are
shifted, the book state a mid-stream subscriber or a REST call needs, and how client messages are answered.
An exchange's folder holds its adapter (a ``ReplayProtocol`` subclass), which ``Exchange.replay_protocol`` returns.

REST history (trades) is served from the recorded trade frames: what the cursor has passed (``passed_ns``), or the
whole recording while no client has subscribed yet (``subscribed``), since a replay used over REST only is the
past. The server keeps the REST rate limit; an adapter says what each request weighs and how the exchange words
a refusal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..history import RateLimit

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from ._frames import CapturedFrame

__all__ = ["HttpHeaders", "HttpReply", "Prepared", "Query", "ReplayClient", "ReplayProtocol", "Throttled", "TradeLog"]

#: parsed query string: name -> values
Query = dict[str, list[str]]
#: (HTTP status, JSON body)
HttpReply = tuple[int, bytes]
#: response headers an adapter adds to a REST answer
HttpHeaders = dict[str, str]
#: a refused REST request: (HTTP status, JSON body, headers)
Throttled = tuple[int, bytes, HttpHeaders]


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
    #: whether the exchange bans (HTTP 418) an IP that keeps sending after a 429 (Binance)
    rest_bans: bool = False
    #: the exchange sends binary frames (HTX's gzip, MEXC's protocol buffers): a payload that is not JSON text goes
    #: out as a binary frame, as the exchange's would
    binary_frames: bool = False

    def __init__(self, exchange_id: str) -> None:
        self.exchange_id = exchange_id
        #: whole-minute rebase shift applied to every exchange timestamp, in ms (0: frames unchanged)
        self.shift_ms = 0
        #: recorded receive time of the last frame the cursor passed (-1: none yet)
        self.passed_ns = -1
        #: whether a client has subscribed to anything yet (before that, REST history serves the whole recording)
        self.subscribed = False
        #: the server's own http://host:port once it listens ("" before): for exchanges that hand out their
        #: WebSocket endpoint over REST (KuCoin ``bullet-public``), which must name this server
        self.base_url = ""

    def visible(self, recv_ns: int) -> bool:
        """Whether REST history serves a record received at ``recv_ns``: the cursor has passed it, or no client
        has subscribed yet (the recording is then all past)."""
        return not self.subscribed or recv_ns <= self.passed_ns

    def finish_scan(self) -> None:  # noqa: B027 - optional hook
        """The pre-pass is over: sort and index what ``scan`` collected."""

    @property
    @abstractmethod
    def default_rest_limit(self) -> RateLimit:
        """The exchange's own REST budget (what the replay enforces unless told otherwise)."""

    @abstractmethod
    def rest_weight(self, path: str, query: Query) -> int | None:
        """The weight of a REST GET against the rate limit; None for paths not served (404, not counted)."""

    @abstractmethod
    def rest_headers(self, used: int, limit: RateLimit) -> HttpHeaders:
        """Headers on every REST answer (Binance: the used weight of the window)."""

    @abstractmethod
    def throttled(self, status: int, retry_after_s: int, used: int, limit: RateLimit) -> Throttled:
        """The exchange's answer when the rate limit is exceeded (429) or the IP is banned (418)."""

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


class TradeLog:
    """One instrument's recorded trades, as REST history serves them: records in the endpoint's layout, sorted by
    trade id (a trade recorded twice is kept once), with each one's exchange time (ms, unshifted) and recorded
    receive time. Filled by ``add`` during the pre-pass, indexed by ``finish``."""

    __slots__ = ("_pending", "ids", "records", "recvs", "times")

    def __init__(self) -> None:
        self._pending: list[tuple[int, int, int, dict[str, object]]] = []
        self.ids: list[int] = []
        self.times: list[int] = []
        self.recvs: list[int] = []
        self.records: list[dict[str, object]] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, trade_id: int, time_ms: int, recv_ns: int, record: dict[str, object]) -> None:
        self._pending.append((trade_id, time_ms, recv_ns, record))

    def finish(self) -> None:
        pending = sorted(self._pending, key=lambda p: (p[0], p[2]))
        self._pending = []
        for trade_id, time_ms, recv_ns, record in pending:
            if self.ids and self.ids[-1] == trade_id:
                continue
            self.ids.append(trade_id)
            self.times.append(time_ms)
            self.recvs.append(recv_ns)
            self.records.append(record)

    def forward(self, start: int, limit: int, visible: Callable[[int], bool], stop: int | None = None) -> list[int]:
        """Up to ``limit`` indexes of visible records from index ``start`` on (before ``stop``), ascending."""
        out: list[int] = []
        recvs = self.recvs
        end = len(recvs) if stop is None else min(stop, len(recvs))
        i = start
        while i < end and len(out) < limit:
            if visible(recvs[i]):
                out.append(i)
            i += 1
        return out

    def backward(self, stop: int, limit: int, visible: Callable[[int], bool], start: int = 0) -> list[int]:
        """The last ``limit`` indexes of visible records before index ``stop`` (from ``start`` on), ascending."""
        out: list[int] = []
        recvs = self.recvs
        i = min(stop, len(recvs)) - 1
        while i >= start and len(out) < limit:
            if visible(recvs[i]):
                out.append(i)
            i -= 1
        out.reverse()
        return out
