"""The contract every exchange module fulfils.

An exchange module is the only place that knows an exchange's wire protocol: its endpoints, the subscribe
messages, keep-alive, how to route a raw frame to (channel, symbol) cheaply, how its order book is kept in
sync, and how its raw payloads become normalized rows. The collector, the lake and the transforms only talk
to this interface, so adding an exchange means adding a module and one registry line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "ALIVE",
    "CHECKSUM",
    "CLOSE",
    "EVENT_KINDS",
    "GAP",
    "OPEN",
    "START",
    "SUBSCRIBED",
    "SUB_ERROR",
    "SYNCED",
    "UNSUBSCRIBED",
    "Capabilities",
    "EventKind",
    "Exchange",
    "KeepAlive",
    "Route",
    "SessionAction",
    "StreamEvent",
    "StreamSession",
    "Subscription",
]

#: (channel, symbol) of a frame. channel is the exchange's own name ("trade", "depth", "books", ...);
#: symbol is the exchange's own instrument id ("BTCUSDT", "BTC-USDT"), "" for frames not about one instrument
#: (subscribe acks, pongs: channel "control").
Route = tuple[str, str]


#: What the collector records about a connection beside its frames (the lake's ``events/`` rows, schema
#: ``mdplatform.schemas.EVENTS``). Coverage is computed from these, so the same names serve the live collector,
#: ``import-capture`` and the transforms:
#: open        the connection is up (detail: URL)
#: subscribed  the stream (channel, symbol) is being received on it; restated every minute while it is
#: start       the first frame carrying an exchange time arrived: what was received starts here
#: alive       a pong came back for a ping sent at recv_ts: every frame sent before it has arrived
#: close       the connection ended (detail: why)
#: sub_error   the exchange refused a subscription (detail: its message)
#: unsubscribed the stream stopped being received on this connection
#: gap         a book stream lost messages (sequence ids jumped); checksum: its book no longer verifies;
#: synced      the book stream is whole again after a snapshot
EventKind = Literal[
    "open", "subscribed", "start", "alive", "close", "sub_error", "unsubscribed", "gap", "checksum", "synced"
]
OPEN: EventKind = "open"
SUBSCRIBED: EventKind = "subscribed"
START: EventKind = "start"
ALIVE: EventKind = "alive"
CLOSE: EventKind = "close"
SUB_ERROR: EventKind = "sub_error"
UNSUBSCRIBED: EventKind = "unsubscribed"
GAP: EventKind = "gap"
CHECKSUM: EventKind = "checksum"
SYNCED: EventKind = "synced"
EVENT_KINDS: frozenset[str] = frozenset(
    (OPEN, SUBSCRIBED, START, ALIVE, CLOSE, SUB_ERROR, UNSUBSCRIBED, GAP, CHECKSUM, SYNCED)
)


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """An event an exchange module reports about a stream (``channel``/``symbol`` "" when connection-wide)."""

    kind: EventKind
    channel: str = ""
    symbol: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Subscription:
    """One channel of one instrument, in the exchange's own names (channel "depth", symbol "BTCUSDT")."""

    channel: str
    symbol: str


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """How a connection is kept open.

    ``client_ping``: a text frame the client sends every ``interval_s`` seconds of silence (OKX "ping");
    ``None`` when the server pings and the client answers with protocol pongs (Binance).
    ``idle_timeout_s``: the watchdog; a connection silent this long is closed and reconnected.
    """

    client_ping: str | None
    interval_s: float
    idle_timeout_s: float


@dataclass(frozen=True, slots=True)
class Capabilities:
    channels: frozenset[str]
    #: channels carrying trades, order-book deltas/snapshots and tickers (what the transforms read)
    trade_channels: frozenset[str]
    book_channels: frozenset[str]
    ticker_channels: frozenset[str]
    #: "rest-snapshot": deltas over WS, snapshot over REST (Binance);
    #: "ws-snapshot": the snapshot comes first on the WebSocket (OKX)
    book_sync: Literal["rest-snapshot", "ws-snapshot", "none"]
    sequence_check: bool
    checksum: bool
    markets: frozenset[str] = field(default_factory=frozenset)
    #: trade channels whose ids are contiguous per symbol (Binance trade and aggTrade): a missing id is a lost
    #: trade, and two consecutive ids prove no trade happened between them
    contiguous_ids: frozenset[str] = field(default_factory=frozenset)
    #: True when the exchange confirms each subscription with a frame (OKX); False when the streams named at
    #: connect time are live as soon as the connection is (Binance combined-stream URLs)
    subscribe_ack: bool = False


@dataclass(frozen=True, slots=True)
class SessionAction:
    """What a session asks the collector to do after a frame.

    ``fetch_snapshot``: GET this URL and hand the body to ``StreamSession.on_snapshot`` (the collector also lands
    it in the raw layer, channel "depthSnapshot"). ``send``: text frames to send (resubscribe after a checksum
    failure). ``error``: a validation failure to count and log (gap, checksum mismatch); never fatal.
    """

    fetch_snapshot: tuple[str, str] | None = None  # (symbol, url)
    send: tuple[str, ...] = ()
    error: str | None = None
    #: what to record in the lake's events (gap, checksum, synced)
    events: tuple[StreamEvent, ...] = ()


class StreamSession(Protocol):
    """Per-connection state: book sync and validation. Created fresh on every (re)connect."""

    def on_frame(self, channel: str, symbol: str, frame: str) -> SessionAction | None: ...

    def on_snapshot(self, symbol: str, body: str) -> SessionAction | None: ...

    def sync_state(self) -> dict[str, str]:
        """symbol -> "synced" | "buffering" | "resyncing" (for status reporting)."""
        ...


class Exchange(Protocol):
    """One exchange (or one market of an exchange with its own endpoint, like Binance USD-M)."""

    @property
    def id(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def ws_url(self) -> str: ...

    @property
    def rest_url(self) -> str | None: ...

    @property
    def keepalive(self) -> KeepAlive: ...

    def connect_url(self, subs: Sequence[Subscription], ws_url: str) -> str:
        """The URL to open for these subscriptions (Binance puts streams in the URL; OKX returns ws_url)."""
        ...

    def subscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        """Text frames to send right after connecting (may be empty when the URL carries the streams)."""
        ...

    def route(self, frame: str) -> Route:
        """(channel, symbol) of a frame, with string operations only: this runs on every message."""
        ...

    def exchange_time(self, frame: str) -> int | None:
        """The exchange's own time in a frame (UTC ns; Binance ``E``, OKX ``ts``), None when it has none. String
        operations only; the collector calls it on a connection's first frames and once per liveness check."""
        ...

    def control_events(self, frame: str) -> list[StreamEvent]:
        """What a ``control`` frame says about subscriptions: acks (``subscribed``/``unsubscribed``) and
        refusals (``sub_error``); [] for anything else (pongs)."""
        ...

    def new_session(self, subs: Sequence[Subscription], rest_url: str | None) -> StreamSession: ...

    def normalize_trades(self, raw: pl.DataFrame) -> pl.DataFrame:
        """``normalize_trades_with_rejects(raw)[0]``."""
        ...

    def normalize_trades_with_rejects(self, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Raw rows of this exchange (lake schema, any channels) -> (trades, rejects).

        trades: ``mdplatform.schemas.TRADES`` then ``TRADE_LINEAGE`` columns, vectorized; prices and sizes exact
        (never through a float); ``symbol`` becomes BASE-QUOTE; ``side`` is the taker side; ``fills`` counts the
        matches an aggregated row holds. rejects: the raw rows of trade channels that could not be parsed plus a
        ``reason`` column, so nothing is dropped silently (the assets quarantine them).
        """
        ...

    def normalize_symbol(self, symbol: str) -> str:
        """Exchange id -> BASE-QUOTE[-SUFFIX] ("BTCUSDT" -> "BTC-USDT", "BTCUSD_PERP" -> "BTC-USD-PERP")."""
        ...
