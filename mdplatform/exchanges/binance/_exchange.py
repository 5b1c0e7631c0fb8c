"""Binance spot, USD-M futures and COIN-M futures: one class, parameterized by market.

Wire format (combined streams, https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams):
every frame is ``{"stream":"<symbol>@<channel>[@<speed>]","data":{...}}``; subscribe acks are
``{"result":null,"id":N}``. The server pings, the client answers with protocol pongs (the websockets library
does this). Order books: ``<symbol>@depth@100ms`` diffs over WS plus a REST snapshot, synchronized with the
update-id rules in ``.._depth_sync``.

Trades come on two channels: ``trade`` (one fill per event, id ``t``) and ``aggTrade`` (one event per taker
order and price level, id ``a``, holding the fills ``f``..``l``). Both id sequences are contiguous per symbol.
A fill's identity across the two is its trade id: an aggTrade row's ``trade_id`` is "f" for a single fill (the
same id the trade channel gives it) and "f-l" for several.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlsplit

import orjson
import polars as pl

from ...book import BookRows, L2Book
from ...history import RateLimit

if TYPE_CHECKING:
    from ...contract import ReplayProtocol
from ...contract import (
    GAP,
    SUB_ERROR,
    Capabilities,
    CaptureHints,
    IdChain,
    KeepAlive,
    Route,
    SessionAction,
    StreamEvent,
    Subscription,
    TradeHistory,
)
from .._depth_sync import DepthSync, DiffVerdict, SnapshotVerdict
from .._events import BookDelta, BookSnapshot, Event, Level, Ticker, Trade
from .._normalize import (
    decode_json,
    empty_normalized_trades,
    empty_rejects,
    explode_records,
    live_and_rest,
    ms_to_ts,
    raw_rows,
    split_trades,
)
from .._scan import json_object, ms_after, ms_after_all
from .._snapshot_sync import SnapshotBook, SnapshotSession, snapshot_event
from .._symbols import split_quote as _split_quote
from .._urls import with_default_path
from ._history import BinanceTradeHistory, binance_rest_spec

__all__ = [
    "QUOTE_ASSETS",
    "BinanceBookBuilder",
    "BinanceExchange",
    "BinanceSession",
    "Market",
    "agg_trade_id",
    "split_quote",
]

Market = Literal["spot", "usdm", "coinm"]

CONTROL: Route = ("control", "")

#: quote assets used to split spot/USD-M symbols, longest first: a symbol takes the longest matching suffix
#: ("BTCFDUSD" -> BTC-FDUSD). Plain "USD" is deliberately absent (no Binance spot/USD-M quote; it would split
#: "BNBBUSD" wrongly); COIN-M symbols use their own table.
_QUOTE_TEXT = """
    USDT USDC FDUSD TUSD BUSD USDP USDS DAI PAX UST VAI AEUR EURI EUR GBP AUD TRY BRL JPY RUB UAH ZAR NGN PLN
    RON ARS MXN COP CZK IDRT BIDR BVND BTC ETH BNB XRP TRX DOGE DOT SOL
"""
QUOTE_ASSETS: tuple[str, ...] = tuple(sorted(_QUOTE_TEXT.split(), key=len, reverse=True))
_COINM_QUOTES: tuple[str, ...] = ("USD",)

_STREAM_SUFFIX = {
    "trade": "trade",
    "aggTrade": "aggTrade",
    "depth": "depth@100ms",
    "bookTicker": "bookTicker",
}
_CHANNELS = frozenset(_STREAM_SUFFIX)
#: what precedes a frame's exchange time: its event time ``E`` (ms)
_TIME_MARKER = '"E":'

# U and u (and pu on futures) sit next to each other near the start of every depthUpdate
_DEPTH_IDS = re.compile(r'"U":(\d+),"u":(\d+)(?:,"pu":(-?\d+))?')
_U = re.compile(r'"U":(\d+)')
_u = re.compile(r'"u":(\d+)')
_PU = re.compile(r'"pu":(-?\d+)')
_LAST_UPDATE_ID = re.compile(r'"lastUpdateId":(\d+)')


#: the fields of a trade or aggTrade event that normalization reads (the typed decode fails on rows that do not
#: fit; fields not listed, like spot's "M" or futures' "nq", are ignored). p and q stay strings: exact decimals.
_TRADE_PAYLOAD = pl.Struct(
    {
        "stream": pl.String(),
        "data": pl.Struct(
            {
                "e": pl.String(),
                "s": pl.String(),
                "t": pl.Int64(),  # trade: the trade id
                "a": pl.Int64(),  # aggTrade: its own id
                "f": pl.Int64(),  # aggTrade: first and last trade id it holds
                "l": pl.Int64(),
                "T": pl.Int64(),
                "p": pl.String(),
                "q": pl.String(),
                "m": pl.Boolean(),
            }
        ),
    }
)
_TRADE_CHANNELS = ("trade", "aggTrade")
#: p or q sent as a JSON number: polars would decode it through a float, so it is refused, never rounded
_NUMERIC_DECIMAL = r'"[pq]":\s*[-0-9]'

#: a REST history record (``TradeHistory.encode`` keeps a JSON array of them): historicalTrades fields for channel
#: "trade", aggTrades fields for "aggTrade" (others, like quoteQty/baseQty and isBestMatch, are ignored)
_REST_RECORDS = pl.List(
    pl.Struct(
        {
            "id": pl.Int64(),
            "price": pl.String(),
            "qty": pl.String(),
            "time": pl.Int64(),
            "isBuyerMaker": pl.Boolean(),
            "a": pl.Int64(),
            "p": pl.String(),
            "q": pl.String(),
            "f": pl.Int64(),
            "l": pl.Int64(),
            "T": pl.Int64(),
            "m": pl.Boolean(),
        }
    )
)
_REST_NUMERIC_DECIMAL = r'"(?:price|qty|p|q)":\s*[-0-9]'


@dataclass(frozen=True, slots=True)
class _MarketSpec:
    id: str
    ws_url: str
    rest_url: str
    futures: bool
    markets: frozenset[str]
    quotes: tuple[str, ...]
    #: recordings of this market: endpoint hosts, cryptofeed feed names
    capture: CaptureHints


_MARKETS: dict[str, _MarketSpec] = {
    "spot": _MarketSpec(
        "binance",
        "wss://stream.binance.com:9443",
        "https://api.binance.com/api/v3/depth",
        False,
        frozenset({"spot"}),
        QUOTE_ASSETS,
        CaptureHints(hosts=("stream.binance.com", "api.binance.com"), feeds=("BINANCE",)),
    ),
    "usdm": _MarketSpec(
        "binance-usdm",
        "wss://fstream.binance.com",
        "https://fapi.binance.com/fapi/v1/depth",
        True,
        frozenset({"linear-perpetual"}),
        QUOTE_ASSETS,
        CaptureHints(hosts=("fstream.binance.com", "fapi.binance.com"), feeds=("BINANCE_FUTURES",)),
    ),
    "coinm": _MarketSpec(
        "binance-coinm",
        "wss://dstream.binance.com",
        "https://dapi.binance.com/dapi/v1/depth",
        True,
        frozenset({"inverse-perpetual"}),
        _COINM_QUOTES,
        CaptureHints(hosts=("dstream.binance.com", "dapi.binance.com"), feeds=("BINANCE_DELIVERY",)),
    ),
}


def split_quote(symbol: str, quotes: Sequence[str] = QUOTE_ASSETS) -> tuple[str, str] | None:
    """("BTC", "USDT") for "BTCUSDT": the longest quote asset that is a proper suffix; None when none is."""
    return _split_quote(symbol, quotes)


def agg_trade_id(first: int, last: int) -> str:
    """The ``trade_id`` of an aggTrade holding trades ``first``..``last``: "first" for one (the id the trade
    channel gives the same fill), "first-last" for several."""
    return str(first) if first == last else f"{first}-{last}"


def _fill_columns(
    agg: pl.Expr, tid: pl.Expr, a: pl.Expr, first: pl.Expr, last: pl.Expr, m: pl.Expr
) -> dict[str, pl.Expr]:
    """The parsed id and side columns of a Binance trade, live frame or REST record alike: a trade ``tid`` is one
    fill; an aggTrade ``a`` holds fills ``first``..``last`` (trade_id "f" or "f-l", see ``agg_trade_id``). The
    taker sold when the buyer was the maker (``m``)."""
    return {
        "_trade_id": pl.when(agg.not_())
        .then(tid.cast(pl.String))
        .when(first == last)
        .then(first.cast(pl.String))
        .otherwise(pl.format("{}-{}", first, last)),
        "_side": pl.when(m).then(pl.lit("sell")).when(m.not_()).then(pl.lit("buy")),
        "_fills": pl.when(agg).then(last - first + 1).otherwise(pl.lit(1, dtype=pl.Int64)),
        "_seq_id": pl.when(agg).then(a).otherwise(tid),
        "_fill_first": pl.when(agg).then(first).otherwise(tid),
        "_fill_last": pl.when(agg).then(last).otherwise(tid),
    }


def _ms(value: object) -> int | None:
    return int(value) * 1_000_000 if isinstance(value, int) else None


def _levels(raw: Sequence[Sequence[str]]) -> tuple[Level, ...]:
    return tuple((float(p), float(q)) for p, q, *_ in raw)


class BinanceExchange:
    """One Binance market ("spot", "usdm" or "coinm")."""

    def __init__(self, market: Market) -> None:
        if market not in _MARKETS:
            raise ValueError(f"unknown Binance market {market!r}; known: {sorted(_MARKETS)}")
        spec = _MARKETS[market]
        self.market: Market = market
        self._spec = spec
        # contract attributes (the collector only reads them)
        self.id = spec.id
        self.ws_url = spec.ws_url
        self.rest_url = spec.rest_url
        self.capture_hints = spec.capture
        self.capabilities = Capabilities(
            channels=_CHANNELS,
            trade_channels=frozenset({"trade", "aggTrade"}),
            book_channels=frozenset({"depth"}),
            ticker_channels=frozenset({"bookTicker"}),
            book_sync="rest-snapshot",
            sequence_check=True,
            checksum=False,
            markets=spec.markets,
            contiguous_ids=frozenset({"trade", "aggTrade"}),
            subscribe_ack=False,
        )
        # the server pings (every 20 s spot / 3 min futures); interval_s paces the collector's own watchdog
        # 300 connections per 5 minutes per IP: 1/s sustained, a few at once
        self.keepalive = KeepAlive(
            client_ping=None, interval_s=20.0, idle_timeout_s=60.0, connects_per_s=1.0, connect_burst=5
        )
        self._histories: dict[str, BinanceTradeHistory] = {}
        # stream name -> route; bounded by the subscriptions, reset if something floods it
        self._routes: dict[str, Route] = {}

    def __repr__(self) -> str:
        return f"BinanceExchange({self.market!r})"

    # -- replay server -------------------------------------------------------------------------------------
    def replay_protocol(self) -> ReplayProtocol:
        from ._replay import BinanceReplay  # here: the server side is only loaded by ``mdp replay`` and tests

        return BinanceReplay(self)

    @property
    def futures(self) -> bool:
        return self._spec.futures

    # -- connecting ----------------------------------------------------------------------------------------
    def stream_name(self, sub: Subscription) -> str:
        """``btcusdt@depth@100ms`` for Subscription("depth", "BTCUSDT")."""
        suffix = _STREAM_SUFFIX.get(sub.channel)
        if suffix is None:
            raise ValueError(f"{self.id}: unsupported channel {sub.channel!r}; supported: {sorted(_CHANNELS)}")
        if not sub.symbol:
            raise ValueError(f"{self.id}: subscription to {sub.channel!r} needs a symbol")
        return f"{sub.symbol.lower()}@{suffix}"

    def connect_url(self, subs: Sequence[Subscription], ws_url: str) -> str:
        """Combined-stream URL ``{ws_url}/stream?streams=a/b/c`` (Binance allows up to 1024 streams)."""
        if not subs:
            raise ValueError(f"{self.id}: no subscriptions")
        streams = "/".join(dict.fromkeys(self.stream_name(s) for s in subs))
        base = ws_url.rstrip("/")
        for suffix in ("/stream", "/ws"):  # a base given with one of Binance's endpoint paths
            base = base.removesuffix(suffix)
        return f"{base}/stream?streams={streams}"

    def subscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        # the streams are in the connect URL already
        return []

    def subscribe_request(self, subs: Sequence[Subscription], request_id: int = 1, *, unsubscribe: bool = False) -> str:
        """The documented live (un)subscribe frame ``{"method":"SUBSCRIBE","params":[...],"id":N}``."""
        params = list(dict.fromkeys(self.stream_name(s) for s in subs))
        method = "UNSUBSCRIBE" if unsubscribe else "SUBSCRIBE"
        return orjson.dumps({"method": method, "params": params, "id": request_id}).decode()

    def rest_cost(self, url: str) -> tuple[int, RateLimit]:
        """A depth snapshot's documented weight (by its ``limit``, default 100) and the host's weight budget."""
        spec = binance_rest_spec(self.id)
        limits = parse_qs(urlsplit(url).query).get("limit") or ["100"]
        try:
            limit = int(limits[0])
        except ValueError:
            limit = 5000  # an unreadable limit costs what the largest does
        return spec.depth_weight(limit), spec.rate_limit

    def snapshot_url(self, symbol: str, rest_url: str | None = None, limit: int = 1000) -> str:
        base = with_default_path(rest_url, self.rest_url) if rest_url else self.rest_url
        return f"{base}?symbol={symbol.upper()}&limit={limit}"

    # -- hot path ------------------------------------------------------------------------------------------
    #: a combined-stream frame is routed by its stream name, the text up to the first quote after this prefix
    #: (``route_key``; the compiled receive path looks names up without making text of the frame)
    route_prefix = ('{"stream":"', 1)

    def route_key(self, key: str) -> Route:
        """The route of every frame starting with ``route_prefix`` whose stream name is ``key``."""
        return self._routes.get(key) or self._learn(key)

    def route(self, frame: str) -> Route:
        if frame.startswith('{"stream":"'):
            start = 11
        else:
            i = frame.find('"stream":"')
            if i < 0:
                # {"result":null,"id":1}, errors, or a stream frame laid out differently ({"stream": "x", ...})
                return self._route_spaced(frame) if '"stream"' in frame else CONTROL
            start = i + 10
        name = frame[start : frame.find('"', start)]
        route = self._routes.get(name)
        if route is None:
            route = self._learn(name)
        return route

    def _route_spaced(self, frame: str) -> Route:
        """A combined-stream frame whose JSON is spaced or ordered otherwise: decoded (rare, so affordable)."""
        obj = json_object(frame)
        if obj is None:
            return CONTROL
        name, data = obj.get("stream"), obj.get("data")
        if not isinstance(name, str) or not isinstance(data, dict):
            return CONTROL
        return self._routes.get(name) or self._learn(name)

    def exchange_time(self, frame: str) -> int | None:
        """Event time ``E`` (ms) of a stream frame or futures REST snapshot, in ns; None without one (spot
        bookTicker, spot snapshots, acks)."""
        return ms_after(frame, _TIME_MARKER)

    def exchange_times(self, frames: pl.Series) -> pl.Series:
        return ms_after_all(frames, _TIME_MARKER)

    def control_events(self, frame: str) -> list[StreamEvent]:
        """``{"result":null,"id":N}`` acknowledges a live (un)subscribe and says nothing new; an ``error``
        object (or a bare ``{"code":..,"msg":..}``) is a refused request."""
        obj = json_object(frame) if '"error"' in frame or '"code"' in frame else None
        if obj is None:
            return []
        err = obj.get("error", obj)
        if not isinstance(err, dict) or "code" not in err:
            return []
        return [StreamEvent(SUB_ERROR, detail=f"{err.get('code')}: {err.get('msg', '')}")]

    def _learn(self, name: str) -> Route:
        symbol, sep, rest = name.partition("@")
        route: Route = (rest.partition("@")[0], symbol.upper()) if sep else (name, "")
        if len(self._routes) >= 4096:
            self._routes.clear()
        self._routes[name] = route
        return route

    def new_session(self, subs: Sequence[Subscription], rest_url: str | None) -> BinanceSession:
        return BinanceSession(self, subs, rest_url or self.rest_url)

    #: BookRebuilding: depth diffs carry the event time E, futures also the transaction time T (the one the
    #: builder stamps the book with)
    book_time_patterns = (r'"T":(\d+)', r'"E":(\d+)')

    def book_builder(self, symbol: str, *, keep_raw: bool = False) -> BinanceBookBuilder:  # BookRebuilding
        return BinanceBookBuilder(symbol, futures=self.futures, keep_raw=keep_raw)

    def trade_history(self, channel: str) -> TradeHistory | None:
        """``historicalTrades`` for "trade", ``aggTrades`` for "aggTrade" (see ``_history``)."""
        if channel not in _TRADE_CHANNELS:
            return None
        history = self._histories.get(channel)
        if history is None:
            history = BinanceTradeHistory(self.market, "trade" if channel == "trade" else "aggTrade")
            self._histories[channel] = history
        return history

    # -- symbols and normalization -------------------------------------------------------------------------
    def normalize_symbol(self, symbol: str) -> str:
        """spot BTCUSDT -> BTC-USDT; usdm BTCUSDT -> BTC-USDT-PERP, BTCUSDT_240927 -> BTC-USDT-240927;
        coinm BTCUSD_PERP -> BTC-USD-PERP, BTCUSD_240927 -> BTC-USD-240927. Unknown quotes stay unchanged."""
        symbol = symbol.upper()
        pair, _, expiry = symbol.partition("_")
        split = split_quote(pair, self._spec.quotes)
        if split is None:
            return symbol
        base_quote = f"{split[0]}-{split[1]}"
        if not self.futures:
            return base_quote if not expiry else symbol
        return f"{base_quote}-{expiry or 'PERP'}"

    def normalize_trades(self, raw: pl.DataFrame) -> pl.DataFrame:
        """Raw rows -> trades (channels "trade" and "aggTrade"; see ``normalize_trades_with_rejects``)."""
        return self.normalize_trades_with_rejects(raw)[0]

    def normalize_trades_with_rejects(self, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(trades, rejects) from the rows of channels "trade" and "aggTrade".

        trades: ``mdplatform.schemas.TRADES`` then ``TRADE_LINEAGE`` (``_normalize.NORMALIZED_TRADES``), price and
        size exact from the wire strings. trade rows: ``trade_id`` t, ``fills`` 1, ``seq_id`` = ``fill_first`` =
        ``fill_last`` = t. aggTrade rows: ``trade_id`` "f" or "f-l" (``agg_trade_id``), ``fills`` l - f + 1,
        ``seq_id`` a, ``fill_first`` f, ``fill_last`` l. Both channels report the same fills: the rows stay apart
        by ``channel`` and match by fill id; choosing between them is the transforms' job.
        rejects: the raw rows that did not parse, plus a ``reason`` column.
        """
        rows = raw_rows(raw, self.id, _TRADE_CHANNELS)
        # REST history records (``BinanceTradeHistory.encode``): a JSON array, not a combined-stream event
        return live_and_rest(rows, "[", self._normalize_live, self._normalize_rest)

    def _normalize_live(self, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        if rows.height == 0:
            return empty_normalized_trades(), empty_rejects()
        # one typed decode of the whole column (several times faster than one json_path_match per field)
        decoded, ok = decode_json(rows.get_column("payload"), _TRADE_PAYLOAD)
        rows = rows.with_columns(_decoded=ok, _data=decoded.struct.field("data"))
        d = pl.col("_data").struct
        m = d.field("m")
        agg = pl.col("channel") == "aggTrade"
        # Binance names: t trade id; a aggTrade id holding trade ids f..l
        t, a, first, last = d.field("t"), d.field("a"), d.field("f"), d.field("l")
        rows = rows.with_columns(
            _event=d.field("e"),
            _symbol=pl.coalesce(d.field("s"), pl.when(pl.col("symbol") != "").then(pl.col("symbol"))),
            _ts=ms_to_ts(d.field("T")),
            _price=d.field("p"),
            _size=d.field("q"),
            **_fill_columns(agg, t, a, first, last, m),
        )
        event = pl.col("_event")
        reason = (
            pl.when(pl.col("_decoded").not_())
            .then(pl.lit("payload is not a trade event in the documented layout"))
            .when(pl.col("_data").is_null())
            .then(pl.lit("payload is not a combined-stream event"))
            .when(pl.col("payload").str.contains(_NUMERIC_DECIMAL))
            .then(pl.lit("price or size is a JSON number, not a decimal string"))
            .when(event.is_null() | (event != pl.col("channel")))
            .then(pl.format("event type is not {}", pl.col("channel")))
            .when(agg & (a.is_null() | first.is_null() | last.is_null()))
            .then(pl.lit("aggTrade lacks its id a or its trade ids f/l"))
            .when(agg & (last < first))
            .then(pl.format("aggTrade last trade id l={} is before its first f={}", last, first))
        )
        return split_trades(rows, exchange=self.id, normalize_symbol=self.normalize_symbol, reason=reason)

    def _normalize_rest(self, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """REST history rows: one trade per record of the array, the same row the live frame of that trade gives
        (``historicalTrades``: id, price, qty, time, isBuyerMaker; ``aggTrades``: a p q f l T m); the symbol is
        the raw row's own."""
        decoded, ok = decode_json(rows.get_column("payload"), _REST_RECORDS)
        rows = explode_records(rows, ok, decoded)
        it = pl.col("_items").struct
        agg = pl.col("channel") == "aggTrade"
        rid, a, first, last = it.field("id"), it.field("a"), it.field("f"), it.field("l")
        m = pl.when(agg).then(it.field("m")).otherwise(it.field("isBuyerMaker"))
        rows = rows.with_columns(
            _symbol=pl.when(pl.col("symbol") != "").then(pl.col("symbol")),
            _ts=ms_to_ts(pl.when(agg).then(it.field("T")).otherwise(it.field("time"))),
            _price=pl.when(agg).then(it.field("p")).otherwise(it.field("price")),
            _size=pl.when(agg).then(it.field("q")).otherwise(it.field("qty")),
            **_fill_columns(agg, rid, a, first, last, m),
        )
        reason = (
            pl.when(pl.col("_decoded").not_())
            .then(pl.lit("payload is not a REST trade list in the documented layout"))
            .when(pl.col("payload").str.contains(_REST_NUMERIC_DECIMAL))
            .then(pl.lit("price or size is a JSON number, not a decimal string"))
            .when(pl.col("_n").fill_null(0) == 0)
            .then(pl.lit("no trades in the REST reply"))
            .when(pl.col("_items").is_null())
            .then(pl.lit("null trade in the REST reply"))
            .when(agg & (a.is_null() | first.is_null() | last.is_null()))
            .then(pl.lit("aggTrades record lacks its id a or its trade ids f/l"))
            .when(agg & (last < first))
            .then(pl.format("aggTrades record's last trade id l={} is before its first f={}", last, first))
            .when(agg.not_() & rid.is_null())
            .then(pl.lit("historicalTrades record lacks its id"))
        )
        return split_trades(rows, exchange=self.id, normalize_symbol=self.normalize_symbol, reason=reason)

    # -- typed parsing (tests and tools) -------------------------------------------------------------------
    def parse(self, frame: str | bytes) -> list[Event]:
        """All events in one frame (or one REST snapshot body); [] for acks and unknown messages."""
        obj = orjson.loads(frame)
        if not isinstance(obj, dict):
            return []
        if "lastUpdateId" in obj:
            return [self.parse_snapshot("", obj)]
        stream = obj.get("stream")
        data = obj.get("data") if stream is not None else obj
        if not isinstance(data, dict):
            return []
        if isinstance(stream, str):
            channel = (self._routes.get(stream) or self._learn(stream))[0]
        else:
            channel = _channel_of(data)
        event = self._event(channel, data)
        return [] if event is None else [event]

    def parse_snapshot(self, symbol: str, body: str | bytes | Mapping[str, Any]) -> BookSnapshot:
        obj = orjson.loads(body) if isinstance(body, str | bytes) else body
        return BookSnapshot(
            exchange=self.id,
            channel="depthSnapshot",
            symbol=symbol,
            ts=_ms(obj.get("T", obj.get("E"))),
            bids=_levels(obj["bids"]),
            asks=_levels(obj["asks"]),
            update_id=int(obj["lastUpdateId"]),
        )

    def _event(self, channel: str, d: Mapping[str, Any]) -> Event | None:
        xid = self.id
        if channel == "trade" or channel == "aggTrade":
            agg = channel == "aggTrade"
            first, last = (int(d["f"]), int(d["l"])) if agg else (int(d["t"]), int(d["t"]))
            return Trade(
                exchange=xid,
                channel=channel,
                symbol=d["s"],
                ts=int(d["T"]) * 1_000_000,
                trade_id=agg_trade_id(first, last) if agg else str(first),
                price=Decimal(d["p"]),
                size=Decimal(d["q"]),
                side="sell" if d["m"] else "buy",
                fills=last - first + 1,
            )
        if channel == "depth":
            pu = d.get("pu")
            return BookDelta(
                exchange=xid,
                channel=channel,
                symbol=d["s"],
                ts=_ms(d.get("T", d.get("E"))),
                bids=_levels(d["b"]),
                asks=_levels(d["a"]),
                first_update_id=int(d["U"]),
                last_update_id=int(d["u"]),
                prev_update_id=None if pu is None else int(pu),
            )
        if channel == "bookTicker":
            return Ticker(
                exchange=xid,
                channel=channel,
                symbol=d["s"],
                ts=_ms(d.get("T", d.get("E"))),
                bid_price=float(d["b"]),
                bid_size=float(d["B"]),
                ask_price=float(d["a"]),
                ask_size=float(d["A"]),
                update_id=int(d["u"]),
            )
        return None


def _channel_of(data: Mapping[str, Any]) -> str:
    """Channel of a raw (non-combined) stream payload."""
    e = data.get("e")
    if e == "depthUpdate":
        return "depth"
    if e is None and "u" in data and "B" in data and "A" in data:
        return "bookTicker"  # spot bookTicker has no event type
    return str(e or "")


#: where a depth frame's ids are, for checks outside the session (``IdChain``)
_SPOT_CHAIN = IdChain(b'"U":', b'"u":')
_FUTURES_CHAIN = IdChain(b'"U":', b'"u":', b'"pu":')


def _depth_ids(frame: str) -> tuple[int, int, int] | None:
    m = _DEPTH_IDS.search(frame)
    if m is not None:
        pu = m.group(3)
        return int(m.group(1)), int(m.group(2)), -1 if pu is None else int(pu)
    # field order is not a documented guarantee: fall back to one search per field
    mu, ml = _U.search(frame), _u.search(frame)
    if mu is None or ml is None:
        return None
    mp = _PU.search(frame)
    return int(mu.group(1)), int(ml.group(1)), -1 if mp is None else int(mp.group(1))


class BinanceSession(SnapshotSession):
    """Per-connection book sync on update ids only (the full book is not kept on the hot path)."""

    def __init__(self, exchange: BinanceExchange, subs: Sequence[Subscription], rest_url: str) -> None:
        super().__init__(exchange, rest_url, futures=exchange.futures)
        for sub in subs:
            if sub.channel == "depth":
                self._sync(sub.symbol.upper())

    def _channel_of(self, symbol: str) -> str:
        return "depth"

    def id_chain(self, channel: str) -> IdChain | None:
        # the rules of DepthSync.in_sequence: futures chain pu to the previous u, spot U..u ranges
        if channel != "depth":
            return None
        return _FUTURES_CHAIN if self._futures else _SPOT_CHAIN

    def on_frame(self, channel: str, symbol: str, frame: str) -> SessionAction | None:
        if channel != "depth":
            return None
        ids = _depth_ids(frame)
        if ids is None:
            # the book's update chain cannot go through this frame: the collector quarantines it (frame_error),
            # marks the stream out of sync and starts the book over
            self.errors += 1
            raise ValueError(f"{self._exchange.id} {symbol}: depth frame without U/u update ids")
        sync = self._syncs.get(symbol) or self._sync(symbol)
        return self._diff_action(symbol, sync, sync.on_diff(ids[0], ids[1], ids[2], None))

    def on_snapshot(self, symbol: str, body: str) -> SessionAction | None:
        symbol = symbol.upper()
        m = _LAST_UPDATE_ID.search(body)
        if m is None:
            # no immediate retry (an error body would loop); the sync asks again after more diffs
            self.errors += 1
            return SessionAction(error=f"{self._exchange.id} {symbol}: snapshot without lastUpdateId: {body[:200]}")
        return self._snapshot_action(symbol, self._sync(symbol), int(m.group(1)))

    def last_update_id(self, symbol: str) -> int:
        return self._syncs[symbol.upper()].last_update_id


_Diff = tuple[list[list[str]], list[list[str]], int | None]


#: the raw channel the collector lands REST depth snapshots under
SNAPSHOT_CHANNEL = "depthSnapshot"


class BinanceBookBuilder(SnapshotBook[_Diff]):
    """Snapshot + diffs -> an ``L2Book``, under the same rules as the session (shared ``DepthSync``).

    Feed it depth frames (``on_depth``) and REST snapshot bodies (``on_snapshot``) in arrival order; it
    buffers diffs until a usable snapshot arrives, applies them, and clears the book on a gap (then
    ``needs_snapshot`` is True until a new snapshot is given).
    """

    def __init__(self, symbol: str, *, futures: bool, keep_raw: bool = False) -> None:
        self.symbol = symbol.upper()
        self.book = L2Book(self.symbol, keep_raw=keep_raw)
        self.sync: DepthSync[_Diff] = DepthSync(futures=futures)
        #: True when a snapshot should be (re)fetched
        self.needs_snapshot = False
        self.gaps = 0
        self.applied = 0

    def on_depth(self, frame: str | bytes | Mapping[str, Any]) -> DiffVerdict:
        """A depth frame (combined-stream wrapper or bare ``depthUpdate``), as text or decoded."""
        obj = orjson.loads(frame) if isinstance(frame, str | bytes) else frame
        d = obj.get("data", obj)
        pu = d.get("pu")
        ts = _ms(d.get("T", d.get("E")))
        item: _Diff = (d["b"], d["a"], ts)
        verdict = self.sync.on_diff(int(d["U"]), int(d["u"]), -1 if pu is None else int(pu), item)
        if verdict == DiffVerdict.APPLY:
            self.book.apply(item[0], item[1], update_id=self.sync.last_update_id, ts=ts)
            self.applied += 1
        elif verdict == DiffVerdict.GAP:
            self.gaps += 1
            self.book.clear()
            self.needs_snapshot = True
        elif verdict == DiffVerdict.FETCH:
            self.needs_snapshot = True
        return verdict

    def on_snapshot(self, body: str | bytes | Mapping[str, Any]) -> SnapshotVerdict:
        obj = orjson.loads(body) if isinstance(body, str | bytes) else body
        snap = int(obj["lastUpdateId"])
        verdict, items = self.sync.on_snapshot(snap)
        if verdict == SnapshotVerdict.SYNCED:
            self.needs_snapshot = False
            self._load_synced(obj["bids"], obj["asks"], snap, _ms(obj.get("T", obj.get("E"))), items)
        elif verdict == SnapshotVerdict.GAP:
            self.gaps += 1
        return verdict

    # -- the BookBuilder contract (offline rebuild from the lake) ------------------------------------------
    channels: frozenset[str] = frozenset({"depth", SNAPSHOT_CHANNEL})

    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        """A raw row: ``depth`` frames and the REST replies the collector lands as ``depthSnapshot``."""
        if channel == "depth":
            if self.on_depth(payload) == DiffVerdict.GAP:
                return StreamEvent(GAP, "depth", self.symbol, self.sync.gap_detail)
            return None
        if channel == SNAPSHOT_CHANNEL:
            return snapshot_event(self.on_snapshot(payload), "depth", self.symbol, self.sync.gap_detail)
        return None

    def on_raw_run(self, rows: BookRows, start: int, stop: int) -> int:
        """Apply ``rows`` from ``start`` (before ``stop``) while each is a ``depth`` diff continuing the synced
        chain, read from its JSON bytes by compiled code (``L2Book.levels.depth_run``, under the rule of
        ``DepthSync.in_sequence``); returns the index of the first row not applied (a snapshot, a diff out of that
        plain sequence, anything the compiled reader does not take whole), which ``on_raw`` decides."""
        sync = self.sync
        if not sync.in_sequence or start >= stop:
            return start
        book = self.book
        offsets, data, base = rows.payload_buffers()
        end, last, ts = book.levels.depth_run(
            offsets, data, base, len(rows), rows.takes("depth"), start, stop, sync.last_update_id, sync.futures
        )
        if end > start:
            sync.advance(last)
            book.update_id = last
            if ts is not None:
                book.ts = ts * 1_000_000
            self.applied += end - start
        return end

    def _restored(self, state: Mapping[str, Any]) -> None:
        self.needs_snapshot = False
