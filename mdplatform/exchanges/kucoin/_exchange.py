"""KuCoin spot public WebSocket (classic spot API), as documented today (checked 2026-12).

Pages followed (https://www.kucoin.com/docs-new): "WebSocket / Base Info / Introduction" (apply a token, connect to
``endpoint?token=..&connectId=..``, the ``welcome`` frame, ``{"id":..,"type":"ping"}`` every ``pingInterval``
answered by ``pong``, ``subscribe`` with ``"response":true`` answered by ``{"id":..,"type":"ack"}``, errors
``{"id":..,"type":"error","code":..,"data":..}``), "Get Public Token - Classic Spot/Margin" (``POST
/api/v1/bullet-public``: ``token`` and ``instanceServers[].endpoint/pingInterval/pingTimeout`` in ms, public weight
10), "Rate Limit" (public pool 2000 per 30 s), spot public channels "Orderbook - Increment" (``/market/level2``, see
``_book``), "Trade" (``/market/match``: one fill per push, ``side`` the taker's, ``time`` ns as a string, "a topic
supports up to 100 symbols"), "Ticker" (``/market/ticker``: best bid/ask with the book's ``sequence``), "Klines"
(``/market/candles:SYMBOL_1min``: ``[start s, open, close, high, low, volume, turnover]``), REST "Get Part OrderBook"
(``level2_100``, weight 4) and "Get Trade Histories" (``/api/v1/market/histories``, weight 3, the last 100 trades).
Subscriptions: at most 100 symbols per request and 400 per connection (KuCoin's 509 errors "exceed max subscription
count limitation of 100 per time / 400 per session"). The subscribe frames go out as soon as the socket is open,
before the ``welcome`` frame: the 2021 recording shows KuCoin acking requests sent that way.

The 2021 recordings (``cryptofeed`` samples) differ from today's shapes only where noted: pushes put ``data`` before
``topic``; ``/market/level2`` has no ``time``; match ``tradeId`` was a hex id (today it equals ``sequence``).
Trades are identified by ``sequence`` (what live pushes and REST history share; see ``normalize_trades_with_rejects``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
import orjson
import polars as pl

from ...contract import (
    SUB_ERROR,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Capabilities,
    CaptureHints,
    KeepAlive,
    Negotiated,
    Route,
    StreamEvent,
    Subscription,
    TradeHistory,
)
from ...history import RateLimit
from .._events import Event, Ticker, Trade
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
from ._book import BOOK_CHANNEL, KucoinBookBuilder, KucoinSession
from ._history import KUCOIN_PUBLIC_LIMIT, KUCOIN_REST_BASE, KucoinTradeHistory
from ._wire import (
    BULLET_PATH,
    CHANNELS,
    PING,
    SNAPSHOT_PATH,
    TOPIC_SYMBOLS,
    find_topic,
    message_id,
    route_topic,
    time_ns,
    times_ns,
    topic_of,
)

if TYPE_CHECKING:
    from ...contract import ReplayProtocol
    from ...history import RestClient

__all__ = ["KucoinExchange", "KucoinNegotiationError"]

CONTROL: Route = ("control", "")
TRADE_CHANNEL = "match"
#: a connection serves at most this many (topic, symbol) subscriptions (509 "... of 400 per session")
STREAMS_PER_CONNECTION = 400
#: REST weights (public pool) of the calls the collector makes
_WEIGHTS = {BULLET_PATH: 10, SNAPSHOT_PATH: 4, "/api/v1/market/orderbook/level2_20": 2, "/api/v1/market/histories": 3}
#: KuCoin's documented defaults (pingInterval 18000 ms, pingTimeout 10000 ms) until a token reply says otherwise
_PING_MS, _PING_TIMEOUT_MS = 18_000, 10_000
#: new connections: KuCoin allows 30 per minute per user; spread them, a few at once
_CONNECTS_PER_S, _CONNECT_BURST = 0.5, 5

_MATCH_FIELDS = ("symbol", "sequence", "tradeId", "side", "price", "size", "time", "type")
#: the fields of a match push that normalization reads (all strings on the wire); price and size stay strings
_MATCH_PUSH = pl.Struct(
    {
        "topic": pl.String(),
        "subject": pl.String(),
        "data": pl.Struct(
            {k: pl.String() for k in ("symbol", "sequence", "tradeId", "side", "price", "size", "time", "type")}
        ),
    }
)
#: a REST history reply (``/api/v1/market/histories``): ``time`` is a JSON number of ns there
_HISTORY_REPLY = pl.Struct(
    {
        "code": pl.String(),
        "data": pl.List(
            pl.Struct(
                {
                    "sequence": pl.String(),
                    "tradeId": pl.String(),
                    "side": pl.String(),
                    "price": pl.String(),
                    "size": pl.String(),
                    "time": pl.Int64(),
                }
            )
        ),
    }
)
#: price or size sent as a JSON number: polars would decode it through a float, so the row is refused
_NUMERIC_DECIMAL = r'"(?:price|size)":\s*[-0-9]'


class KucoinNegotiationError(OSError):
    """``bullet-public`` did not hand out a usable endpoint (the collector backs off and tries again)."""


def _origin(url: str) -> str:
    """scheme://host[:port] of a REST URL: every KuCoin endpoint used lives at the root of the REST host."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class KucoinExchange:
    """KuCoin spot: level2 (REST snapshot + sequenced diffs), match (trades), ticker, candles 1min (raw)."""

    #: contract attributes (the collector only reads them)
    id = "kucoin"
    #: the documented endpoint; every connection uses the one ``bullet-public`` hands out (``negotiate``)
    ws_url = "wss://ws-api-spot.kucoin.com"
    rest_url = KUCOIN_REST_BASE
    # the 2021 recordings connected to push-private.kucoin.com (today's endpoint: ws-api-spot.kucoin.com)
    capture_hints = CaptureHints(
        hosts=("push-private.kucoin.com", "ws-api-spot.kucoin.com", "api.kucoin.com", "kucoin.com"),
        feeds=("KUCOIN",),
    )

    def __init__(self) -> None:
        self.capabilities = Capabilities(
            channels=frozenset(CHANNELS),
            trade_channels=frozenset({TRADE_CHANNEL}),
            book_channels=frozenset({BOOK_CHANNEL}),
            ticker_channels=frozenset({"ticker"}),
            book_sync="rest-snapshot",
            sequence_check=True,
            checksum=False,
            markets=frozenset({"spot"}),
            # match sequences are shared with the book's changes: not contiguous per symbol's trades
            history_reach="last 100 trades",
            contiguous_ids=frozenset(),
            subscribe_ack=True,
            streams_per_connection=STREAMS_PER_CONNECTION,
        )
        self.keepalive = self._keepalive_for(_PING_MS, _PING_TIMEOUT_MS)
        self._history = KucoinTradeHistory()
        #: request id -> (kind, streams) of the (un)subscribe frames sent: an ack names only the id
        self._requests: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}

    def __repr__(self) -> str:
        return "KucoinExchange()"

    @staticmethod
    def _keepalive_for(ping_ms: int, timeout_ms: int) -> KeepAlive:
        # no data for pingInterval + pingTimeout: the link is dead
        # the client pings every pingInterval however busy the connection: the server counts the client's pings
        return KeepAlive(
            client_ping=PING,
            ping_always=True,
            interval_s=ping_ms / 1000,
            idle_timeout_s=(ping_ms + timeout_ms) / 1000,
            connects_per_s=_CONNECTS_PER_S,
            connect_burst=_CONNECT_BURST,
        )

    # -- replay server ------------------------------------------------------------------------------------------
    def replay_protocol(self) -> ReplayProtocol:
        from ._replay import KucoinReplay  # here: the server side is only loaded by ``mdp replay`` and tests

        return KucoinReplay(self)

    # -- connecting ---------------------------------------------------------------------------------------------
    def connect_url(self, subs: Sequence[Subscription], ws_url: str) -> str:
        return ws_url

    async def negotiate(self, client: RestClient, url: str, rest_url: str | None) -> Negotiated:
        """``POST /api/v1/bullet-public`` on the REST host: connect to ``instanceServers[0].endpoint`` with the token
        and a new ``connectId``, pinging every ``pingInterval`` (ms). ``client`` (GET only) is not used: the call
        is one per connection, spaced by the collector's connection gate (weight 10 of 2000 per 30 s)."""
        target = _origin(rest_url or self.rest_url) + BULLET_PATH
        async with httpx.AsyncClient(timeout=10.0) as http:
            reply = await http.post(target)
        if reply.status_code != 200:
            raise KucoinNegotiationError(f"kucoin {BULLET_PATH}: HTTP {reply.status_code}: {reply.text[:200]}")
        return self.negotiated(reply.content)

    def negotiated(self, body: bytes | str) -> Negotiated:
        """The connection a ``bullet-public`` reply describes."""
        try:
            obj = orjson.loads(body)
            data = obj["data"]
            server = data["instanceServers"][0]
            token, endpoint = str(data["token"]), str(server["endpoint"])
            ping_ms = int(server.get("pingInterval", _PING_MS))
            timeout_ms = int(server.get("pingTimeout", _PING_TIMEOUT_MS))
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise KucoinNegotiationError(f"kucoin {BULLET_PATH}: no token/endpoint in {str(body)[:200]}") from exc
        if obj.get("code") != "200000" or not token or not endpoint or ping_ms <= 0 or timeout_ms <= 0:
            raise KucoinNegotiationError(f"kucoin {BULLET_PATH}: refused or unusable: {str(body)[:200]}")
        sep = "&" if "?" in endpoint else "?"
        url = f"{endpoint}{sep}token={quote(token, safe='')}&connectId={uuid.uuid4().hex}"
        return Negotiated(url, self._keepalive_for(ping_ms, timeout_ms))

    def subscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._requests_for("subscribe", subs)

    def unsubscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._requests_for("unsubscribe", subs)

    def _requests_for(self, kind: str, subs: Sequence[Subscription]) -> list[str]:
        by_channel: dict[str, list[str]] = {}
        for sub in dict.fromkeys(subs):
            if sub.channel not in CHANNELS:
                raise ValueError(f"kucoin: unsupported channel {sub.channel!r}; supported: {list(CHANNELS)}")
            if not sub.symbol:
                raise ValueError(f"kucoin: subscription to {sub.channel!r} needs a symbol")
            by_channel.setdefault(sub.channel, []).append(sub.symbol)
        out: list[str] = []
        for channel, symbols in by_channel.items():
            for i in range(0, len(symbols), TOPIC_SYMBOLS):
                chunk = symbols[i : i + TOPIC_SYMBOLS]
                topic = topic_of(channel, chunk)
                rid = message_id(kind, topic)
                if len(self._requests) >= 4096:
                    self._requests.clear()
                self._requests[rid] = (kind, tuple((channel, s) for s in chunk))
                msg = {"id": rid, "type": kind, "topic": topic, "privateChannel": False, "response": True}
                out.append(orjson.dumps(msg).decode())
        return out

    # -- hot path -----------------------------------------------------------------------------------------------
    #: today's pushes start with their topic: routed by the text up to the first quote after this prefix
    #: (``route_key``; the compiled receive path looks topics up without making text of the frame)
    route_prefix = ('{"topic":"', 1)

    def route_key(self, key: str) -> Route | None:
        """The route of every frame starting with ``route_prefix`` whose topic is ``key``."""
        return route_topic(key) if key.startswith("/") else None

    def route(self, frame: str) -> Route:
        topic = find_topic(frame)
        if topic is None:
            return CONTROL  # welcome, ack, pong, error
        return route_topic(topic)

    def exchange_time(self, frame: str) -> int | None:
        """The push's ``time`` in ns (level2/ticker ms, match/candles ns); None for control frames and 2021's
        level2 pushes (they had none)."""
        return time_ns(frame)

    def exchange_times(self, frames: pl.Series) -> pl.Series:
        return times_ns(frames)

    def control_events(self, frame: str) -> list[StreamEvent]:
        """An ``ack`` confirms the streams of the request with its id (a request of another process or recording:
        nothing known); an ``error`` refuses it (code and message)."""
        if '"ack"' not in frame and '"error"' not in frame:
            return []
        obj = json_object(frame)
        if obj is None:
            return []
        kind, rid = obj.get("type"), str(obj.get("id", ""))
        request = self._requests.get(rid)
        if kind == "ack":
            if request is None:
                return []
            event = SUBSCRIBED if request[0] == "subscribe" else UNSUBSCRIBED
            return [StreamEvent(event, channel, symbol) for channel, symbol in request[1]]
        if kind == "error":
            detail = f"{obj.get('code', '')}: {obj.get('data', obj.get('msg', ''))}"
            if request is None:
                return [StreamEvent(SUB_ERROR, detail=detail)]
            return [StreamEvent(SUB_ERROR, channel, symbol, detail) for channel, symbol in request[1]]
        return []

    def new_session(self, subs: Sequence[Subscription], rest_url: str | None) -> KucoinSession:
        return KucoinSession(self, subs, rest_url)

    def snapshot_url(self, symbol: str, rest_url: str | None = None) -> str:
        return f"{_origin(rest_url or self.rest_url)}{SNAPSHOT_PATH}?symbol={symbol}"

    #: BookRebuilding: level2 pushes carry ``time`` (ms) today, REST snapshots too (2021's pushes had none)
    book_time_patterns: tuple[str, ...] = (r'"time":(\d+)',)

    def book_builder(self, symbol: str, *, keep_raw: bool = False) -> KucoinBookBuilder:  # BookRebuilding
        return KucoinBookBuilder(symbol, keep_raw=keep_raw)

    def rest_cost(self, url: str) -> tuple[int, RateLimit]:
        """A REST call's documented weight in the public pool (2000 per 30 s)."""
        return _WEIGHTS.get(urlsplit(url).path.rstrip("/"), 10), KUCOIN_PUBLIC_LIMIT

    def trade_history(self, channel: str) -> TradeHistory | None:
        """``GET /api/v1/market/histories`` for "match": the last 100 trades only (see ``_history``)."""
        return self._history if channel == TRADE_CHANNEL else None

    # -- symbols and normalization ------------------------------------------------------------------------------
    def normalize_symbol(self, symbol: str) -> str:
        """KuCoin spot symbols are BASE-QUOTE already ("BTC-USDT")."""
        return symbol.upper()

    def normalize_trades(self, raw: pl.DataFrame) -> pl.DataFrame:
        return self.normalize_trades_with_rejects(raw)[0]

    def normalize_trades_with_rejects(self, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(trades, rejects) from the rows of channel "match": live pushes and REST history replies.

        One trade per push (or per REST record); ``trade_id`` is the trade's ``sequence``: the one id live pushes
        and REST history share (REST records carry no ``tradeId``; today's pushes give ``tradeId`` = ``sequence``,
        2021's a hex id). ``side`` is KuCoin's, the taker's; ``time`` is ns. ``fills`` 1; ``seq_id`` and the fill
        range are null (sequences are shared with the book's changes, so a trade's next one is not +1).
        """
        rows = raw_rows(raw, self.id, [TRADE_CHANNEL])
        return live_and_rest(rows, '{"code"', self._normalize_live, self._normalize_rest)

    def _normalize_live(self, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        if rows.height == 0:
            return empty_normalized_trades(), empty_rejects()
        decoded, ok = decode_json(rows.get_column("payload"), _MATCH_PUSH)
        rows = rows.with_columns(_decoded=ok, _data=decoded.struct.field("data"))
        d = pl.col("_data").struct
        kind = d.field("type")
        rows = rows.with_columns(
            _kind=kind,
            _symbol=pl.coalesce(d.field("symbol"), pl.when(pl.col("symbol") != "").then(pl.col("symbol"))),
            _ts=d.field("time").cast(pl.Int64, strict=False).cast(pl.Datetime("ns", "UTC")),
            _trade_id=d.field("sequence"),
            _price=d.field("price"),
            _size=d.field("size"),
            _side=d.field("side"),
            **single_fills(),
        )
        reason = (
            pl.when(pl.col("_decoded").not_())
            .then(pl.lit("payload is not a match push in the documented layout"))
            .when(pl.col("_data").is_null())
            .then(pl.lit("match push has no data"))
            .when(pl.col("payload").str.contains(_NUMERIC_DECIMAL))
            .then(pl.lit("price or size is a JSON number, not a decimal string"))
            .when(pl.col("_kind").is_null() | (pl.col("_kind") != "match"))
            .then(pl.lit("data.type is not match"))
            .when(pl.col("_trade_id").is_not_null() & pl.col("_trade_id").str.contains(r"^[0-9]+$").not_())
            .then(pl.format("sequence is not an integer: {}", pl.col("_trade_id").str.slice(0, 64)))
        )
        return split_trades(rows, exchange=self.id, normalize_symbol=self.normalize_symbol, reason=reason)

    def _normalize_rest(self, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """REST history replies (``KucoinTradeHistory.encode``): one trade per record; the symbol is the row's."""
        decoded, ok = decode_json(rows.get_column("payload"), _HISTORY_REPLY)
        items = decoded.struct.field("data")
        rows = explode_records(rows, ok, items)
        it = pl.col("_items").struct
        rows = rows.with_columns(
            _symbol=pl.when(pl.col("symbol") != "").then(pl.col("symbol")),
            _ts=it.field("time").cast(pl.Datetime("ns", "UTC")),
            _trade_id=it.field("sequence"),
            _price=it.field("price"),
            _size=it.field("size"),
            _side=it.field("side"),
            **single_fills(),
        )
        reason = (
            pl.when(pl.col("_decoded").not_())
            .then(pl.lit("payload is not a trade history reply in the documented layout"))
            .when(pl.col("payload").str.contains(_NUMERIC_DECIMAL))
            .then(pl.lit("price or size is a JSON number, not a decimal string"))
            .when(pl.col("_n").fill_null(0) == 0)
            .then(pl.lit("no trades in the REST reply"))
            .when(pl.col("_items").is_null())
            .then(pl.lit("null trade in the REST reply"))
        )
        return split_trades(rows, exchange=self.id, normalize_symbol=self.normalize_symbol, reason=reason)

    # -- typed parsing (tests and tools) -------------------------------------------------------------------------
    def parse(self, frame: str | bytes) -> list[Event]:
        """The trade or ticker of one push; [] for control frames, level2 and candles (read by their builders)."""
        obj = orjson.loads(frame)
        if not isinstance(obj, dict) or not isinstance(obj.get("data"), dict):
            return []
        channel, symbol = route_topic(str(obj.get("topic", "")))
        d: Mapping[str, Any] = obj["data"]
        if channel == TRADE_CHANNEL:
            return [
                Trade(
                    exchange=self.id,
                    channel=channel,
                    symbol=str(d.get("symbol", symbol)),
                    ts=int(d["time"]),
                    trade_id=str(d["sequence"]),
                    price=Decimal(d["price"]),
                    size=Decimal(d["size"]),
                    side=str(d["side"]),
                )
            ]
        if channel == "ticker":
            t = d.get("time", d.get("Time"))
            return [
                Ticker(
                    exchange=self.id,
                    channel=channel,
                    symbol=symbol,
                    ts=None if t is None else int(t) * 1_000_000,
                    bid_price=float(d["bestBid"]),
                    bid_size=float(d["bestBidSize"]),
                    ask_price=float(d["bestAsk"]),
                    ask_size=float(d["bestAskSize"]),
                    update_id=int(d["sequence"]),
                    last_price=float(d["price"]),
                )
            ]
        return []
