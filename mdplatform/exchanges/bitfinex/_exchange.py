"""Bitfinex public WebSocket v2 (wss://api-pub.bitfinex.com/ws/2), as documented today (checked 2026-12).

Pages followed (docs.bitfinex.com): "General" (/docs/ws-general: version 2.0, the public host, ``conf`` flags,
``info`` events and their codes, heartbeats ``[CHANNEL_ID, "hb"]``, ``{"event":"ping"}``/``pong``), "Public Channels"
(/docs/ws-public: 20 connections per minute on api-pub, 25 channels per connection), "Trades"
(/reference/ws-public-trades), "Books" (/reference/ws-public-books), "Ticker" (/reference/ws-public-ticker),
"WebSocket Checksum" (/docs/ws-websocket-checksum); REST "Trades" (/reference/rest-public-trades) in ``_history``.

Wire format: one ``{"event":"subscribe","channel":C,"symbol":S}`` per stream (books add ``prec``/``freq``/``len``);
Bitfinex answers ``{"event":"subscribed","channel":C,"chanId":N,"symbol":S,...}`` and every data frame of that
stream is then an array ``[N, ...]``: the route of a frame is only known from the ``subscribed`` events received
before it on the same connection (``connection_router``, a router per connection: ``ConnectionRouting``). After
connecting the client sends ``{"event":"conf","flags":65536+131072}``: sequence numbers on every message (SEQ_ALL) and
book checksums (OB_CHECKSUM). Events (``info``, ``conf``, ``subscribed``, ``unsubscribed``, ``error``, ``pong``) are
channel "control".

Heartbeats: ``[N,"hb"]`` every 15 s of a channel's silence. They keep the connection alive (any frame resets the idle
watchdog; the client also sends ``{"event":"ping"}`` after 20 s of silence) and, with SEQ_ALL, carry a sequence
number like every other frame: so they are routed to their own stream (channel, symbol), not to "control", where
the live session (which checks the connection-wide sequence) would not see them. Normalization skips them.

Trades: the snapshot on subscribe ``[N, [[ID, MTS, AMOUNT, PRICE], ...]]`` (the latest trades, newest first), then
``[N, "te", [ID, MTS, AMOUNT, PRICE]]`` when a trade executes and ``[N, "tu", [...]]`` with the same ID once settled.
Every frame is landed; a trade is normalized once per ID: the ``tu`` version, else ``te``, else a snapshot's (so a
resubscription's snapshot repeats nothing). AMOUNT > 0: the taker bought; < 0: sold; size |AMOUNT|. Trade ids are
exchange-wide (pairs share one counter), so they are not contiguous per pair (the recording shows it): no
``contiguous_ids``. Numbers are JSON numbers: read as their text (``_wire``), never a float.

Symbols: ``tBTCUSD`` -> ``BTC-USD``; a colon splits long names (``tTESTBTC:TESTUSD`` -> ``TESTBTC-TESTUSD``);
Bitfinex's ``UST`` is Tether (``tBTCUST`` -> ``BTC-USDT``); derivatives ``tBTCF0:USTF0`` -> ``BTC-USDT-PERP``.
Books carry no exchange time: book samples use the receive clock (``book_time_patterns`` empty); trades carry MTS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import orjson
import polars as pl

from ...contract import (
    SUB_ERROR,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Capabilities,
    CaptureHints,
    KeepAlive,
    Route,
    StreamEvent,
    Subscription,
    TradeHistory,
)
from ...history import RateLimit
from .._normalize import empty_normalized_trades, empty_rejects, ms_to_ts, raw_rows, single_fills, split_trades
from .._scan import json_object
from .._urls import with_default_path
from ._book import BOOK_CHANNEL, BitfinexBookBuilder, BitfinexSession, book_subscribe
from ._history import BitfinexTradeHistory
from ._wire import OB_CHECKSUM, SEQ_ALL, plain

if TYPE_CHECKING:
    from ...contract import ReplayProtocol

__all__ = ["CONF_FLAGS", "BitfinexExchange"]

CONTROL: Route = ("control", "")
TRADES = "trades"
#: the channel of data frames whose chanId no ``subscribed`` event has named yet: Bitfinex sends heartbeats of a
#: subscription still in progress (the recording has ``[232954,"hb",139]`` 7 s before 232954's ``subscribed``); they
#: carry a sequence number, so the live session must see them (``session_channels``), and they are about no stream
PENDING: Route = ("pending", "")
TICKER = "ticker"
#: sent first on every connection: sequence numbers and book checksums
CONF_FLAGS = SEQ_ALL + OB_CHECKSUM
#: "Public Channels": 25 channels per connection
_CHANNELS_PER_CONNECTION = 25
#: learned channel ids kept beyond any connection (for ``route`` and ``control_events``); cleared past this many
_MAX_KNOWN_CHANNELS = 100_000

#: the exchange time of a trades frame: MTS, the second field of a te/tu trade or of a snapshot's first (newest)
#: trade (13 digits: a book snapshot's second field is a count, a ticker's a decimal)
_TIME = r'^\[\s*\d+\s*,\s*(?:"t[eu]"\s*,\s*)?\[\[?\s*\d+\s*,\s*(\d{12,14})\s*,'
_TIME_RE = re.compile(_TIME)
_KIND = r'^\[\s*\d+\s*,\s*"(\w+)"'
_UPDATE_BODY = r'^\[\s*\d+\s*,\s*"t[eu]"\s*,\s*\[([^\[\]]*)\]'
_SNAPSHOT_BODY = r"^\[\s*\d+\s*,\s*\[(.*)\]\s*(?:,\s*\d+\s*)?\]$"
_ITEM = r"\[([^\[\]]*)\]"
_NUMBER = r"^-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$"
#: what a trade normalizes from, best first: the settled version (tu), the executed one (te), a snapshot's
_RANK = {"tu": 0, "te": 1}


def _quote(name: str) -> str:
    if name.endswith("F0"):
        name = name[:-2]
    return "USDT" if name == "UST" else name


class _Router:
    """One connection's routes: chanId -> (channel, symbol) learned from the ``subscribed`` events routed through it;
    a chanId not named yet is ``PENDING``."""

    __slots__ = ("chans", "shared")

    def __init__(self, shared: dict[str, Route]) -> None:
        self.chans: dict[str, Route] = {}
        self.shared = shared

    def __call__(self, frame: str) -> Route:
        if frame.startswith("["):
            end = frame.find(",", 1)
            route = self.chans.get(frame[1:end])
            return route if route is not None else PENDING
        if '"subscribed"' in frame:
            obj = json_object(frame)
            if obj is not None and obj.get("event") == "subscribed" and obj.get("chanId") is not None:
                key = str(obj["chanId"])
                route = (str(obj.get("channel", "")), str(obj.get("symbol", "")))
                self.chans[key] = route
                if len(self.shared) >= _MAX_KNOWN_CHANNELS:
                    self.shared.clear()
                self.shared[key] = route
        return CONTROL


class BitfinexExchange:
    """Bitfinex v2 public channels: book (P0), trades, ticker; spot pairs and derivatives (``tBTCF0:USTF0``)."""

    #: contract attributes (the collector only reads them)
    id = "bitfinex"
    ws_url = "wss://api-pub.bitfinex.com/ws/2"
    rest_url: str | None = None  # books come over the WebSocket
    capture_hints = CaptureHints(hosts=("api.bitfinex.com/ws/2", "api-pub.bitfinex.com"), feeds=("BITFINEX",))

    def __init__(self) -> None:
        self.capabilities = Capabilities(
            channels=frozenset({BOOK_CHANNEL, TRADES, TICKER}),
            trade_channels=frozenset({TRADES}),
            book_channels=frozenset({BOOK_CHANNEL}),
            ticker_channels=frozenset({TICKER}),
            book_sync="ws-snapshot",
            sequence_check=True,
            checksum=True,
            markets=frozenset({"spot"}),  # derivatives (tBTCF0:USTF0) map to -PERP symbols; untested on their frames
            subscribe_ack=True,
            streams_per_connection=_CHANNELS_PER_CONNECTION,
            # SEQ_ALL numbers every frame of the connection: the session must see trades and tickers too
            session_channels=frozenset({TRADES, TICKER, PENDING[0]}),
        )
        # heartbeats every 15 s per channel; api-pub accepts 20 connections per minute
        self.keepalive = KeepAlive(
            client_ping='{"event":"ping","cid":1}',
            interval_s=20.0,
            idle_timeout_s=40.0,
            connects_per_s=20 / 60,
            connect_burst=5,
        )
        self._history = BitfinexTradeHistory()
        #: chanId -> route learned by every router (chanIds are unique on the server): ``route`` without a router
        #: and ``unsubscribed`` events (which name only the chanId) use it
        self._known: dict[str, Route] = {}

    def __repr__(self) -> str:
        return "BitfinexExchange()"

    def replay_protocol(self) -> ReplayProtocol:
        from ._replay import BitfinexReplay  # here: the server side is only loaded by ``mdp replay`` and tests

        return BitfinexReplay(self)

    # -- connecting ----------------------------------------------------------------------------------------
    def connect_url(self, subs: Sequence[Subscription], ws_url: str) -> str:
        return with_default_path(ws_url, self.ws_url)

    def subscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        """``conf`` (sequence numbers, checksums), then one subscribe request per stream."""
        conf = orjson.dumps({"event": "conf", "flags": CONF_FLAGS}).decode()
        return [conf, *self.stream_requests(subs)]

    def stream_requests(self, subs: Sequence[Subscription]) -> list[str]:
        out: list[str] = []
        for sub in dict.fromkeys(subs):
            if sub.channel not in self.capabilities.channels or not sub.symbol:
                raise ValueError(f"bitfinex: unknown channel or empty symbol in {sub}")
            if sub.channel == BOOK_CHANNEL:
                out.append(book_subscribe(sub.symbol))
            else:
                out.append(orjson.dumps({"event": "subscribe", "channel": sub.channel, "symbol": sub.symbol}).decode())
        return out

    # -- hot path ------------------------------------------------------------------------------------------
    def connection_router(self) -> Callable[[str], Route]:
        """A router for one connection (ConnectionRouting): it learns chanIds from the ``subscribed`` events."""
        return _Router(self._known)

    def route(self, frame: str) -> Route:
        """Without a connection's router: events are control, data frames go by the chanIds learned so far."""
        if frame.startswith("["):
            end = frame.find(",", 1)
            return self._known.get(frame[1:end].strip(), PENDING)
        return _Router(self._known)(frame)

    def exchange_time(self, frame: str) -> int | None:
        """MTS (ms) of a trade frame (te/tu, or a snapshot's newest trade), in ns; None for every other frame."""
        m = _TIME_RE.match(frame)
        return int(m.group(1)) * 1_000_000 if m else None

    def exchange_times(self, frames: pl.Series) -> pl.Series:
        return frames.str.extract(_TIME, 1).cast(pl.Int64, strict=False) * 1_000_000

    def control_events(self, frame: str) -> list[StreamEvent]:
        obj = json_object(frame) if frame.startswith("{") else None
        if obj is None:
            return []
        event = obj.get("event")
        channel, symbol = str(obj.get("channel", "")), str(obj.get("symbol", ""))
        if event == "subscribed":
            return [StreamEvent(SUBSCRIBED, channel, symbol)]
        if event == "unsubscribed":
            channel, symbol = self._known.get(str(obj.get("chanId", "")), ("", ""))
            return [StreamEvent(UNSUBSCRIBED, channel, symbol)]
        if event == "error":
            return [StreamEvent(SUB_ERROR, channel, symbol, f"{obj.get('code', '')}: {obj.get('msg', '')}")]
        return []

    def new_session(self, subs: Sequence[Subscription], rest_url: str | None) -> BitfinexSession:
        return BitfinexSession(subs)

    #: BookRebuilding: book frames carry no exchange time (samples take the receive clock)
    book_time_patterns: tuple[str, ...] = ()

    def book_builder(self, symbol: str, *, keep_raw: bool = True) -> BitfinexBookBuilder:
        return BitfinexBookBuilder(symbol)

    def rest_cost(self, url: str) -> tuple[int, RateLimit]:
        return 1, self._history.rate_limit

    def trade_history(self, channel: str) -> TradeHistory | None:
        return self._history if channel == TRADES else None

    # -- symbols and normalization -------------------------------------------------------------------------
    def normalize_symbol(self, symbol: str) -> str:
        name = symbol[1:] if symbol[:1] in ("t", "f") else symbol
        if ":" in name:
            base, quote = name.split(":", 1)
        elif len(name) == 6:
            base, quote = name[:3], name[3:]
        else:
            return name
        perp = base.endswith("F0") and quote.endswith("F0")
        out = f"{_quote(base)}-{_quote(quote)}"
        return out + "-PERP" if perp else out

    def normalize_trades(self, raw: pl.DataFrame) -> pl.DataFrame:
        return self.normalize_trades_with_rejects(raw)[0]

    def normalize_trades_with_rejects(self, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(trades, rejects) of "trades" rows: every trade of snapshots, ``te`` and ``tu`` frames, once per (symbol,
        ID) (the ``tu`` version first, then ``te``, then a snapshot's); heartbeats and empty snapshots hold none.
        Rejects: rows in no documented trades layout, trades that are not ``[ID, MTS, AMOUNT, PRICE]``."""
        rows = raw_rows(raw, self.id, [TRADES])
        if rows.height == 0:
            return empty_normalized_trades(), empty_rejects()
        payload = pl.col("payload")
        kind = payload.str.extract(_KIND, 1)
        rows = rows.with_columns(_kind=kind).filter(pl.col("_kind").is_null() | (pl.col("_kind") != "hb"))
        update = pl.col("_kind").is_in(["te", "tu"])
        snapshot_body = payload.str.extract(_SNAPSHOT_BODY, 1)
        rows = rows.with_columns(
            _items=pl.when(update)
            .then(pl.concat_list(payload.str.extract(_UPDATE_BODY, 1)))
            .when(pl.col("_kind").is_null())
            # a snapshot lists the newest trade first: reversed, trades come out in execution order
            .then(snapshot_body.str.extract_all(_ITEM).list.reverse())
            .otherwise(pl.lit(None, dtype=pl.List(pl.String))),
            _empty=pl.col("_kind").is_null() & snapshot_body.str.strip_chars().eq(""),
            _rank=pl.col("_kind").replace_strict(_RANK, default=2, return_dtype=pl.Int8),
        ).filter(~pl.col("_empty").fill_null(False))
        if rows.height == 0:
            return empty_normalized_trades(), empty_rejects()
        rows = rows.with_columns(_n=pl.col("_items").list.len()).explode("_items", empty_as_null=True, keep_nulls=True)
        fields = pl.col("_items").str.strip_chars("[] ").str.split(",").list.eval(pl.element().str.strip_chars())
        rows = rows.with_columns(_fields=fields)
        f = pl.col("_fields").list
        amount = f.get(2, null_on_oob=True)
        price = f.get(3, null_on_oob=True)
        rows = rows.with_columns(
            _symbol=pl.when(pl.col("symbol") != "").then(pl.col("symbol")),
            _ts=ms_to_ts(f.get(1, null_on_oob=True)),
            _trade_id=f.get(0, null_on_oob=True),
            _price=price,
            _size=amount.str.strip_prefix("-"),
            _side=pl.when(amount.str.starts_with("-")).then(pl.lit("sell")).otherwise(pl.lit("buy")),
            **single_fills(),
        )
        rows = _plain_exponents(rows)
        reason = (
            pl.when(pl.col("_kind").is_not_null() & ~update)
            .then(pl.format("not a trades frame of the documented layout: {}", pl.col("_kind")))
            .when(pl.col("_items").is_null())
            .then(pl.lit("payload is not a trades snapshot or te/tu update in the documented layout"))
            .when(f.len() != 4)
            .then(pl.format("trade is not [ID, MTS, AMOUNT, PRICE]: {}", pl.col("_items").str.slice(0, 64)))
            .when(~pl.col("_trade_id").str.contains(r"^[0-9]+$"))
            .then(pl.lit("trade ID is not an integer"))
            .when(~amount.str.contains(_NUMBER) | ~price.str.contains(_NUMBER))
            .then(pl.lit("AMOUNT or PRICE is not a JSON number"))
        )
        rows = rows.with_row_index("_row")
        trades, rejects = split_trades(rows, exchange=self.id, normalize_symbol=self.normalize_symbol, reason=reason)
        return _once_per_id(trades, rows), rejects


def _plain_exponents(rows: pl.DataFrame) -> pl.DataFrame:
    """``_price``/``_size`` written with an exponent (``2e-8``) as plain decimals, exactly (``Decimal``, rare rows)."""
    exp = pl.col("_price").str.contains("[eE]").fill_null(False) | pl.col("_size").str.contains("[eE]").fill_null(False)
    if not rows.select(exp.any()).item():
        return rows
    return rows.with_columns(
        pl.when(exp).then(pl.col(c).map_elements(plain, return_dtype=pl.String)).otherwise(pl.col(c)).alias(c)
        for c in ("_price", "_size")
    )


def _once_per_id(trades: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """One trade per (symbol, trade_id): the best-ranked version (tu, te, snapshot), then the first received; the
    trades keep their order."""
    if trades.height == 0:
        return trades
    ranks = rows.select("conn_id", "seq", "_rank").unique(subset=["conn_id", "seq"], keep="first")
    ranked = trades.with_row_index("_order").join(ranks, on=["conn_id", "seq"], how="left")
    kept = (
        ranked.sort(["_rank", "_order"], nulls_last=True)
        .unique(subset=["symbol", "trade_id"], keep="first", maintain_order=True)
        .sort("_order")
    )
    return kept.drop("_order", "_rank")
