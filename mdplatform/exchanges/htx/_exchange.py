"""HTX (Huobi) market WebSocket: spot (wss://api.huobi.pro/ws and, for incremental MBP books, /feed), USDT-margined
swaps (wss://api.hbdm.com/linear-swap-ws) and coin-margined swaps (wss://api.hbdm.com/swap-ws).

Pages followed (checked 2026-12 with the documentation search; HTX's own pages are
https://www.htx.com/en-us/opend/newApiPages/, mirrored as "HTX Public WebSocket API Documentation"):
- Spot "Websocket Market Data / Introduction": every frame gzip-compressed (``BinaryFrames``); the server pings
  ``{"ping": 1492420473027}`` every 5 s and drops a client that leaves two in a row unanswered by
  ``{"pong": 1492420473027}`` (``Answering``); ``{"sub": topic, "id": ..}`` acked ``{"id":..,"status":"ok",
  "subbed":..,"ts":..}``; errors ``{"status":"error","err-code":"bad-request","err-msg":"invalid topic"..}``; a
  ``req`` at most every 100 ms per connection.
- "market.$symbol.trade.detail": ``tick.data[]`` items with ``tradeId`` ("Unique trade id (NEW)"), ``amount`` (base
  currency), ``price``, ``ts`` (ms), ``direction`` ("direction of the trade (taker)"); "market.$symbol.bbo" (best
  bid/offer, tick by tick); "market.$symbol.mbp.$levels" and its ``req`` refresh (see ``_book``); "market.$symbol.
  depth.$type" (whole book every second).
- USDT-margined swaps, "[General] Subscribe Trade Detail Data" (``id`` "Unique Transaction Id (symbol level)",
  ``amount`` in contracts, ``quantity`` in coin, ``direction`` the taker's), "market.$contract_code.bbo",
  "market.$contract_code.depth.size_${size}.high_freq" with ``"data_type":"incremental"`` (see ``_book``).

Trade ids: spot ``tradeId`` numbers each symbol's trades one by one: the 2021 recording's ids run without a hole per
symbol (56 in a row on fil3susdt, out of order within a push), so spot "trade.detail" claims contiguous ids (HTX's
page itself only says "unique"). Swap trade ids are ``order id * 10000 + n``: not contiguous.
Sizes: spot ``amount`` (base); USDT-margined swaps ``quantity`` (coin: contracts times face value, exact); coin-margined
swaps ``amount`` (contracts, as Binance coin-M sizes are): their coin ``quantity`` is a division with 30+ decimals.
Channels are the topic's tail after the symbol ("trade.detail", "mbp.150", "bbo", "depth.size_150.high_freq").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

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
from .._normalize import empty_normalized_trades, empty_rejects, ms_to_ts, raw_rows, split_trades
from .._scan import json_object, ms_after, ms_after_all
from .._symbols import split_quote
from ._book import MBP_CHANNELS, HtxBookBuilder, HtxSession, is_high_freq, is_mbp
from ._history import HtxTradeHistory
from ._wire import gunzip_text, plain_decimal, route_frame, split_topic, topic

if TYPE_CHECKING:
    from ...contract import ReplayProtocol

__all__ = ["FEED_PATH", "HtxExchange", "Market"]

Market = Literal["spot", "linear", "inverse"]

TRADES = "trade.detail"
_TIME_MARKER = '"ts":'
#: quote currencies of HTX spot symbols (lower case, concatenated: "btcusdt"), longest first so "husd" wins over "usd"
_QUOTES = tuple(
    sorted(
        ("usdt", "usdc", "usdd", "husd", "tusd", "busd", "fdusd", "usd", "btc", "eth", "ht", "trx", "eur", "gbp"),
        key=len,
        reverse=True,
    )
)
#: a flat JSON object holding a trade (a push's ``tick.data`` item, a REST record): nothing nests inside one
_TRADE_OBJECT = r'\{[^{}]*"direction"[^{}]*\}'
#: a field's value as written: a JSON number or the text of a JSON string (swap REST replies quote their numbers)
_NUMBER = r'\s*"?([^",}\]\s]+)'

_HOSTS: dict[str, tuple[str, str, str]] = {
    # market: (registry id, WebSocket URL, what recordings' URLs contain)
    "spot": ("htx", "wss://api.huobi.pro/ws", "api.huobi.pro"),
    "linear": ("htx-swap", "wss://api.hbdm.com/linear-swap-ws", "api.hbdm.com/linear-swap-ws"),
    "inverse": ("htx-coinm", "wss://api.hbdm.com/swap-ws", "api.hbdm.com/swap-ws"),
}
#: the spot path serving incremental MBP books and their refreshes (and nothing else, per the documentation)
FEED_PATH = "/feed"


def _field(name: str) -> pl.Expr:
    return pl.col("_item").str.extract(f'"{name}":{_NUMBER}', 1)


class HtxExchange:
    """One HTX market: "spot" (``htx``), "linear" (USDT-margined swaps, ``htx-swap``) or "inverse" (coin-margined
    swaps, ``htx-coinm``)."""

    def __init__(self, market: Market = "spot") -> None:
        if market not in _HOSTS:
            raise ValueError(f"htx: unknown market {market!r}; known: {sorted(_HOSTS)}")
        self.market: Market = market
        self.id, self.ws_url, host = _HOSTS[market]
        # book refreshes come over the WebSocket; trade history has its own host (``trade_history``)
        self.rest_url: str | None = None
        spot = market == "spot"
        book = MBP_CHANNELS if spot else frozenset({"depth.size_20.high_freq", "depth.size_150.high_freq"})
        steps = frozenset({"depth.step0"})
        self.capabilities = Capabilities(
            channels=frozenset({TRADES, "bbo"}) | book | steps,
            trade_channels=frozenset({TRADES}),
            book_channels=book | steps,
            ticker_channels=frozenset({"bbo"}),
            # spot: refresh requested over the WebSocket (req/rep); swaps: snapshot pushed first on subscribe
            book_sync="ws-snapshot",
            sequence_check=True,
            checksum=False,
            markets=frozenset({"spot" if spot else f"{market}-perpetual"}),
            history_reach="last 2,000 trades",
            contiguous_ids=frozenset({TRADES}) if spot else frozenset(),
            subscribe_ack=True,
            # HTX names no number, only "not too many topics in a single connection": a modest share per connection
            streams_per_connection=100,
        )
        # the server pings every 5 s (answered by ``answer``): 30 s of silence is a dead connection
        self.keepalive = KeepAlive(client_ping=None, interval_s=5.0, idle_timeout_s=30.0)
        self._history = HtxTradeHistory(market)
        self.capture_hints = CaptureHints(
            hosts=(host, host.replace("api.huobi.pro", "api-aws.huobi.pro").replace("hbdm.com", "hbdm.vn")),
            feeds={"spot": ("HUOBI", "HTX"), "linear": ("HUOBI_SWAP", "HTX_SWAP"), "inverse": ()}[market],
        )

    def __repr__(self) -> str:
        return f"HtxExchange({self.market!r})"

    def replay_protocol(self) -> ReplayProtocol:
        from ._replay import HtxReplay  # here: the server side is only loaded by ``mdp replay`` and tests

        return HtxReplay(self)

    # -- binary frames and the application-level ping ----------------------------------------------------------------
    def decode_binary(self, data: bytes) -> str | None:
        """BinaryFrames: every HTX frame is gzip-compressed JSON."""
        return gunzip_text(data)

    def answer(self, frame: str) -> str | None:
        """Answering: ``{"ping": t}`` wants ``{"pong": t}`` (the same integer, as sent)."""
        if not frame.startswith('{"ping"'):
            return None
        value = frame[frame.find(":") + 1 : frame.rfind("}")].strip()
        return '{"pong":' + value + "}" if value.isdigit() else None

    # -- connecting ----------------------------------------------------------------------------------------------
    def connect_url(self, subs: Sequence[Subscription], ws_url: str) -> str:
        """Spot MBP books are served on /feed only: a connection of MBP streams alone goes there (the other spot
        channels stay on /ws, so a collector keeps its MBP channels in a config entry of their own)."""
        parts = urlsplit(ws_url)
        default = urlsplit(self.ws_url).path
        path = parts.path.rstrip("/")
        if self.market == "spot" and subs and all(is_mbp(s.channel) for s in subs) and path in ("", default):
            path = FEED_PATH
        elif not path:
            path = default
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))

    def subscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._op_messages("sub", subs)

    def unsubscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._op_messages("unsub", subs)

    def _op_messages(self, op: str, subs: Sequence[Subscription]) -> list[str]:
        out: list[str] = []
        for sub in dict.fromkeys(subs):
            if not sub.channel or not sub.symbol:
                raise ValueError(f"{self.id}: subscription needs a channel and a symbol, got {sub}")
            name = topic(sub.channel, sub.symbol)
            # the id is the topic: an error answer names only its request's id
            msg: dict[str, str] = {op: name, "id": name}
            if is_high_freq(sub.channel):
                msg["data_type"] = "incremental"
            out.append(orjson.dumps(msg).decode())
        return out

    # -- hot path ------------------------------------------------------------------------------------------------
    def route(self, frame: str) -> Route:
        return route_frame(frame)

    def exchange_time(self, frame: str) -> int | None:
        """The first ``ts`` (ms) of a frame, in ns: a push's generation time (a depth push: its tick's)."""
        return ms_after(frame, _TIME_MARKER)

    def exchange_times(self, frames: pl.Series) -> pl.Series:
        return ms_after_all(frames, _TIME_MARKER)

    def control_events(self, frame: str) -> list[StreamEvent]:
        """Acks (``subbed``/``unsubbed``) and refusals (``"status":"error"``, named by the request's id, which is
        its topic); [] for pings."""
        if frame.startswith('{"ping"'):
            return []
        obj = json_object(frame)
        if obj is None:
            return []
        for key, kind in (("subbed", SUBSCRIBED), ("unsubbed", UNSUBSCRIBED)):
            name = obj.get(key)
            if isinstance(name, str) and (route := split_topic(name)) is not None:
                return [StreamEvent(kind, *route)]
        if obj.get("status") == "error":
            route = split_topic(str(obj.get("id", ""))) or ("", "")
            detail = f"{obj.get('err-code', '')}: {obj.get('err-msg', '')}"
            return [StreamEvent(SUB_ERROR, route[0], route[1], detail)]
        return []

    def new_session(self, subs: Sequence[Subscription], rest_url: str | None) -> HtxSession:
        return HtxSession(self, subs, self.market)

    #: BookRebuilding: a push's generation time (the first "ts" of the frame)
    book_time_patterns: tuple[str, ...] = (r'"ts":(\d+)',)

    def book_builder(self, symbol: str, *, keep_raw: bool = True) -> HtxBookBuilder:
        """A symbol's book: incremental (MBP on spot, high_freq depth on swaps), else its ``depth.step*`` pushes."""
        return HtxBookBuilder(symbol, self.market)

    def rest_cost(self, url: str) -> tuple[int, RateLimit]:
        return 1, self._history.rate_limit

    def trade_history(self, channel: str) -> TradeHistory | None:
        """The latest trades over REST (``_history``: it heals only recent gaps and says so)."""
        return self._history if channel == TRADES else None

    # -- symbols and normalization -------------------------------------------------------------------------------
    def normalize_symbol(self, symbol: str) -> str:
        """ "btcusdt" -> "BTC-USDT" (spot, by its quote currency); "BTC-USDT" -> "BTC-USDT-PERP" (swaps)."""
        if self.market != "spot":
            return symbol.upper() + "-PERP" if symbol.count("-") == 1 else symbol.upper()
        split = split_quote(symbol.lower(), _QUOTES)
        return f"{split[0].upper()}-{split[1].upper()}" if split else symbol.upper()

    def normalize_trades(self, raw: pl.DataFrame) -> pl.DataFrame:
        return self.normalize_trades_with_rejects(raw)[0]

    def normalize_trades_with_rejects(self, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(trades, rejects): one trade per item of a push's ``tick.data`` (or of a REST reply), read from the text
        (regular expressions over the flat trade objects: no float ever holds a price), exponents written out.

        trades: ``mdplatform.schemas.TRADES`` then ``TRADE_LINEAGE``; spot ``seq_id``/``fill_first``/``fill_last`` are
        the ``tradeId`` (contiguous per symbol), null on swaps.
        """
        rows = raw_rows(raw, self.id, [TRADES])
        if rows.height == 0:
            return empty_normalized_trades(), empty_rejects()
        payload = pl.col("payload")
        rows = rows.with_columns(
            _object=payload.str.starts_with("{") & payload.str.ends_with("}"),
            _ch=payload.str.extract(r'"ch":"market\.([^."]+)\.', 1),
            _item=payload.str.extract_all(_TRADE_OBJECT),
        ).with_columns(_n=pl.col("_item").list.len())
        rows = rows.explode("_item", empty_as_null=True, keep_nulls=True)
        spot = self.market == "spot"
        if spot:
            tid = pl.coalesce(_field("tradeId"), _field("trade-id"))
            size = _field("amount")
        else:
            tid = _field("id")
            size = _field("quantity" if self.market == "linear" else "amount")
        rows = rows.with_columns(
            _symbol=pl.coalesce(pl.col("_ch"), pl.when(pl.col("symbol") != "").then(pl.col("symbol"))),
            _ts=ms_to_ts(_field("ts")),
            _trade_id=tid,
            _price=plain_decimal(_field("price")),
            _size=plain_decimal(size),
            _side=pl.col("_item").str.extract(r'"direction":\s*"([^"]*)"', 1),
            _fills=pl.lit(1, dtype=pl.Int64),
        )
        seq = pl.col("_trade_id").cast(pl.Int64, strict=False) if spot else pl.lit(None, dtype=pl.Int64)
        rows = rows.with_columns(_seq_id=seq, _fill_first=seq, _fill_last=seq)
        reason = (
            pl.when(pl.col("_object").not_())
            .then(pl.lit("payload is not a JSON object"))
            .when(pl.col("_n").fill_null(0) == 0)
            .then(pl.lit("no trades in payload (no tick.data item with a direction)"))
            .when(pl.col("_trade_id").is_not_null() & pl.col("_trade_id").str.contains(r"^[0-9]+$").not_())
            .then(pl.format("trade id is not an integer: {}", pl.col("_trade_id").str.slice(0, 64)))
            .when(pl.lit(spot) & pl.col("_trade_id").is_not_null() & pl.col("_seq_id").is_null())
            .then(pl.format("tradeId does not fit 64 bits: {}", pl.col("_trade_id").str.slice(0, 64)))
        )
        return split_trades(rows, exchange=self.id, normalize_symbol=self.normalize_symbol, reason=reason)
