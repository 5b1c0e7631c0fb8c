"""MEXC spot v3 public WebSocket (``wss://wbs-api.mexc.com/ws``): aggregated deals, aggregated depth diffs over a REST
snapshot, aggregated book ticker.

What the spot WebSocket sends today (checked 2026-12 with the documentation search): **protocol buffers**. The spot v3
docs, "Websocket Market Streams" (mexc.com/api-docs/spot-v3/websocket-market-streams): "The current websocket push
uses the protobuf format", definitions at https://github.com/mexcdevelop/websocket-proto; MEXC's announcement "API
updates" (mexc.com/announcements/api-updates): the old JSON endpoint ``wss://wbs.mexc.com/ws`` was discontinued on
2025-08-04 06:00 UTC in favour of the protobuf service on ``wss://wbs-api.mexc.com/ws``. Pushes are binary frames
holding one ``PushDataV3ApiWrapper``; requests and their answers (subscribe acks, PONG) stay JSON text.

How the lake keeps a push: as JSON text (``BinaryFrames.decode_binary``), the protobuf's canonical JSON mapping with
every field, unknown ones included (``_proto``). Why not the bytes as sent: the lake's ``payload`` is text and every
reader of it (routing, exchange times, trades normalization in polars, the offline book rebuild, ``mdp`` tools) reads
text; a binary frame not decoded would be landed base64 and quarantined. Nothing is lost: ``_proto.encode`` turns the
JSON back into the same protobuf message (the e2e test checks it byte for byte against what the replay sent).

Pages followed (MEXC spot v3 docs, 2026):
- "Websocket Market Streams": ``{"method":"SUBSCRIPTION","params":[...]}`` / ``"UNSUBSCRIPTION"``; the answer
  ``{"id":0,"code":0,"msg":"<params>"}``; ``{"method":"PING"}`` answered ``{"id":0,"code":0,"msg":"PONG"}``; no valid
  subscription: disconnected after 30 s; subscribed but no traffic: after one minute (a ping keeps it); a connection
  lives at most 24 h; **at most 30 subscriptions per connection** (``streams_per_connection``). A refused stream is
  answered ``"msg":"Not Subscribed successfully! [<stream>].  Reason: Blocked!"`` (a full-width colon; reported by
  users, code 0: the docs show no refusal).
- "Trade Streams": ``spot@public.aggre.deals.v3.api.pb@(100ms|10ms)@<symbol>``, body ``publicAggreDeals``: ``deals``
  of ``price``, ``quantity`` (strings), ``tradeType`` (1 buy, 2 sell: the taker's side), ``time`` (ms), ``tradeId``
  (a string such as ``"731579883561406466X0_731579883561406467X0"``: not a number, never contiguous).
- "Diff.Depth Stream" and "How to Properly Maintain a Local Copy of the Order Book": see ``_book``.
- "Individual Symbol Book Ticker Streams": ``spot@public.aggre.bookTicker.v3.api.pb@(100ms|10ms)@<symbol>``, body
  ``publicAggreBookTicker`` (``bidPrice``, ``bidQuantity``, ``askPrice``, ``askQuantity``): recorded raw.
- "K-line Streams": ``spot@public.kline.v3.api.pb@<symbol>@Min1``, body ``publicSpotKline`` (``windowStart`` and
  ``windowEnd`` in seconds, prices, ``volume``, ``amount``), pushed every second, timed by ``createTime``: recorded
  raw (channel ``spot@public.kline.v3.api.pb@Min1``).
- Market data endpoints "Order Book" (``GET /api/v3/depth``, ``limit`` up to 5000, weight 1: ``{"lastUpdateId",
  "bids", "asks", "timestamp"}``) and "Recent Trades List" (``_history``).

Channels are the exchange's own stream names without the symbol (``spot@public.aggre.deals.v3.api.pb@100ms``): a
frame's route is its ``channel`` split at the last ``@``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson
import polars as pl

from ...history import RateLimit

if TYPE_CHECKING:
    from ...contract import ReplayProtocol
from ...contract import (
    SUB_ERROR,
    Capabilities,
    CaptureHints,
    KeepAlive,
    Route,
    SessionAction,
    StreamEvent,
    Subscription,
    TradeHistory,
)
from .._depth_sync import DepthSync
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
from .._snapshot_sync import SnapshotSession
from .._symbols import split_quote
from .._urls import with_default_path
from . import _proto
from ._book import MexcBookBuilder, depth_versions, in_mexc_terms
from ._history import MEXC_REST_BASE, MexcTradeHistory, mexc_rest_limit

__all__ = [
    "BOOK_TICKER",
    "DEALS",
    "DEPTH",
    "KLINE",
    "STREAMS_PER_CONNECTION",
    "MexcExchange",
    "MexcSession",
    "stream_name",
]

WS_URL = "wss://wbs-api.mexc.com/ws"
DEPTH_URL = MEXC_REST_BASE + "/api/v3/depth"
#: the snapshot depth the docs' book procedure asks for (the most ``/api/v3/depth`` gives)
SNAPSHOT_LIMIT = 5000
#: documented: one connection serves at most 30 subscriptions
STREAMS_PER_CONNECTION = 30

CONTROL: Route = ("control", "")
_RATES = ("100ms", "10ms")
#: channel names by kind and push rate
DEALS = {rate: f"spot@public.aggre.deals.v3.api.pb@{rate}" for rate in _RATES}
DEPTH = {rate: f"spot@public.aggre.depth.v3.api.pb@{rate}" for rate in _RATES}
BOOK_TICKER = {rate: f"spot@public.aggre.bookTicker.v3.api.pb@{rate}" for rate in _RATES}
#: one-minute klines (recorded raw: the exchange's own candles, to reconcile with those built from deals); the
#: stream names the interval after the symbol: ``spot@public.kline.v3.api.pb@BTCUSDT@Min1``
_KLINE_PREFIX = "spot@public.kline.v3.api.pb"
KLINE = f"{_KLINE_PREFIX}@Min1"

_CHANNEL_PREFIX = '{"channel":"'
_CHANNEL_LEN = len(_CHANNEL_PREFIX)
#: the push's event time (canonical JSON writes int64 as a string)
_TIME_MARKER = '"sendTime":"'
_CREATE_MARKER = '"createTime":"'
#: the streams a refusal names: "Not Subscribed successfully! [spot@...@BTCUSDT,spot@...].  Reason: ..."
_REFUSED = re.compile(r"\[([^\]]*)\]")

_DEAL_ITEM = pl.Struct(
    {
        "price": pl.String(),
        "quantity": pl.String(),
        "tradeType": pl.Int64(),
        "time": pl.String(),
        "tradeId": pl.String(),
    }
)
_PUSH = pl.Struct({"symbol": pl.String(), _proto.BODY_DEALS: pl.Struct({"deals": pl.List(_DEAL_ITEM)})})
_REST = pl.List(
    pl.Struct(
        {
            "price": pl.String(),
            "qty": pl.String(),
            "time": pl.Int64(),
            "isBuyerMaker": pl.Boolean(),
            "tradeType": pl.String(),
        }
    )
)
#: a price or size written as a JSON number (a REST reply; pushes carry protobuf strings): refused, never rounded
_REST_NUMERIC = r'"(?:price|qty)":\s*[-0-9]'

#: quote assets of MEXC spot symbols, longest first (a symbol takes the longest matching suffix)
_QUOTES: tuple[str, ...] = ("FDUSD", "USDT", "USDC", "USDE", "USD1", "TUSD", "DAI", "EUR", "BRL", "TRY", "BTC", "ETH")


def stream_name(sub: Subscription) -> str:
    """``spot@public.aggre.deals.v3.api.pb@100ms`` + ``BTCUSDT`` -> the stream MEXC subscribes
    (klines: ``spot@public.kline.v3.api.pb@Min1`` + ``BTCUSDT`` -> ``spot@public.kline.v3.api.pb@BTCUSDT@Min1``)."""
    if not sub.channel or not sub.symbol:
        raise ValueError(f"mexc: subscription needs a channel and a symbol, got {sub}")
    if sub.channel.startswith(_KLINE_PREFIX + "@"):
        return f"{_KLINE_PREFIX}@{sub.symbol.upper()}@{sub.channel[len(_KLINE_PREFIX) + 1 :]}"
    return f"{sub.channel}@{sub.symbol.upper()}"


def _split(name: str) -> Route:
    """A stream name -> (channel, symbol): the symbol is the last ``@`` part, a kline's the one before its interval."""
    if name.startswith(_KLINE_PREFIX + "@"):
        symbol, sep, interval = name[len(_KLINE_PREFIX) + 1 :].partition("@")
        if sep:
            return f"{_KLINE_PREFIX}@{interval}", symbol
    channel, sep, symbol = name.rpartition("@")
    return (channel, symbol) if sep and channel else (name, "")


class MexcExchange:
    """MEXC spot v3: aggregated deals, depth diffs (REST snapshot + version chain) and book ticker, at 100ms or 10ms."""

    #: contract attributes (the collector only reads them)
    id = "mexc"
    ws_url = WS_URL
    rest_url = DEPTH_URL
    # the protobuf endpoint and the spot REST path (snapshot lines). ``wbs.mexc.com`` is not claimed: it served the
    # JSON protocol that ended 2025-08-04, which this module does not read
    capture_hints = CaptureHints(hosts=("wbs-api.mexc.com", "api.mexc.com/api/v3/"), feeds=("MEXC",))

    def __init__(self) -> None:
        depth = frozenset(DEPTH.values())
        self._depth_channels = depth
        self.capabilities = Capabilities(
            channels=frozenset(DEALS.values()) | depth | frozenset(BOOK_TICKER.values()) | {KLINE},
            trade_channels=frozenset(DEALS.values()),
            book_channels=depth,
            ticker_channels=frozenset(BOOK_TICKER.values()),
            book_sync="rest-snapshot",
            sequence_check=True,
            checksum=False,
            markets=frozenset({"spot"}),
            history_reach="last 1,000 trades, proves nothing",
            contiguous_ids=frozenset(),  # tradeId is a pair of order ids, never a sequence
            # acks echo the request's params in one text: the streams are counted from the connection, refusals
            # are sub_error events (``control_events``)
            subscribe_ack=False,
            streams_per_connection=STREAMS_PER_CONNECTION,
        )
        # ping after 20 s of silence: MEXC drops a subscribed connection after a minute without traffic
        self.keepalive = KeepAlive(
            client_ping='{"method":"PING"}', interval_s=20.0, idle_timeout_s=50.0, connects_per_s=1.0, connect_burst=5
        )
        self._histories = {ch: MexcTradeHistory(ch) for ch in DEALS.values()}

    def __repr__(self) -> str:
        return "MexcExchange()"

    def replay_protocol(self) -> ReplayProtocol:
        from ._replay import MexcReplay  # here: the server side is only loaded by ``mdp replay`` and tests

        return MexcReplay(self)

    # -- binary frames ---------------------------------------------------------------------------------------
    def decode_binary(self, data: bytes) -> str | None:
        """A protobuf push as the JSON the lake keeps (``_proto``); ValueError for bytes that are not one."""
        return _proto.decode(data)

    # -- connecting ----------------------------------------------------------------------------------------
    def connect_url(self, subs: Sequence[Subscription], ws_url: str) -> str:
        return with_default_path(ws_url, WS_URL)

    def subscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._requests("SUBSCRIPTION", subs)

    def unsubscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._requests("UNSUBSCRIPTION", subs)

    def _requests(self, method: str, subs: Sequence[Subscription]) -> list[str]:
        params = list(dict.fromkeys(stream_name(s) for s in subs))
        n = STREAMS_PER_CONNECTION
        batches = [params[i : i + n] for i in range(0, len(params), n)]
        return [orjson.dumps({"method": method, "params": batch}).decode() for batch in batches]

    def snapshot_url(self, symbol: str, rest_url: str | None = None, limit: int = SNAPSHOT_LIMIT) -> str:
        base = with_default_path(rest_url, DEPTH_URL) if rest_url else DEPTH_URL
        return f"{base}?symbol={symbol.upper()}&limit={limit}"

    def rest_cost(self, url: str) -> tuple[int, RateLimit]:
        """``/api/v3/depth`` weighs 1 whatever its limit; the IP's budget is 500 per 10 s."""
        return 1, mexc_rest_limit()

    # -- hot path ------------------------------------------------------------------------------------------
    #: a push is routed by its stream name, the text up to the first quote after this prefix (``route_key``)
    route_prefix = (_CHANNEL_PREFIX, 1)

    def route_key(self, key: str) -> Route | None:
        return _split(key)

    def route(self, frame: str) -> Route:
        if frame.startswith(_CHANNEL_PREFIX):
            return _split(frame[_CHANNEL_LEN : frame.find('"', _CHANNEL_LEN)])
        if '"channel"' not in frame:
            return CONTROL  # acks, PONG, errors: {"id":0,"code":0,"msg":...}
        obj = json_object(frame)
        name = obj.get("channel") if obj is not None else None
        return _split(name) if isinstance(name, str) else CONTROL

    def exchange_time(self, frame: str) -> int | None:
        """The push's ``sendTime`` (else ``createTime``), ms, in ns; None for JSON answers."""
        t = ms_after(frame, _TIME_MARKER)
        return t if t is not None else ms_after(frame, _CREATE_MARKER)

    def exchange_times(self, frames: pl.Series) -> pl.Series:
        return ms_after_all(frames, _TIME_MARKER).fill_null(ms_after_all(frames, _CREATE_MARKER))

    def control_events(self, frame: str) -> list[StreamEvent]:
        """A refusal ("Not Subscribed successfully! [streams]. Reason: ...", or a non-zero ``code``) is a ``sub_error``
        per stream it names; acks and PONG say nothing about streams here (``subscribe_ack`` is False)."""
        obj = json_object(frame)
        if obj is None:
            return []
        msg = str(obj.get("msg", ""))
        code = obj.get("code", 0)
        refused = msg.startswith("Not Subscribed") or (isinstance(code, int) and code != 0)
        if not refused:
            return []
        detail = f"{code}: {msg}".strip()
        names = [n.strip() for m in _REFUSED.findall(msg) for n in m.split(",") if n.strip()]
        if not names:
            return [StreamEvent(SUB_ERROR, "", "", detail)]
        return [StreamEvent(SUB_ERROR, *_split(name), detail) for name in dict.fromkeys(names)]

    def new_session(self, subs: Sequence[Subscription], rest_url: str | None) -> MexcSession:
        return MexcSession(self, subs, rest_url or DEPTH_URL)

    #: BookRebuilding: the push's ``sendTime`` (ms), a snapshot's ``timestamp``
    book_time_patterns: tuple[str, ...] = (r'"sendTime":"(\d+)"', r'"timestamp":(\d+)')

    def book_builder(self, symbol: str, *, keep_raw: bool = False) -> MexcBookBuilder:  # BookRebuilding
        return MexcBookBuilder(symbol, self._depth_channels, keep_raw=keep_raw)

    def trade_history(self, channel: str) -> TradeHistory | None:
        """``GET /api/v3/trades`` (the last 1000 trades, no ids; proves nothing complete: ``_history``)."""
        return self._histories.get(channel)

    # -- symbols and normalization -------------------------------------------------------------------------
    def normalize_symbol(self, symbol: str) -> str:
        """BTCUSDT -> BTC-USDT (the longest known quote suffix); unknown shapes unchanged."""
        symbol = symbol.upper()
        split = split_quote(symbol, _QUOTES)
        return f"{split[0]}-{split[1]}" if split else symbol

    def normalize_trades(self, raw: pl.DataFrame) -> pl.DataFrame:
        return self.normalize_trades_with_rejects(raw)[0]

    def normalize_trades_with_rejects(self, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(trades, rejects): one trade per ``deals`` item of a push (or per record of a ``/api/v3/trades`` reply
        landed by the backfill); rejects keep the raw row plus ``reason``.

        ``trade_id`` = ``tradeId``; a push without one (the ``.proto`` before ``tradeId`` was added) and REST records
        (``id`` null) get ``t<time>-<price>-<quantity>-<b|s>-<n>``, ``n`` counting equal trades in the same payload,
        so a trade landed twice is one. ``ts`` = ``time``, price and size exact from the strings, ``side`` the
        taker's (``tradeType`` 1 buy / 2 sell; REST ``isBuyerMaker`` true: sell), ``fills`` 1.
        """
        rows = raw_rows(raw, self.id, sorted(self.capabilities.trade_channels))
        if rows.height == 0:
            return empty_normalized_trades(), empty_rejects()
        rows = rows.with_row_index("_row")
        is_rest = rows.get_column("payload").str.starts_with("[")
        push, rest = rows.filter(is_rest.not_()), rows.filter(is_rest)
        parts = [p for p in (self._push_rows(push), self._rest_rows(rest)) if p.height]
        rows = pl.concat(parts, how="vertical_relaxed").sort("_row") if parts else push
        k = pl.int_range(pl.len()).over("_row", "_ts_ms", "_price", "_size", "_side")
        synthetic = pl.format(
            "t{}-{}-{}-{}-{}", pl.col("_ts_ms"), pl.col("_price"), pl.col("_size"), pl.col("_side").str.slice(0, 1), k
        )
        rows = rows.with_columns(
            _ts=ms_to_ts(pl.col("_ts_ms")),
            _trade_id=pl.coalesce(pl.col("_id"), synthetic),
            **single_fills(),
        ).drop("_row")
        return split_trades(rows, exchange=self.id, normalize_symbol=self.normalize_symbol, reason=pl.col("_reason"))

    @staticmethod
    def _push_rows(rows: pl.DataFrame) -> pl.DataFrame:
        decoded, ok = decode_json(rows.get_column("payload"), _PUSH)
        items = decoded.struct.field(_proto.BODY_DEALS).struct.field("deals")
        rows = explode_records(
            rows,
            ok,
            items,
            _body=decoded.struct.field(_proto.BODY_DEALS).is_not_null(),
            _wire_symbol=decoded.struct.field("symbol"),
        )
        it = pl.col("_items").struct
        kind = it.field("tradeType")
        reason = (
            pl.when(pl.col("_decoded").not_())
            .then(pl.lit("payload is not a deals push in the documented layout"))
            .when(pl.col("_body").not_())
            .then(pl.lit("payload has no publicAggreDeals body"))
            .when(pl.col("_n").fill_null(0) == 0)
            .then(pl.lit("no trades in deals"))
            .when(pl.col("_items").is_null())
            .then(pl.lit("null trade in deals"))
            .when(kind.is_not_null() & kind.is_in([1, 2]).not_())
            .then(pl.format("tradeType is neither 1 (buy) nor 2 (sell): {}", kind))
            .when(kind.is_null())
            .then(pl.lit("tradeType missing (proto3 default 0: neither buy nor sell)"))
        )
        return rows.select(
            *[c for c in rows.columns if not c.startswith("_") or c == "_row"],
            _symbol=pl.coalesce(pl.col("_wire_symbol"), pl.when(pl.col("symbol") != "").then(pl.col("symbol"))),
            _ts_ms=it.field("time").cast(pl.Int64, strict=False),
            _id=pl.when(it.field("tradeId") != "").then(it.field("tradeId")),
            _price=it.field("price"),
            _size=it.field("quantity"),
            _side=pl.when(kind == 1).then(pl.lit("buy")).when(kind == 2).then(pl.lit("sell")),
            _reason=reason,
        )

    @staticmethod
    def _rest_rows(rows: pl.DataFrame) -> pl.DataFrame:
        decoded, ok = decode_json(rows.get_column("payload"), _REST)
        rows = explode_records(rows, ok, decoded)
        it = pl.col("_items").struct
        maker = it.field("isBuyerMaker")
        reason = (
            pl.when(pl.col("_decoded").not_())
            .then(pl.lit("payload is not a /api/v3/trades reply in the documented layout"))
            .when(pl.col("payload").str.contains(_REST_NUMERIC))
            .then(pl.lit("a price or size is a JSON number, not a decimal string"))
            .when(pl.col("_n").fill_null(0) == 0)
            .then(pl.lit("no trades in the reply"))
            .when(pl.col("_items").is_null())
            .then(pl.lit("null trade in the reply"))
            .when(maker.is_null())
            .then(pl.lit("isBuyerMaker missing: taker side unknown"))
        )
        return rows.select(
            *[c for c in rows.columns if not c.startswith("_") or c == "_row"],
            _symbol=pl.when(pl.col("symbol") != "").then(pl.col("symbol")),
            _ts_ms=it.field("time"),
            _id=pl.lit(None, dtype=pl.String),
            _price=it.field("price"),
            _size=it.field("qty"),
            _side=pl.when(maker).then(pl.lit("sell")).when(maker.not_()).then(pl.lit("buy")),
            _reason=reason,
        )


class MexcSession(SnapshotSession):
    """Per-connection book sync on versions only (the full book is not kept on the hot path): one ``DepthSync``
    per symbol, following the first depth channel of the symbol (``_book``). A gap or a snapshot that cannot be
    bridged asks for a new snapshot of that symbol only."""

    def __init__(self, exchange: MexcExchange, subs: Sequence[Subscription], rest_url: str) -> None:
        super().__init__(exchange, rest_url)
        self._depth = exchange.capabilities.book_channels
        #: symbol -> the depth channel followed
        self._channel: dict[str, str] = {}
        for sub in subs:
            if sub.channel in self._depth:
                self._follow(sub.symbol.upper(), sub.channel)

    def _follow(self, symbol: str, channel: str) -> DepthSync[None]:
        if symbol not in self._syncs:
            self._channel[symbol] = channel
        return self._sync(symbol)

    def _channel_of(self, symbol: str) -> str:
        return self._channel[symbol]

    def _words(self, detail: str) -> str:
        return in_mexc_terms(detail)

    def _where(self, symbol: str) -> str:
        return f"mexc {self._channel[symbol]} {symbol}"

    def on_frame(self, channel: str, symbol: str, frame: str) -> SessionAction | None:
        if channel not in self._depth:
            return None
        sync = self._syncs.get(symbol) or self._follow(symbol, channel)
        if self._channel[symbol] != channel:
            return None  # the symbol's other push rate: not this chain
        versions = depth_versions(frame)
        if versions is None:
            self.errors += 1
            raise ValueError(f"mexc {symbol}: depth push without fromVersion/toVersion")
        return self._diff_action(symbol, sync, sync.on_diff(versions[0], versions[1], -1, None))

    def on_snapshot(self, symbol: str, body: str) -> SessionAction | None:
        symbol = symbol.upper()
        obj = json_object(body)
        last = obj.get("lastUpdateId") if obj is not None else None
        if not isinstance(last, int):
            # no immediate retry (an error body would loop); the sync asks again after more pushes
            self.errors += 1
            return SessionAction(error=f"mexc {symbol}: snapshot without lastUpdateId: {body[:200]}")
        sync = self._follow(symbol, self._channel.get(symbol, DEPTH["100ms"]))
        return self._snapshot_action(symbol, sync, last)

    def version(self, symbol: str) -> int:
        """The last version applied (the snapshot's ``lastUpdateId`` right after one)."""
        return self._syncs[symbol.upper()].last_update_id
