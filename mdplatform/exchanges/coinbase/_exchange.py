"""Coinbase Advanced Trade public WebSocket (wss://advanced-trade-ws.coinbase.com), spot products.

Followed (Coinbase Developer Platform docs, as of 2026): "Advanced Trade WebSocket Overview" (one channel per
subscribe message; no subscribe within 5 s disconnects), "Advanced Trade WebSocket Channels" and the per-channel
reference pages (docs.cdp.coinbase.com/api-reference/advanced-trade-api/websocket/{heartbeats,level2,market-trades,
...}), "Advanced Trade WebSocket Rate Limits" (8 connections and 8 unauthenticated messages per second per IP).

Wire format: the client sends ``{"type":"subscribe","product_ids":[...],"channel":"<channel>"}``, one channel per
message, and the server answers each with a ``subscriptions`` frame listing what the connection is subscribed to.
Every server frame is ``{"channel":..,"client_id":"","timestamp":"<RFC 3339, ns>","sequence_num":N,"events":[..]}``;
``sequence_num`` counts the frames of one connection across all its channels, so a jump is a lost frame of any of
them: every book on the connection is then in doubt.

- ``level2`` (frames carry channel ``l2_data``): a ``snapshot`` event, then ``update`` events, each with ``updates``
  ``[{side: bid|offer, price_level, new_quantity, event_time}]``; ``new_quantity`` is the level's new size (0
  removes it). On a sequence gap the session reports ``gap`` for every book of the connection and resubscribes
  them (unsubscribe + subscribe level2): Coinbase answers a subscription with a fresh snapshot.
- ``market_trades``: a ``snapshot`` event of recent trades on subscribe, then ``update`` events; ``trade_id`` is a
  decimal string, contiguous per product (``Capabilities.contiguous_ids``). The snapshot repeats trades received
  before (on a resubscribe or reconnect): every trade is normalized, and the transforms keep the first receipt of
  each (exchange, symbol, channel, trade_id). ``side``: Coinbase's Advanced Trade pages say only "BUY"/"SELL"; the
  Coinbase Exchange trade docs (the same matching engine) say a trade's side is the MAKER order's, and Advanced
  Trade adapters that checked against price moves (NautilusTrader's Coinbase adapter: "Coinbase reports the maker
  side on public market trades") invert it: "BUY" is a taker sell, "SELL" a taker buy.
- ``ticker`` and ``candles`` (5-minute candles) are recorded raw; ``heartbeats`` (one frame a second, no products)
  is subscribed on every connection so that quiet channels are not closed after 60-90 s: no client ping exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

from ...book import L2Book
from ...contract import (
    GAP,
    SUB_ERROR,
    SUBSCRIBED,
    SYNCED,
    Capabilities,
    CaptureHints,
    KeepAlive,
    Route,
    SessionAction,
    StreamEvent,
    Subscription,
    SyncState,
    TradeHistory,
)
from ...history import RateLimit
from .._events import Trade
from .._normalize import (
    decode_json,
    empty_normalized_trades,
    empty_rejects,
    explode_records,
    live_and_rest,
    raw_rows,
    single_fills,
    split_trades,
)
from .._scan import json_object
from .._urls import with_default_path
from ._history import COINBASE_PUBLIC_LIMIT, CoinbaseTradeHistory
from ._times import rfc3339_ns, rfc3339_ns_expr

if TYPE_CHECKING:
    from ...contract import ReplayProtocol

__all__ = [
    "BOOK_CHANNEL",
    "FRAME_CHANNELS",
    "HEARTBEATS",
    "TRADES_CHANNEL",
    "CoinbaseBookBuilder",
    "CoinbaseExchange",
    "CoinbaseSession",
    "sequence_num",
    "taker_side",
]

CONTROL: Route = ("control", "")
#: the channel of l2_data frames (what the book keeps), and of market trades
BOOK_CHANNEL = "l2_data"
TRADES_CHANNEL = "market_trades"
HEARTBEATS = "heartbeats"
#: subscription channel -> the channel its frames carry (only level2 differs)
FRAME_CHANNELS: Mapping[str, str] = {
    "level2": BOOK_CHANNEL,
    TRADES_CHANNEL: TRADES_CHANNEL,
    "ticker": "ticker",
    "candles": "candles",
    HEARTBEATS: HEARTBEATS,
}
#: the channels a collector config may name (heartbeats is added to every connection by ``subscribe_messages``)
_CHANNELS = frozenset({"level2", TRADES_CHANNEL, "ticker", "candles"})

_CHANNEL_PREFIX = '{"channel":"'
_CHANNEL_LEN = len(_CHANNEL_PREFIX)
_PRODUCT = '"product_id":"'
_SEQUENCE = '"sequence_num":'
_TIMESTAMP = '"timestamp":"'

#: the fields of a market_trades frame that normalization reads (all strings on the wire)
_TRADE_FIELDS = ("trade_id", "product_id", "price", "size", "side", "time")
_TRADE = pl.Struct({k: pl.String() for k in _TRADE_FIELDS})
_TRADES_FRAME = pl.Struct(
    {
        "channel": pl.String(),
        "events": pl.List(pl.Struct({"type": pl.String(), "trades": pl.List(_TRADE)})),
    }
)
#: the REST reply layout (``GET .../market/products/{id}/ticker``) that ``CoinbaseTradeHistory.encode`` keeps
_TRADES_REPLY = pl.Struct({"trades": pl.List(_TRADE)})
#: price or size sent as a JSON number: polars would decode it through a float, so it is refused, never rounded
_NUMERIC_DECIMAL = r'"(?:price|size)":\s*[-0-9]'
#: the maker side Coinbase sends -> the taker side the platform keeps
_TAKER = {"BUY": "sell", "SELL": "buy"}


def taker_side(maker_side: str) -> str | None:
    """The taker side of a Coinbase trade from its ``side`` (the maker's): "BUY" -> "sell", "SELL" -> "buy"."""
    return _TAKER.get(maker_side.upper())


def _int_after(frame: str, marker: str) -> int | None:
    i = frame.find(marker)
    if i < 0:
        return None
    start = end = i + len(marker)
    n = len(frame)
    while end < n and frame[end] == " ":
        start = end = end + 1
    if end < n and frame[end] == "-":
        end += 1
    while end < n and frame[end].isdigit():
        end += 1
    try:
        return int(frame[start:end])
    except ValueError:
        return None


def sequence_num(frame: str) -> int | None:
    """A frame's ``sequence_num`` (string scan); None without one."""
    return _int_after(frame, _SEQUENCE)


def _frame_time(frame: str) -> int | None:
    i = frame.find(_TIMESTAMP)
    if i < 0:
        return None
    start = i + len(_TIMESTAMP)
    return rfc3339_ns(frame[start : frame.find('"', start)])


class CoinbaseExchange:
    """Coinbase Advanced Trade market data: market_trades, level2, ticker, candles (spot products)."""

    #: contract attributes (the collector only reads them)
    id = "coinbase"
    ws_url = "wss://advanced-trade-ws.coinbase.com"
    rest_url: str | None = None  # book snapshots come over the WebSocket
    # Advanced Trade hosts only: recordings of the retired Coinbase Exchange feed (ws-feed.pro.coinbase.com,
    # cryptofeed's COINBASE files) speak another protocol and must not be taken for this one
    capture_hints = CaptureHints(hosts=("advanced-trade-ws.coinbase.com", "api.coinbase.com/api/v3/brokerage"))

    def __init__(self) -> None:
        self.capabilities = Capabilities(
            channels=_CHANNELS,
            trade_channels=frozenset({TRADES_CHANNEL}),
            book_channels=frozenset({BOOK_CHANNEL}),
            ticker_channels=frozenset({"ticker"}),
            book_sync="ws-snapshot",
            sequence_check=True,
            checksum=False,
            markets=frozenset({"spot"}),
            contiguous_ids=frozenset({TRADES_CHANNEL}),
            subscribe_ack=True,
            # no documented limit of products per connection or subscription
            streams_per_connection=None,
            # the session must see every frame: sequence_num runs across all channels of a connection
            session_channels=frozenset({TRADES_CHANNEL, "ticker", "candles", HEARTBEATS}),
        )
        # heartbeats arrive every second on every connection: 10 s of silence is a dead connection. Each connection
        # sends five subscribe messages at once and Coinbase takes 8 unauthenticated messages per second per IP
        # (and 8 connections): one new connection per second keeps both
        self.keepalive = KeepAlive(
            client_ping=None, interval_s=5.0, idle_timeout_s=10.0, connects_per_s=1.0, connect_burst=1
        )
        self._history = CoinbaseTradeHistory()

    def __repr__(self) -> str:
        return "CoinbaseExchange()"

    def replay_protocol(self) -> ReplayProtocol:
        from ._replay import CoinbaseReplay  # here: the server side is only loaded by ``mdp replay`` and tests

        return CoinbaseReplay(self)

    # -- connecting ----------------------------------------------------------------------------------------
    def connect_url(self, subs: Sequence[Subscription], ws_url: str) -> str:
        return with_default_path(ws_url, self.ws_url)

    def subscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        """One subscribe per channel (the documented rule), products in subscription order, then heartbeats."""
        return [*self._messages("subscribe", subs), _message("subscribe", HEARTBEATS, ())]

    def unsubscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._messages("unsubscribe", subs)

    def level2_messages(self, subs: Sequence[Subscription]) -> list[str]:
        """Subscribe messages of ``subs`` without the heartbeats one (a resubscription on a live connection)."""
        return self._messages("subscribe", subs)

    def _messages(self, kind: str, subs: Sequence[Subscription]) -> list[str]:
        products: dict[str, dict[str, None]] = {}
        for sub in subs:
            if sub.channel not in _CHANNELS:
                raise ValueError(f"coinbase: unsupported channel {sub.channel!r}; supported: {sorted(_CHANNELS)}")
            if not sub.symbol:
                raise ValueError(f"coinbase: subscription to {sub.channel!r} needs a product id")
            products.setdefault(sub.channel, {})[sub.symbol] = None
        return [_message(kind, channel, list(ids)) for channel, ids in products.items()]

    # -- hot path ------------------------------------------------------------------------------------------
    def route(self, frame: str) -> Route:
        """(channel, product_id) of a frame: ``l2_data`` and ``market_trades`` name the product of their first
        event; ``heartbeats`` none; ``subscriptions`` frames and errors are control frames."""
        if frame.startswith(_CHANNEL_PREFIX):
            end = frame.find('"', _CHANNEL_LEN)
            channel = frame[_CHANNEL_LEN:end]
            if channel == "subscriptions":
                return CONTROL
            if channel == HEARTBEATS:
                return HEARTBEATS, ""
            i = frame.find(_PRODUCT, end)
            if i < 0:
                return channel, ""
            start = i + len(_PRODUCT)
            return channel, frame[start : frame.find('"', start)]
        return self._route_slow(frame)

    def _route_slow(self, frame: str) -> Route:
        """Frames laid out otherwise (spaced JSON, other key order) and errors (``{"type":"error",...}``)."""
        obj = json_object(frame) if '"channel"' in frame else None
        if obj is None:
            return CONTROL
        channel = obj.get("channel")
        if not isinstance(channel, str) or channel == "subscriptions":
            return CONTROL
        return channel, _first_product(obj)

    def exchange_time(self, frame: str) -> int | None:
        """The frame's ``timestamp`` (RFC 3339 with ns) as UTC ns, exactly; None without one (errors)."""
        return _frame_time(frame)

    def exchange_times(self, frames: pl.Series) -> pl.Series:
        text = frames.str.extract(r'"timestamp":\s*"([^"]*)"', 1)
        return text.to_frame("t").select(rfc3339_ns_expr(pl.col("t"))).to_series().alias(frames.name)

    def control_events(self, frame: str) -> list[StreamEvent]:
        """A ``subscriptions`` frame restates every stream the connection is subscribed to (``subscribed`` each,
        level2 under its frames' channel ``l2_data``); ``{"type":"error","message":..}`` is a refused request."""
        obj = json_object(frame)
        if obj is None:
            return []
        if obj.get("type") == "error":
            detail = str(obj.get("message", ""))
            if obj.get("reason"):
                detail = f"{detail}: {obj['reason']}"
            return [StreamEvent(SUB_ERROR, detail=detail or frame[:200])]
        if obj.get("channel") != "subscriptions":
            return []
        out: list[StreamEvent] = []
        for event in obj.get("events") or ():
            subs = event.get("subscriptions") if isinstance(event, dict) else None
            if not isinstance(subs, dict):
                continue
            for channel, products in subs.items():
                frames_channel = FRAME_CHANNELS.get(channel, channel)
                if channel == HEARTBEATS or not isinstance(products, list):
                    out.append(StreamEvent(SUBSCRIBED, frames_channel, ""))
                    continue
                out.extend(StreamEvent(SUBSCRIBED, frames_channel, str(p)) for p in products)
        return out

    def new_session(self, subs: Sequence[Subscription], rest_url: str | None) -> CoinbaseSession:
        return CoinbaseSession(self, subs)

    #: BookRebuilding: l2_data frames carry no epoch-ms time; the rebuild times them by their neighbours
    book_time_patterns: tuple[str, ...] = ()

    def book_builder(self, symbol: str, *, keep_raw: bool = False) -> CoinbaseBookBuilder:  # BookRebuilding
        return CoinbaseBookBuilder(symbol, keep_raw=keep_raw)

    def rest_cost(self, url: str) -> tuple[int, RateLimit]:
        """Books come over the WebSocket; a REST call is one request of the public endpoints' 10 per second."""
        return 1, COINBASE_PUBLIC_LIMIT

    def trade_history(self, channel: str) -> TradeHistory | None:
        """Public market trades (``GET /api/v3/brokerage/market/products/{id}/ticker``) for market_trades."""
        return self._history if channel == TRADES_CHANNEL else None

    # -- symbols and normalization -------------------------------------------------------------------------
    def normalize_symbol(self, symbol: str) -> str:
        """Product ids are BASE-QUOTE already ("BTC-USD")."""
        return symbol.upper()

    def normalize_trades(self, raw: pl.DataFrame) -> pl.DataFrame:
        return self.normalize_trades_with_rejects(raw)[0]

    def normalize_trades_with_rejects(self, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(trades, rejects) of channel market_trades: one trade per element of every event's ``trades`` (snapshot
        and update alike: the transforms keep each trade id once), and of REST history rows (``{"trades":[..]}``).

        ``side`` is the taker's (``taker_side``: Coinbase sends the maker's); ``ts`` the trade's ``time`` in exact
        ns; ``trade_id`` as sent, ``seq_id`` = ``fill_first`` = ``fill_last`` its integer (contiguous per product);
        ``fills`` 1. Rejects keep the raw row plus ``reason``.
        """
        rows = raw_rows(raw, self.id, [TRADES_CHANNEL])
        return live_and_rest(rows, '{"trades"', self._normalize_live, self._normalize_rest)

    def _normalize_live(self, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        if rows.height == 0:
            return empty_normalized_trades(), empty_rejects()
        decoded, ok = decode_json(rows.get_column("payload"), _TRADES_FRAME)
        events = decoded.struct.field("events")
        rows = (
            rows.with_columns(
                _decoded=ok,
                _channel_ok=decoded.struct.field("channel").eq(TRADES_CHANNEL).fill_null(False),
                _events_missing=events.is_null(),
                _ev=events,
            )
            .explode("_ev", empty_as_null=True, keep_nulls=True)
            .with_columns(_items=pl.col("_ev").struct.field("trades"))
            .with_columns(_n=pl.col("_items").list.len())
            .explode("_items", empty_as_null=True, keep_nulls=True)
        )
        reason = (
            pl.when(pl.col("_decoded").not_())
            .then(pl.lit("payload is not a market_trades frame in the documented layout"))
            .when(pl.col("_channel_ok").not_())
            .then(pl.lit("payload's channel is not market_trades"))
            .when(pl.col("_events_missing"))
            .then(pl.lit("payload has no events list"))
            .when(pl.col("payload").str.contains(_NUMERIC_DECIMAL))
            .then(pl.lit("price or size is a JSON number, not a decimal string"))
            .when(pl.col("_ev").is_null())
            .then(pl.lit("no events in the frame"))
            .when(pl.col("_n").fill_null(0) == 0)
            .then(pl.lit("no trades in the event"))
            .when(pl.col("_items").is_null())
            .then(pl.lit("null trade in the event"))
        )
        return self._split(rows, reason)

    def _normalize_rest(self, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """REST history rows: one trade per record of ``trades``, the same row a live frame of it gives."""
        decoded, ok = decode_json(rows.get_column("payload"), _TRADES_REPLY)
        items = decoded.struct.field("trades")
        rows = explode_records(rows, ok, items)
        reason = (
            pl.when(pl.col("_decoded").not_())
            .then(pl.lit("payload is not a REST market trades reply in the documented layout"))
            .when(pl.col("payload").str.contains(_NUMERIC_DECIMAL))
            .then(pl.lit("price or size is a JSON number, not a decimal string"))
            .when(pl.col("_n").fill_null(0) == 0)
            .then(pl.lit("no trades in the REST reply"))
            .when(pl.col("_items").is_null())
            .then(pl.lit("null trade in the REST reply"))
        )
        return self._split(rows, reason)

    def _split(self, rows: pl.DataFrame, reason: pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame]:
        it = pl.col("_items").struct
        trade_id = it.field("trade_id")
        seq_id = pl.when(trade_id.str.contains(r"^[0-9]{1,18}$")).then(trade_id.cast(pl.Int64, strict=False))
        side = it.field("side").str.to_uppercase()
        rows = rows.with_columns(
            _symbol=pl.coalesce(it.field("product_id"), pl.when(pl.col("symbol") != "").then(pl.col("symbol"))),
            _ts=rfc3339_ns_expr(it.field("time")).cast(pl.Datetime("ns", "UTC")),
            _trade_id=trade_id,
            _price=it.field("price"),
            _size=it.field("size"),
            _side=pl.when(side == "BUY").then(pl.lit("sell")).when(side == "SELL").then(pl.lit("buy")),
            **single_fills(seq_id),
        )
        return split_trades(rows, exchange=self.id, normalize_symbol=self.normalize_symbol, reason=reason)

    # -- typed parsing (tests and tools) -------------------------------------------------------------------
    def parse_trades(self, frame: str | bytes) -> list[Trade]:
        """The trades of one market_trades frame (taker side, exact decimals and times); [] for other frames."""
        obj = orjson.loads(frame)
        if not isinstance(obj, dict) or obj.get("channel") != TRADES_CHANNEL:
            return []
        out: list[Trade] = []
        for event in obj.get("events") or ():
            for t in event.get("trades") or ():
                ts = rfc3339_ns(t["time"])
                side = taker_side(t["side"])
                if ts is None or side is None:
                    raise ValueError(f"coinbase: unreadable trade {t!r:.200}")
                out.append(
                    Trade(
                        exchange=self.id,
                        channel=TRADES_CHANNEL,
                        symbol=t["product_id"],
                        ts=ts,
                        trade_id=str(t["trade_id"]),
                        price=Decimal(t["price"]),
                        size=Decimal(t["size"]),
                        side=side,
                    )
                )
        return out


def _message(kind: str, channel: str, products: Sequence[str]) -> str:
    msg: dict[str, Any] = {"type": kind}
    if channel != HEARTBEATS:
        msg["product_ids"] = list(products)
    msg["channel"] = channel
    return orjson.dumps(msg).decode()


def _first_product(obj: Mapping[str, Any]) -> str:
    for event in obj.get("events") or ():
        if not isinstance(event, dict):
            continue
        product = event.get("product_id")
        if isinstance(product, str):
            return product
        for key in ("trades", "tickers", "candles"):
            for item in event.get(key) or ():
                if isinstance(item, dict) and isinstance(item.get("product_id"), str):
                    return str(item["product_id"])
    return ""


_SIDES = {"bid": "bid", "offer": "ask"}


def _sides(updates: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(bids, asks) of an event's ``updates``: (price_level, new_quantity) strings, as sent."""
    bids: list[tuple[str, str]] = []
    asks: list[tuple[str, str]] = []
    for u in updates:
        side = _SIDES.get(u.get("side", ""))
        price, qty = u.get("price_level"), u.get("new_quantity")
        if side is None or not isinstance(price, str) or not isinstance(qty, str):
            raise ValueError(f"coinbase l2_data: unreadable update {u!r:.200}")
        (bids if side == "bid" else asks).append((price, qty))
    return bids, asks


class CoinbaseBookBuilder:
    """One product's ``level2`` book from ``l2_data`` frames: a ``snapshot`` event loads it, ``update`` events
    apply to it; updates before the first snapshot are ignored (the book is not valid yet).

    ``sequence_num`` spans every channel of a connection, so one product's frames alone cannot tell a lost frame;
    the live ``CoinbaseSession`` checks it and resubscribes, and offline the rebuild knows of it from the gap events
    it is handed. What a product's frames do show is checked: within a connection its numbers only grow (a number
    that goes back without a new snapshot first is a new connection whose snapshot was not received: a gap).
    """

    channels: frozenset[str] = frozenset({BOOK_CHANNEL})

    def __init__(self, symbol: str, *, keep_raw: bool = False) -> None:
        self.symbol = symbol
        self.book = L2Book(symbol, keep_raw=keep_raw)
        self.valid = False
        self.seq: int | None = None
        self.snapshots = 0
        self.updates = 0

    def apply_event(self, kind: object, updates: Sequence[Mapping[str, Any]], seq: int | None) -> str | None:
        """Apply one event of this product; what went wrong (the book is dropped) or None."""
        if kind == "snapshot":
            bids, asks = _sides(updates)
            self.book.load(bids, asks)
            self.valid = True
            self.seq = seq
            self.snapshots += 1
            return None
        if kind != "update" or not self.valid:
            return None  # waiting for the snapshot a (re)subscription brings
        if seq is not None and self.seq is not None and seq <= self.seq:
            self.drop()
            return f"sequence_num {seq} after {self.seq} without a new snapshot"
        bids, asks = _sides(updates)
        try:
            self.book.apply(bids, asks)
        except ValueError:
            self.drop()
            raise
        self.seq = seq if seq is not None else self.seq
        self.updates += 1
        return None

    def drop(self) -> None:
        self.book.clear()
        self.valid = False
        self.seq = None

    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        msg = orjson.loads(payload)
        seq = msg.get("sequence_num")
        seq = seq if isinstance(seq, int) else None
        event: StreamEvent | None = None
        for ev in msg.get("events") or ():
            if ev.get("product_id") != self.symbol:
                continue
            problem = self.apply_event(ev.get("type"), ev.get("updates") or (), seq)
            if problem is not None:
                return StreamEvent(GAP, BOOK_CHANNEL, self.symbol, problem)
            if ev.get("type") == "snapshot":
                event = StreamEvent(SYNCED, BOOK_CHANNEL, self.symbol)
        return event

    def checkpoint(self) -> dict[str, Any]:
        return {"seq": self.seq}

    def restore(
        self, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]], state: Mapping[str, Any]
    ) -> None:
        seq = state.get("seq")
        self.seq = None if seq is None else int(seq)
        self.book.load(bids, asks)
        self.valid = True


class CoinbaseSession:
    """Per-connection state: the ``sequence_num`` chain of every frame and the level2 book of each product.

    The session is handed every data frame (``Capabilities.session_channels``) but not the ``subscriptions`` acks
    (control frames), which take numbers of the chain too: it counts the acks still due (one per subscribe or
    unsubscribe message sent) and lets that many numbers pass unseen. Any other jump, or a number that goes back,
    is a lost frame of some channel: ``gap`` for every level2 product of the connection, their books dropped, and
    an unsubscribe + subscribe of level2 for them, whose fresh snapshots make them ``synced`` again.
    """

    def __init__(self, exchange: CoinbaseExchange, subs: Sequence[Subscription]) -> None:
        self._exchange = exchange
        self._books: dict[str, CoinbaseBookBuilder] = {}
        self._state: dict[str, SyncState] = {}
        for sub in subs:
            if sub.channel == "level2":
                self._state[sub.symbol] = "buffering"
                self._books[sub.symbol] = CoinbaseBookBuilder(sub.symbol, keep_raw=True)
        #: a session made without subscriptions (``mdp import-capture``) is handed book frames only: it keeps the books
        #: it sees but cannot follow the connection's numbering, which runs through frames it is not handed
        self.checks_sequence = bool(subs)
        #: subscriptions acks not seen yet (each takes a sequence number the session does not see)
        self.acks_due = len(exchange.subscribe_messages(subs))
        self.last_seq: int | None = None
        #: validation failures so far
        self.errors = 0

    def book(self, product: str) -> L2Book | None:
        builder = self._books.get(product)
        return builder.book if builder is not None and builder.valid else None

    def on_frame(self, channel: str, symbol: str, frame: str) -> SessionAction | None:
        seq = sequence_num(frame)
        gap = self._chain(seq) if seq is not None and self.checks_sequence else None
        events: list[StreamEvent] = []
        action: SessionAction | None = None
        if gap is not None:
            action = self._gap(gap)
        if channel == BOOK_CHANNEL:
            msg = orjson.loads(frame)
            for ev in msg.get("events") or ():
                product = ev.get("product_id")
                if not isinstance(product, str):
                    continue
                builder = self._books.get(product)
                if builder is None:
                    if self.checks_sequence:
                        continue  # a product this connection did not subscribe to level2 for
                    builder = self._books[product] = CoinbaseBookBuilder(product, keep_raw=True)
                problem = builder.apply_event(ev.get("type"), ev.get("updates") or (), seq)
                if problem is not None:
                    return self._gap(f"{product}: {problem}", only=product)
                if ev.get("type") == "snapshot":
                    self._state[product] = "synced"
                    events.append(StreamEvent(SYNCED, BOOK_CHANNEL, product))
        if action is None:
            return SessionAction(events=tuple(events)) if events else None
        return SessionAction(
            error=action.error, send=action.send, events=(*action.events, *events), fetch_snapshot=None
        )

    def _chain(self, seq: int) -> str | None:
        """Check ``seq`` against the chain; what was lost (None: nothing)."""
        last = self.last_seq
        if last is None:
            # the acks before the first frame seen take the numbers below it
            self.acks_due -= min(self.acks_due, max(seq, 0))
            self.last_seq = seq
            return None
        self.last_seq = seq
        skipped = seq - last - 1
        if skipped < 0:
            return f"sequence_num went from {last} to {seq}"
        if skipped > self.acks_due:
            lost = skipped - self.acks_due
            self.acks_due = 0
            return f"sequence_num jumped from {last} to {seq}: {lost} frame(s) lost"
        self.acks_due -= skipped
        return None

    def _gap(self, detail: str, *, only: str | None = None) -> SessionAction:
        """A lost frame: every level2 book of the connection (or ``only`` that one) is dropped and resubscribed."""
        self.errors += 1
        products = [only] if only is not None else list(self._books)
        if not products:
            return SessionAction(error=f"coinbase: {detail} (no book on this connection)")
        for product in products:
            self._books[product].drop()
            self._state[product] = "resyncing"
        subs = [Subscription("level2", p) for p in products]
        send = (*self._exchange.unsubscribe_messages(subs), *self._exchange.level2_messages(subs))
        self.acks_due += len(send)
        return SessionAction(
            error=f"coinbase level2 {', '.join(products)}: {detail}; resubscribing",
            send=send,
            events=tuple(StreamEvent(GAP, BOOK_CHANNEL, p, detail) for p in products),
        )

    def on_snapshot(self, symbol: str, body: str) -> SessionAction | None:
        return None  # snapshots arrive on the WebSocket

    def sync_state(self) -> dict[str, str]:
        return dict(self._state)
