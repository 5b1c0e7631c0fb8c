"""The contract every exchange module fulfils.

An exchange module is the only place that knows an exchange's wire protocol: its endpoints, the subscribe
messages, keep-alive, how to route a raw frame to (channel, symbol) cheaply, how its order book is kept in
sync, and how its raw payloads become normalized rows. The collector, the lake and the transforms only talk
to this interface, so adding an exchange means adding a module and one registry line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    import polars as pl

    from ..history import RateLimit, RestClient
    from ._replay import ReplayProtocol

__all__ = [
    "ALIVE",
    "BACKFILLED",
    "CHECKSUM",
    "CLOSE",
    "EVENT_KINDS",
    "FRAME_ERROR",
    "GAP",
    "OPEN",
    "START",
    "SUBSCRIBED",
    "SUB_ERROR",
    "SYNCED",
    "UNREACHABLE",
    "UNSUBSCRIBED",
    "Answering",
    "BinaryFrames",
    "BookBuilder",
    "BookRebuilding",
    "Capabilities",
    "CaptureHints",
    "ConnectionRouting",
    "EventKind",
    "Exchange",
    "HistoryHorizon",
    "HistoryPage",
    "KeepAlive",
    "Negotiated",
    "Negotiating",
    "Route",
    "SessionAction",
    "StreamEvent",
    "StreamSession",
    "Subscription",
    "SyncState",
    "TradeHistory",
]

#: the order book type a builder keeps (the book package's ``L2Book``): the contract does not depend on it
BookT_co = TypeVar("BookT_co", covariant=True)

#: a book stream's state, as sessions report it (``StreamSession.sync_state``) and ``mdp status`` shows it
SyncState = Literal["buffering", "synced", "resyncing"]

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
#: frame_error a landed frame could not be read or interpreted (not UTF-8, malformed, a value the book refuses):
#:             seq is that frame's ``seq`` on the connection, detail the reason; the frame is quarantined (kept in
#:             ``raw/``, flagged by this row)
#: backfilled  (lake ``backfill_events/``, written by ``mdp backfill``) the stream's trades of the exchange-time
#:             span [exchange_ts, end) were fetched whole from the exchange's REST history (detail: JSON with
#:             ``end`` in ns, the requests made and the trades fetched)
#: unreachable (lake ``backfill_events/``) the exchange's REST history does not reach back to [exchange_ts, end):
#:             that span of a gap cannot be healed (detail: JSON with ``end`` and the exchange's ``reason``)
EventKind = Literal[
    "open",
    "subscribed",
    "start",
    "alive",
    "close",
    "sub_error",
    "unsubscribed",
    "gap",
    "checksum",
    "synced",
    "frame_error",
    "backfilled",
    "unreachable",
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
FRAME_ERROR: EventKind = "frame_error"
BACKFILLED: EventKind = "backfilled"
UNREACHABLE: EventKind = "unreachable"
EVENT_KINDS: frozenset[str] = frozenset(
    (
        OPEN,
        SUBSCRIBED,
        START,
        ALIVE,
        CLOSE,
        SUB_ERROR,
        UNSUBSCRIBED,
        GAP,
        CHECKSUM,
        SYNCED,
        FRAME_ERROR,
        BACKFILLED,
        UNREACHABLE,
    )
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

    ``client_ping``: a text frame the client sends every ``interval_s`` seconds of silence (OKX "ping"), or every
    ``interval_s`` whatever the traffic (``ping_always``);
    ``None`` when the server pings and the client answers with protocol pongs (Binance).
    ``idle_timeout_s``: the watchdog; a connection silent this long is closed and reconnected.
    ``connects_per_s`` and ``connect_burst``: new connections the exchange accepts from one IP (the collector spreads
    its connection attempts, reconnect storms included, to this rate).
    """

    client_ping: str | None
    interval_s: float
    idle_timeout_s: float
    connects_per_s: float = 1.0
    connect_burst: int = 1
    #: the text ping is sent every ``interval_s`` however busy the connection (KuCoin, Bybit: the server counts the
    #: client's pings, not its own traffic); False: only after ``interval_s`` of silence
    ping_always: bool = False


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
    #: the most streams (channel x symbol) the exchange serves on one connection (Binance 1,024 per combined URL,
    #: Bybit spot 10 args per subscribe and a bounded total): the collector opens further connections beyond it,
    #: whatever ``max_streams_per_connection`` its config allows; None: no documented limit
    streams_per_connection: int | None = None
    #: channels, beyond ``book_channels``, whose frames the live ``StreamSession`` is handed too (Coinbase Advanced
    #: Trade numbers every frame of a connection with one ``sequence_num``, so its session must see them all to tell
    #: a lost frame); empty: the session sees book frames only
    session_channels: frozenset[str] = field(default_factory=frozenset)
    #: how far the REST trade history reaches when it cannot go back to any time ("last 1,000 trades"): a gap older
    #: than that cannot be healed (the backfill says so); None: it reaches back as far as a gap needs
    history_reach: str | None = None


@dataclass(frozen=True, slots=True)
class CaptureHints:
    """How ``mdp import-capture`` recognises a recording of this exchange (and market) by its content or name.

    ``hosts``: text found in the endpoint URL of a connect or REST line ("stream.bybit.com/v5/public/linear"); the
    longest match over all exchanges wins, so a market's own path beats its exchange's host. ``feeds``: cryptofeed
    file-name prefixes (``BYBIT`` in ``BYBIT.ws.25.0.gz``), used when no line names an endpoint.
    """

    hosts: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()


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


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One reply of an exchange's REST trade history, as received.

    ``channel``: the live trade channel whose records these are the same as ("trade", "aggTrade", "trades"): they
    are normalized, de-duplicated and id-chained with that channel's frames. ``records``: the reply's trade
    records, oldest first, each exactly as decoded from the body (prices stay the exchange's strings);
    ``times_ns``: each record's exchange time. ``proven``: the exchange-time span [start, end) that this page and
    the pages before it in the same fetch prove complete (every trade in it has been returned), None while
    nothing is proven yet. ``request``: what was asked ("GET /api/v3/historicalTrades?symbol=...", no secrets).
    """

    channel: str
    symbol: str
    request: str
    recv_ns: int
    records: tuple[Mapping[str, Any], ...]
    times_ns: tuple[int, ...]
    proven: tuple[int, int] | None


class HistoryHorizon(ValueError):
    """The exchange's REST history ends before the span asked for: what lies beyond cannot be fetched. A
    ``TradeHistory.fetch`` raises it after its last page; ``mdp backfill`` records the span it could not reach."""


class TradeHistory(Protocol):
    """An exchange's REST trade history: what heals a gap in the live trades (``mdp backfill``)."""

    @property
    def base_url(self) -> str:
        """The real REST host, scheme included ("https://api.binance.com"); tests pass the replay's instead."""
        ...

    def fetch(
        self,
        client: RestClient,
        symbol: str,
        start_ns: int,
        end_ns: int,
        *,
        base_url: str | None = None,
        after_id: int | None = None,
    ) -> AsyncIterator[HistoryPage]:
        """Every trade of ``symbol`` (the exchange's id) with exchange time in [start_ns, end_ns), page by page,
        within the exchange's rate limits (``client`` holds one limiter per host). ``after_id``: a trade id known
        to lie before ``start_ns`` (the last one received before a gap), where the exchange pages by id. The
        last page's ``proven`` says how much of the span the fetch proved complete (less than all of it when the
        history ends or does not reach back that far)."""
        ...

    def encode(self, records: Sequence[Mapping[str, Any]]) -> str:
        """The payload the lake keeps for some of a page's records: the reply's own layout holding just those
        records, which ``Exchange.normalize_trades_with_rejects`` reads like a live frame of ``channel``."""
        ...


@dataclass(frozen=True, slots=True)
class IdChain:
    """Where a book channel's frames carry the update ids that chain them, for checks outside the session (the
    collector's compiled receive path reads them from the frame's bytes): the JSON keys as they precede each number,
    ``b'"U":'``. The rule such a check applies while the chain is in sequence: with ``prev``, a frame continues the
    chain when its ``prev`` id equals the chain's last id; without, when its ``last`` id is beyond the chain's last id
    and its ``first`` at most one past it; one that does not and whose ``last`` id is not beyond the chain's is
    stale, and the session has nothing to say of it. ``first`` and ``last`` must be present either way."""

    first: bytes
    last: bytes
    prev: bytes | None = None


@runtime_checkable
class ChainedSession(Protocol):
    """A session whose book frames may be checked outside it while their chain is in sequence (``IdChain``): a
    frame that continues the chain then never reaches ``on_frame``; the check says how far the chain went
    (``chain_advance``), and gives the session the first frame that does not continue it (or whose ids it cannot
    read), after saying how far the chain went before it."""

    def id_chain(self, channel: str) -> IdChain | None:
        """Where ``channel``'s frames carry their ids, None when they are checked by ``on_frame`` only."""
        ...

    def chain_position(self, channel: str, symbol: str) -> int:
        """The chain's last id when frames continuing it may be checked outside now (in sequence), else -1."""
        ...

    def chain_advance(self, channel: str, symbol: str, last: int) -> None:
        """Frames checked outside continued the chain up to ``last``."""
        ...


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

    def exchange_times(self, frames: pl.Series) -> pl.Series:
        """``exchange_time`` of many frames at once (Int64 ns, null where it is None), vectorized: an import reads
        every frame's time."""
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

    def rest_cost(self, url: str) -> tuple[int, RateLimit]:
        """(request weight, the host's budget) of a REST call the collector makes (a book snapshot), so one limiter
        per host spaces them within the exchange's documented limits."""
        ...

    def trade_history(self, channel: str) -> TradeHistory | None:
        """The REST history that can heal gaps of trade channel ``channel``; None when the exchange keeps none."""
        ...

    @property
    def capture_hints(self) -> CaptureHints:
        """How recordings of this exchange are recognised (``mdp import-capture``)."""
        ...

    def replay_protocol(self) -> ReplayProtocol:
        """A new server-side adapter speaking this exchange's WebSocket and REST protocol over recorded frames
        (``mdp replay``); the exchange's own folder holds it."""
        ...


class BookBuilder(Protocol[BookT_co]):
    """One instrument's order book kept from raw rows (lake ``payload``), under the same sync rules as the live
    session of its exchange: what the offline rebuild (``mdplatform.book.Rebuild``) drives.

    ``valid`` is False before the first snapshot and after a gap or checksum failure until the book is whole
    again. ``checkpoint``/``restore`` carry the sync state beside the book (prices and sizes as the exchange's
    strings: the book must be created with raw strings kept) so a rebuild continues where another one stopped.
    """

    @property
    def book(self) -> BookT_co: ...

    @property
    def valid(self) -> bool: ...

    @property
    def channels(self) -> frozenset[str]:
        """The raw channels this builder reads (others are not handed to it)."""
        ...

    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        """Apply one raw row of ``channels``; the ``gap``/``checksum``/``synced`` event when validity changed.
        Raises ValueError on a frame it cannot interpret (the book is then not valid)."""
        ...

    def checkpoint(self) -> dict[str, Any]:
        """The sync state (JSON-able) beside the book's levels; only meaningful while ``valid``."""
        ...

    def restore(
        self, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]], state: Mapping[str, Any]
    ) -> None:
        """Load levels and the state ``checkpoint`` returned: the builder is then valid."""
        ...


class BookRebuilding(Protocol[BookT_co]):
    """The part of ``Exchange`` an offline book rebuild needs (exchanges that keep books have it): the book code is
    handed this object and never looks an exchange up by name."""

    @property
    def id(self) -> str: ...

    def normalize_symbol(self, symbol: str) -> str: ...

    #: regular expressions whose first group is the exchange's time (epoch ms) in a book frame, by preference:
    #: the rebuild samples books on the exchange's clock, as trades are timed (frames without one, such as REST
    #: snapshots, take their neighbour's)
    book_time_patterns: tuple[str, ...]

    def book_builder(self, symbol: str, *, keep_raw: bool = False) -> BookBuilder[BookT_co]: ...


# -- optional parts of an exchange (checked with isinstance: an exchange has them only where its protocol needs them)


@runtime_checkable
class BinaryFrames(Protocol):
    """An exchange whose frames arrive binary-encoded (HTX: every frame is gzip-compressed JSON). The collector and the
    capture import hand such a frame to ``decode_binary`` and land the text it returns, as a WebSocket library lands
    the text of a permessage-deflate frame: the compression is the transport's, the text is what the exchange sent.
    None: not a frame of this encoding (landed base64 and quarantined, as any frame that is not text)."""

    def decode_binary(self, data: bytes) -> str | None: ...


@runtime_checkable
class Answering(Protocol):
    """An exchange that pings at the application level and closes a connection whose client does not answer (HTX
    ``{"ping": t}`` wants ``{"pong": t}``): ``answer`` is given every ``control`` frame and returns the text to send
    back, None for frames that want no answer."""

    def answer(self, frame: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Negotiated:
    """Where to connect as the exchange said before the connection (``Negotiating``): the URL to open (token
    included) and the keep-alive it asked for (None: the exchange's own ``keepalive``)."""

    url: str
    keepalive: KeepAlive | None = None


@runtime_checkable
class Negotiating(Protocol):
    """An exchange that hands out its WebSocket endpoint over REST before each connection (KuCoin ``bullet-public``:
    a token, the server's URL and its ping interval). The collector calls ``negotiate`` before every (re)connect with
    the URL ``connect_url`` built and the REST base (the config's override, else the exchange's own)."""

    async def negotiate(self, client: RestClient, url: str, rest_url: str | None) -> Negotiated: ...


@runtime_checkable
class ConnectionRouting(Protocol):
    """An exchange whose frames name their stream by a number the connection was given (Bitfinex channel ids from
    ``subscribed`` events): ``connection_router`` returns a new ``route`` for one connection (or one recorded
    connection of a capture), which learns the numbers from the frames it is handed in order."""

    def connection_router(self) -> Callable[[str], Route]: ...
