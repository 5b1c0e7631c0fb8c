"""Bybit v5 public WebSocket: spot (``wss://stream.bybit.com/v5/public/spot``), USDT/USDC linear perpetuals
(``.../v5/public/linear``) and inverse contracts (``.../v5/public/inverse``), one class parameterized by market.

Pages followed (Bybit v5 API docs, https://bybit-exchange.github.io/docs/v5/, as stored in 2026):
- ``ws/connect``: endpoints; ``{"op":"subscribe","args":["<topic>",...]}``; the client sends ``{"op":"ping"}``
  (recommended every 20 s) and gets ``{"success":true,"ret_msg":"pong","conn_id":..,"op":"ping"}``; acks are
  ``{"success":true,"ret_msg":"" or "subscribe","conn_id":..,"req_id":..,"op":"subscribe"}`` and name no topic, refusals
  ``"success":false`` with the reason in ``ret_msg``. Args limits: spot takes at most 10 args per subscribe
  request; any public connection at most 21,000 characters of args; no more than 500 connections in 5 minutes.
- ``websocket/public/trade`` (``publicTrade.{symbol}``): ``data`` is a list of trades (sorted by match time),
  ``T`` match time (ms), ``s`` symbol, ``S`` taker side Buy/Sell, ``v`` size and ``p`` price (strings), ``i`` trade
  id (spot: a number in a string; derivatives: a UUID; never contiguous), ``BT`` block trade.
- ``websocket/public/orderbook`` (``orderbook.{depth}.{symbol}``): see ``_book``.
- ``websocket/public/ticker`` (``tickers.{symbol}``) and ``websocket/public/kline`` (``kline.{interval}.{symbol}``):
  recorded raw, not normalized here.
- ``market/recent-trade`` and ``rate-limit``: see ``_history``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

import orjson
import polars as pl

from ...book import L2Book
from ...history import RateLimit

if TYPE_CHECKING:
    from ...contract import ReplayProtocol
from ...contract import (
    SUB_ERROR,
    Capabilities,
    CaptureHints,
    EventKind,
    KeepAlive,
    Route,
    SessionAction,
    StreamEvent,
    Subscription,
    SyncState,
    TradeHistory,
)
from .._events import Trade
from .._normalize import (
    decode_json,
    empty_normalized_trades,
    empty_rejects,
    explode_records,
    ms_to_ts,
    raw_rows,
    single_fills,
    split_trades,
)
from .._scan import json_object, ms_after, ms_after_all
from .._symbols import split_quote
from .._urls import with_default_path
from ._book import BOOK_DEPTHS, BybitBookBuilder, book_channel
from ._history import BybitTradeHistory, bybit_rest_limit

__all__ = ["ARGS_PER_REQUEST", "BybitExchange", "BybitSession", "Market"]

Market = Literal["spot", "linear", "inverse"]

CONTROL: Route = ("control", "")
TRADES = "publicTrade"
TICKERS = "tickers"
KLINE = "kline.1"

#: args per subscribe request: spot's documented maximum (10); derivatives have no per-request limit, the same
#: batches keep every request small
ARGS_PER_REQUEST = 10
#: streams per connection: the 21,000 characters of args a public connection takes, over about 40 characters per
#: quoted arg (``"orderbook.1000.1000000BABYDOGEUSDT",``), rounded down
_STREAMS_PER_CONNECTION = 500

_TOPIC_PREFIX = '{"topic":"'
_TOPIC_LEN = len(_TOPIC_PREFIX)
#: what precedes a frame's exchange time: the push's ``ts`` (ms, a JSON number; ``"cts":`` does not match)
_TIME_MARKER = '"ts":'
#: p or v sent as a JSON number: polars would decode it through a float, so the push is refused, never rounded
_NUMERIC_DECIMAL = r'"(?:[pv]|price|size)":\s*[-0-9]'
#: a topic named in a refusal's ret_msg ("Invalid symbol :[orderbook.50.BTCUSDX]")
_TOPIC_IN_MSG = re.compile(r"((?:publicTrade|orderbook\.\d+|tickers|kline\.\w+)\.[A-Za-z0-9_-]+)")

#: the fields normalization reads: of a publicTrade push (T a JSON number of ms, p and v strings: exact) and of a
#: ``recent-trade`` reply landed by the backfill (``result.list``: time, price and size strings)
_PUSH_ITEM = {"T": pl.Int64(), "s": pl.String(), "S": pl.String(), "v": pl.String(), "p": pl.String(), "i": pl.String()}
_REST_ITEM = {
    "time": pl.String(),
    "symbol": pl.String(),
    "side": pl.String(),
    "size": pl.String(),
    "price": pl.String(),
    "execId": pl.String(),
}
_TRADE_PAYLOAD = pl.Struct(
    {
        "topic": pl.String(),
        "data": pl.List(pl.Struct(_PUSH_ITEM)),
        "result": pl.Struct({"list": pl.List(pl.Struct(_REST_ITEM))}),
    }
)

#: quote assets of spot symbols, longest first (a symbol takes the longest matching suffix: "BTCUSDE" -> BTC-USDE)
_QUOTE_TEXT = "USDT USDC USDE USDR USD1 FDUSD DAI EUR BRL BRZ PLN TRY MNT BTC ETH XRP SOL"
_SPOT_QUOTES: tuple[str, ...] = tuple(sorted(_QUOTE_TEXT.split(), key=len, reverse=True))
#: a dated contract's suffix: linear "BTCUSDT-27DEC24", inverse "BTCUSDH25"
_DATED = re.compile(r"^([A-Z0-9]+?)(USDT|USDC)?-(\d{1,2}[A-Z]{3}\d{2})$")
_INVERSE_DATED = re.compile(r"^([A-Z0-9]+?)USD([FGHJKMNQUVXZ]\d{2})$")

_URLS: dict[Market, str] = {
    "spot": "wss://stream.bybit.com/v5/public/spot",
    "linear": "wss://stream.bybit.com/v5/public/linear",
    "inverse": "wss://stream.bybit.com/v5/public/inverse",
}
_IDS: dict[Market, str] = {"spot": "bybit", "linear": "bybit-linear", "inverse": "bybit-inverse"}
#: the capability table's market names (as Binance's USD-M and COIN-M are labelled)
_MARKET_LABELS: dict[Market, str] = {"spot": "spot", "linear": "linear-perpetual", "inverse": "inverse-perpetual"}


class BybitExchange:
    """Bybit v5 public channels of one market: publicTrade, orderbook.{depth}, tickers, kline.1."""

    def __init__(self, market: Market = "spot") -> None:
        if market not in _URLS:
            raise ValueError(f"bybit: unknown market {market!r}; known: {', '.join(_URLS)}")
        self.market: Market = market
        # contract attributes (the collector only reads them)
        self.id = _IDS[market]
        self.ws_url = _URLS[market]
        self.rest_url: str | None = None  # books come over the WebSocket
        # only the market's own v5 path: Bybit's legacy endpoints on the same host (``/realtime_public``,
        # ``/spot/public/v3``) speak another protocol and must not be read as v5; cryptofeed's ``BYBIT`` feed name
        # covers every Bybit market and API version, so no feed name is claimed
        self.capture_hints = CaptureHints(hosts=(_URLS[market].removeprefix("wss://"),))
        books = frozenset(book_channel(d) for d in BOOK_DEPTHS[market])
        self._book_channels = books
        self.capabilities = Capabilities(
            channels=frozenset({TRADES, TICKERS, KLINE}) | books,
            trade_channels=frozenset({TRADES}),
            book_channels=books,
            ticker_channels=frozenset({TICKERS}),
            book_sync="ws-snapshot",
            sequence_check=True,
            checksum=False,
            markets=frozenset({_MARKET_LABELS[market]}),
            history_reach="last 60 trades" if market == "spot" else "last 1,000 trades",
            contiguous_ids=frozenset(),  # publicTrade ids are UUIDs (derivatives) or sparse numbers (spot)
            # acks name no topic (only the request's req_id): streams count from the connection, refusals are
            # sub_error events (see ``control_events``)
            subscribe_ack=False,
            streams_per_connection=_STREAMS_PER_CONNECTION,
        )
        # ping after 20 s of silence (the docs' recommendation); a pong or any push resets the watchdog
        # connections: at most 500 per 5 minutes per WebSocket domain
        # "send the ping heartbeat every 20 seconds" (ws/connect): whatever the traffic
        self.keepalive = KeepAlive(
            client_ping='{"op":"ping"}',
            interval_s=20.0,
            idle_timeout_s=35.0,
            connects_per_s=1.5,
            connect_burst=5,
            ping_always=True,
        )
        self._history = BybitTradeHistory(market)

    def __repr__(self) -> str:
        return f"BybitExchange({self.market!r})"

    def replay_protocol(self) -> ReplayProtocol:
        from ._replay import BybitReplay  # here: the server side is only loaded by ``mdp replay`` and tests

        return BybitReplay(self)

    # -- connecting ----------------------------------------------------------------------------------------
    def connect_url(self, subs: Sequence[Subscription], ws_url: str) -> str:
        return with_default_path(ws_url, self.ws_url)

    def topic(self, sub: Subscription) -> str:
        if not sub.channel or not sub.symbol:
            raise ValueError(f"{self.id}: subscription needs a channel and a symbol, got {sub}")
        return f"{sub.channel}.{sub.symbol}"

    def subscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._op_messages("subscribe", subs)

    def unsubscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._op_messages("unsubscribe", subs)

    def _op_messages(self, op: str, subs: Sequence[Subscription]) -> list[str]:
        args = [self.topic(sub) for sub in dict.fromkeys(subs)]
        return [
            orjson.dumps({"op": op, "args": args[i : i + ARGS_PER_REQUEST]}).decode()
            for i in range(0, len(args), ARGS_PER_REQUEST)
        ]

    # -- hot path ------------------------------------------------------------------------------------------
    #: a push is routed by its topic, the text up to the first quote after this prefix (``route_key``)
    route_prefix = (_TOPIC_PREFIX, 1)

    def route_key(self, key: str) -> Route | None:
        """The route of every frame starting with ``route_prefix`` whose topic is ``key``: ``orderbook.50.BTCUSDT``
        -> ("orderbook.50", "BTCUSDT")."""
        channel, sep, symbol = key.rpartition(".")
        return (channel, symbol) if sep and channel else None

    def route(self, frame: str) -> Route:
        if frame.startswith(_TOPIC_PREFIX):
            channel, sep, symbol = frame[_TOPIC_LEN : frame.find('"', _TOPIC_LEN)].rpartition(".")
            if sep:
                return channel, symbol
        return self._route_slow(frame)

    def _route_slow(self, frame: str) -> Route:
        """Frames laid out otherwise (topic not first, spaced JSON) and control frames (acks, pongs: no topic)."""
        i = frame.find('"topic"')
        if i < 0:
            return CONTROL
        obj = json_object(frame)
        topic = obj.get("topic") if obj is not None else None
        if not isinstance(topic, str):
            return CONTROL
        channel, sep, symbol = topic.rpartition(".")
        return (channel, symbol) if sep else (topic, "")

    def exchange_time(self, frame: str) -> int | None:
        """The push's ``ts`` (ms) in ns; None for acks and pongs."""
        return ms_after(frame, _TIME_MARKER)

    def exchange_times(self, frames: pl.Series) -> pl.Series:
        return ms_after_all(frames, _TIME_MARKER)

    def control_events(self, frame: str) -> list[StreamEvent]:
        """A refused subscribe (``"success":false``) is a ``sub_error``, on the topic its ``ret_msg`` names when it
        names one. Successful acks name no topic (the streams counted from the connection) and pongs say nothing
        about streams: []."""
        if '"success"' not in frame:
            return []
        obj = json_object(frame)
        if obj is None or obj.get("success") is not False or obj.get("op") == "ping":
            return []
        msg = str(obj.get("ret_msg", ""))
        if "already subscribed" in msg:
            return []  # the stream is live on this connection: refusing a repeat is no refusal of the stream
        detail = f"{obj.get('op', '')}: {msg}".strip(": ")
        topics = _TOPIC_IN_MSG.findall(msg)
        if not topics:
            return [StreamEvent(SUB_ERROR, "", "", detail)]
        events = []
        for topic in dict.fromkeys(topics):
            channel, _, symbol = topic.rpartition(".")
            events.append(StreamEvent(SUB_ERROR, channel, symbol, detail))
        return events

    def new_session(self, subs: Sequence[Subscription], rest_url: str | None) -> BybitSession:
        return BybitSession(self, subs)

    #: BookRebuilding: the matching engine's time of the book (``cts``, the clock trades' ``T`` is on) by
    #: preference, else the push's ``ts``
    book_time_patterns = (r'"cts":(\d+)', r'"ts":(\d+)')

    def book_builder(self, symbol: str, *, keep_raw: bool = True) -> BybitBookBuilder:  # BookRebuilding
        return BybitBookBuilder(symbol, self._book_channels, keep_raw=keep_raw)

    def rest_cost(self, url: str) -> tuple[int, RateLimit]:
        """Books come over the WebSocket; a REST call is one request of the IP's budget (600 per 5 s)."""
        return 1, bybit_rest_limit()

    def trade_history(self, channel: str) -> TradeHistory | None:
        """``GET /v5/market/recent-trade`` for publicTrade: the last 60 (spot) or 1,000 trades only (``_history``)."""
        return self._history if channel == TRADES else None

    # -- symbols and normalization -------------------------------------------------------------------------
    def normalize_symbol(self, symbol: str) -> str:
        """spot BTCUSDT -> BTC-USDT; linear BTCUSDT -> BTC-USDT-PERP, BTCPERP -> BTC-USDC-PERP (USDC perpetuals),
        BTCUSDT-27DEC24 -> BTC-USDT-27DEC24, BTC-27DEC24 -> BTC-USDC-27DEC24; inverse BTCUSD -> BTC-USD-PERP,
        BTCUSDH25 -> BTC-USD-H25. Unknown shapes stay unchanged."""
        symbol = symbol.upper()
        if self.market == "spot":
            split = split_quote(symbol, _SPOT_QUOTES)
            return f"{split[0]}-{split[1]}" if split else symbol
        if self.market == "inverse":
            if m := _INVERSE_DATED.match(symbol):
                return f"{m.group(1)}-USD-{m.group(2)}"
            return f"{symbol[:-3]}-USD-PERP" if len(symbol) > 3 and symbol.endswith("USD") else symbol
        if m := _DATED.match(symbol):
            return f"{m.group(1)}-{m.group(2) or 'USDC'}-{m.group(3)}"
        if len(symbol) > 4 and symbol.endswith("PERP"):
            return f"{symbol[:-4]}-USDC-PERP"
        split = split_quote(symbol, ("USDT", "USDC"))
        return f"{split[0]}-{split[1]}-PERP" if split else symbol

    def normalize_trades(self, raw: pl.DataFrame) -> pl.DataFrame:
        """Raw rows -> trades (channel publicTrade; see ``normalize_trades_with_rejects``)."""
        return self.normalize_trades_with_rejects(raw)[0]

    def normalize_trades_with_rejects(self, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(trades, rejects): one trade per element of ``data``; rejects keep the raw row plus ``reason``.

        trades: ``mdplatform.schemas.TRADES`` then ``TRADE_LINEAGE``; ``trade_id`` = ``i``, ``ts`` = ``T``, price
        ``p`` and size ``v`` exact from the wire strings, ``side`` the taker side ``S`` lowercased, ``fills`` 1
        (every element is one match); ``seq_id``/``fill_first``/``fill_last`` null (ids are not contiguous). Block
        trades (``BT`` true) are trades the exchange printed on its public tape and are kept. The same layout
        serves ``recent-trade`` replies landed by the backfill (``BybitTradeHistory.encode``).
        """
        rows = raw_rows(raw, self.id, [TRADES])
        if rows.height == 0:
            return empty_normalized_trades(), empty_rejects()
        decoded, ok = decode_json(rows.get_column("payload"), _TRADE_PAYLOAD)
        e = pl.element().struct
        # a recent-trade reply's records, renamed to a push's fields (its time is a string of ms)
        rest = (
            decoded.struct.field("result")
            .struct.field("list")
            .to_frame("l")
            .select(
                pl.col("l").list.eval(
                    pl.struct(
                        e.field("time").cast(pl.Int64, strict=False).alias("T"),
                        e.field("symbol").alias("s"),
                        e.field("side").alias("S"),
                        e.field("size").alias("v"),
                        e.field("price").alias("p"),
                        e.field("execId").alias("i"),
                    )
                )
            )
            .to_series()
        )
        items = (
            decoded.struct.field("data").to_frame("d").with_columns(r=rest).select(pl.coalesce("d", "r")).to_series()
        )
        rows = explode_records(rows, ok, items, _data_missing=items.is_null())
        it = pl.col("_items").struct
        side = it.field("S")
        rows = rows.with_columns(
            _symbol=pl.coalesce(it.field("s"), pl.when(pl.col("symbol") != "").then(pl.col("symbol"))),
            _ts=ms_to_ts(it.field("T")),
            _trade_id=it.field("i"),
            _price=it.field("p"),
            _size=it.field("v"),
            _side=pl.when(side == "Buy").then(pl.lit("buy")).when(side == "Sell").then(pl.lit("sell")),
            **single_fills(),
        )
        reason = (
            pl.when(pl.col("_decoded").not_())
            .then(pl.lit("payload is not a publicTrade push in the documented layout"))
            .when(pl.col("_data_missing"))
            .then(pl.lit("payload has no data list (nor result.list)"))
            .when(pl.col("payload").str.contains(_NUMERIC_DECIMAL))
            .then(pl.lit("a price or size is a JSON number, not a decimal string"))
            .when(pl.col("_n").fill_null(0) == 0)
            .then(pl.lit("no trades in data"))
            .when(pl.col("_items").is_null())
            .then(pl.lit("null trade in data"))
            .when(side.is_not_null() & side.is_in(["Buy", "Sell"]).not_())
            .then(pl.format("taker side S is neither Buy nor Sell: {}", side.str.slice(0, 32)))
        )
        return split_trades(rows, exchange=self.id, normalize_symbol=self.normalize_symbol, reason=reason)

    # -- typed parsing (tests and tools) -------------------------------------------------------------------
    def parse_trades(self, frame: str | bytes) -> list[Trade]:
        """The trades of one publicTrade push ([] for anything else)."""
        obj = orjson.loads(frame)
        topic = obj.get("topic", "") if isinstance(obj, dict) else ""
        if not isinstance(topic, str) or not topic.startswith(TRADES + "."):
            return []
        return [
            Trade(
                exchange=self.id,
                channel=TRADES,
                symbol=str(d["s"]),
                ts=int(d["T"]) * 1_000_000,
                trade_id=str(d["i"]),
                price=Decimal(d["p"]),
                size=Decimal(d["v"]),
                side=str(d["S"]).lower(),
            )
            for d in obj.get("data") or ()
        ]


class BybitSession:
    """Per-connection book validation for ``orderbook.{depth}``: one builder per (depth, symbol), the ``u`` chain.

    On a gap the book is dropped and the session asks to unsubscribe + subscribe that topic only, which makes Bybit
    send a fresh snapshot; deltas arriving in between are ignored. Reported stream events: ``gap`` (the ``u`` chain
    broke), ``synced`` (a snapshot made the book whole).
    """

    def __init__(self, exchange: BybitExchange, subs: Sequence[Subscription]) -> None:
        self._exchange = exchange
        self._channels = exchange.capabilities.book_channels
        self._books: dict[tuple[str, str], BybitBookBuilder] = {}
        self._state: dict[tuple[str, str], SyncState] = {}
        for sub in subs:
            if sub.channel in self._channels:
                self._state[(sub.channel, sub.symbol)] = "buffering"
        #: validation failures so far
        self.errors = 0

    def book(self, symbol: str, channel: str | None = None) -> L2Book | None:
        for (ch, sym), builder in self._books.items():
            if sym == symbol and (channel is None or ch == channel) and builder.valid:
                return builder.book
        return None

    def builder(self, channel: str, symbol: str) -> BybitBookBuilder | None:
        return self._books.get((channel, symbol))

    def on_frame(self, channel: str, symbol: str, frame: str) -> SessionAction | None:
        if channel not in self._channels:
            return None
        msg = orjson.loads(frame)
        data = msg.get("data") if isinstance(msg, dict) else None
        if not isinstance(data, Mapping):
            raise ValueError(f"not an orderbook push: {frame[:120]}")
        key = (channel, symbol)
        builder = self._books.get(key)
        if builder is None:
            builder = self._books[key] = BybitBookBuilder(symbol, self._channels, keep_raw=False)
        problem = builder.apply(msg.get("type"), data)
        if builder.valid:
            self._state[key] = "synced"
        if problem is None:
            return None
        kind, detail = problem
        if kind == "synced":
            return SessionAction(events=(StreamEvent(kind, channel, symbol),))
        return self._fail(channel, symbol, kind, detail)

    def on_snapshot(self, symbol: str, body: str) -> SessionAction | None:
        return None  # Bybit snapshots arrive on the WebSocket

    def sync_state(self) -> dict[str, str]:
        """symbol -> state (a symbol kept at several depths reports its worst)."""
        rank = {"synced": 0, "buffering": 1, "resyncing": 2}
        out: dict[str, str] = {}
        for (_, symbol), state in self._state.items():
            if symbol not in out or rank[state] > rank[out[symbol]]:
                out[symbol] = state
        return out

    def _fail(self, channel: str, symbol: str, kind: EventKind, problem: str) -> SessionAction:
        self.errors += 1
        self._state[(channel, symbol)] = "resyncing"
        sub = [Subscription(channel, symbol)]
        send = (*self._exchange.unsubscribe_messages(sub), *self._exchange.subscribe_messages(sub))
        return SessionAction(
            error=f"{self._exchange.id} {channel} {symbol}: {problem}; resubscribing",
            send=send,
            events=(StreamEvent(kind, channel, symbol, problem),),
        )
