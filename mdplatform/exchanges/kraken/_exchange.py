"""Kraken spot WebSocket v2 (wss://ws.kraken.com/v2), as documented at docs.kraken.com (2025-26 pages):
api-reference/spot-websocket-v2/{trade,book,ticker,ohlc,ping,heartbeat,status}, guides/websockets/book-checksum-v2,
api-reference/spot-websocket (v1 vs v2: "BTC/USD" symbols, RFC 3339 times, checksums in snapshots and updates).

Requests are ``{"method":"subscribe","params":{"channel":..,"symbol":[..],..},"req_id":n}``; each pair is
acknowledged by ``{"method":"subscribe","result":{"channel":..,"symbol":..},"success":true,..}`` or refused with
``"success":false`` and an ``error`` (the ``req_id`` we send names the channel, so a refusal does too). Pushes are
``{"channel":..,"type":"snapshot"|"update","data":[{"symbol":..,..}]}``; ``heartbeat`` (about once a second when
nothing else is sent) and ``status`` are connection-wide. Keep-alive: the application ping ``{"method":"ping"}``
(answered by ``{"method":"pong",..}``); no interval is documented, heartbeats make a silent second unusual, so a
few seconds of silence earn a ping and 15 s close the connection.

- ``trade``: the last 50 trades as a snapshot on subscribe (``snapshot: true``, requested), then updates;
  ``side`` is the taker's, ``trade_id`` a sequence number per pair (contiguous: coverage proves completeness from
  it, and a snapshot repeated by a reconnect is the same ids, which the transforms keep once per channel),
  ``timestamp`` RFC 3339.
- ``book`` (depth 10, 25, 100, 500 or 1000): ``_book``; the CRC32 checksum is the only continuity check.
- ``ticker`` and ``ohlc`` (1-minute candles here) are recorded raw.
Prices and quantities are JSON numbers: read from the text (``_wire``), never through a float.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

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
from .._events import Trade
from .._normalize import (
    decode_json,
    empty_normalized_trades,
    empty_rejects,
    explode_records,
    raw_rows,
    single_fills,
    split_trades,
)
from .._scan import json_object
from .._urls import with_default_path
from ._book import BOOK, KrakenBookBuilder, KrakenSession
from ._history import KRAKEN_REST_LIMIT, KrakenTradeHistory
from ._wire import POLARS_QUOTE_NUMBERS, POLARS_QUOTED, exact_loads, rfc3339_ns

if TYPE_CHECKING:
    from ...contract import ReplayProtocol

__all__ = ["BOOK_DEPTHS", "KrakenExchange"]

CONTROL: Route = ("control", "")
TRADE, TICKER, OHLC = "trade", "ticker", "ohlc"
_CHANNELS = (TRADE, BOOK, TICKER, OHLC)
#: the documented book depths
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
#: ``req_id`` per channel: an ack or refusal echoes it, which names the channel of a refused pair
_REQ_IDS = {name: i + 1 for i, name in enumerate(_CHANNELS)}
_CHANNEL_OF_REQ = {v: k for k, v in _REQ_IDS.items()}
#: pairs per request: no limit is documented; this keeps request frames small
_SYMBOLS_PER_REQUEST = 50
#: connection-wide channels (no pair): control, as acks and pongs are
_CONNECTION_CHANNELS = frozenset({"heartbeat", "status"})

_CHANNEL_PREFIX = '{"channel":"'
_SYMBOL_KEY = '"symbol":"'
_TIME_KEY = '"timestamp":"'
_TIME_RE = r'"timestamp"\s*:\s*"([^"]+)"'
_RFC3339 = "%Y-%m-%dT%H:%M:%S%.fZ"

#: the fields of a trade message normalization reads; price, qty and trade_id are quoted first (``_wire``)
_TRADE_MSG = pl.Struct(
    {
        "channel": pl.String(),
        "type": pl.String(),
        "data": pl.List(
            pl.Struct({k: pl.String() for k in ("symbol", "side", "price", "qty", "ord_type", "trade_id", "timestamp")})
        ),
    }
)
_INTEGER = r"^[0-9]+$"


class KrakenExchange:
    """Kraken spot over WebSocket v2: trade, book (with checksums), ticker and ohlc; REST ``Trades`` history.

    ``book_depth``: the depth subscribed (and kept) for ``book``, one of ``BOOK_DEPTHS``. ``precisions``: pair ->
    (price, qty) decimals, only needed where the wire text could lack the pair's trailing zeros (``_wire``).
    """

    #: contract attributes (the collector only reads them)
    id = "kraken"
    ws_url = "wss://ws.kraken.com/v2"
    rest_url: str | None = None  # books come over the WebSocket
    # only v2 endpoints: a v1 recording (``wss://ws.kraken.com``, arrays, "XBT/USD") is not this protocol, so it is
    # refused as an unsupported endpoint rather than imported as frames nothing can read; cryptofeed's ``KRAKEN``
    # files are v1, so the file name names nothing
    capture_hints = CaptureHints(hosts=("ws.kraken.com/v2",), feeds=())

    def __init__(self, *, book_depth: int = 1000, precisions: dict[str, tuple[int, int]] | None = None) -> None:
        if book_depth not in BOOK_DEPTHS:
            raise ValueError(f"kraken: book depth must be one of {BOOK_DEPTHS}, got {book_depth}")
        self.book_depth = book_depth
        self._precisions = dict(precisions or {})
        self.capabilities = Capabilities(
            channels=frozenset(_CHANNELS),
            trade_channels=frozenset({TRADE}),
            book_channels=frozenset({BOOK}),
            ticker_channels=frozenset({TICKER}),
            book_sync="ws-snapshot",
            sequence_check=False,  # v2 books carry no sequence numbers: the checksum is the check
            checksum=True,
            markets=frozenset({"spot"}),
            contiguous_ids=frozenset({TRADE}),
            subscribe_ack=True,
            streams_per_connection=None,  # none documented
        )
        # heartbeats arrive every second when nothing else does: 5 s of silence earn a ping, 15 s end the
        # connection. Kraken documents no connection rate for v2; Cloudflare in front of it is widely reported to
        # refuse beyond about 150 connections per 10 minutes per IP: 1 per 4 s, bursts of 5
        self.keepalive = KeepAlive(
            client_ping='{"method":"ping"}', interval_s=5.0, idle_timeout_s=15.0, connects_per_s=0.25, connect_burst=5
        )
        self._history = KrakenTradeHistory()

    def __repr__(self) -> str:
        return f"KrakenExchange(book_depth={self.book_depth})"

    def replay_protocol(self) -> ReplayProtocol:
        from ._replay import KrakenReplay  # here: the server side is only loaded by ``mdp replay`` and tests

        return KrakenReplay(self)

    # -- connecting ----------------------------------------------------------------------------------------
    def connect_url(self, subs: Sequence[Subscription], ws_url: str) -> str:
        return with_default_path(ws_url, self.ws_url)

    def subscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._requests("subscribe", subs)

    def unsubscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._requests("unsubscribe", subs)

    def resubscribe(self, sub: Subscription) -> tuple[str, ...]:
        """Unsubscribe then subscribe one stream: what brings a fresh book snapshot after a checksum failure."""
        return (*self.unsubscribe_messages([sub]), *self.subscribe_messages([sub]))

    def _params(self, channel: str) -> dict[str, Any]:
        if channel == BOOK:
            return {"depth": self.book_depth, "snapshot": True}
        if channel == OHLC:
            return {"interval": 1, "snapshot": True}
        if channel in (TRADE, TICKER):
            return {"snapshot": True}
        raise ValueError(f"kraken: unknown channel {channel!r}; known: {', '.join(_CHANNELS)}")

    def _requests(self, method: str, subs: Sequence[Subscription]) -> list[str]:
        by_channel: dict[str, list[str]] = {}
        for sub in dict.fromkeys(subs):
            if not sub.channel or not sub.symbol:
                raise ValueError(f"kraken: subscription needs a channel and a symbol, got {sub}")
            if "/" not in sub.symbol:
                raise ValueError(f"kraken: v2 symbols are BASE/QUOTE (BTC/USD), got {sub.symbol!r}")
            by_channel.setdefault(sub.channel, []).append(sub.symbol)
        out: list[str] = []
        for channel, symbols in by_channel.items():
            extra = self._params(channel)
            for i in range(0, len(symbols), _SYMBOLS_PER_REQUEST):
                params = {"channel": channel, "symbol": symbols[i : i + _SYMBOLS_PER_REQUEST], **extra}
                out.append(orjson.dumps({"method": method, "params": params, "req_id": _REQ_IDS[channel]}).decode())
        return out

    # -- hot path ------------------------------------------------------------------------------------------
    def route(self, frame: str) -> Route:
        """``{"channel":"X",...,"data":[{"symbol":"Y"...`` -> (X, Y); acks, pongs, heartbeats, status: control."""
        if frame.startswith(_CHANNEL_PREFIX):
            end = frame.find('"', 12)
            channel = frame[12:end]
            if channel in _CONNECTION_CHANNELS:
                return CONTROL
            i = frame.find(_SYMBOL_KEY, end)
            if i >= 0:
                start = i + 10
                return channel, frame[start : frame.find('"', start)]
            return channel, ""
        if frame.startswith('{"method"'):
            return CONTROL
        return self._route_slow(frame)

    def _route_slow(self, frame: str) -> Route:
        """Frames laid out otherwise (other key order, spaces): decoded (rare, so affordable)."""
        obj = json_object(frame)
        if obj is None or "channel" not in obj or obj.get("channel") in _CONNECTION_CHANNELS:
            return CONTROL
        data = obj.get("data")
        first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        return str(obj.get("channel")), str(first.get("symbol", ""))

    def exchange_time(self, frame: str) -> int | None:
        """The first ``timestamp`` of a push (RFC 3339), in ns; None for acks, heartbeats and untimed snapshots."""
        i = frame.find(_TIME_KEY)
        if i < 0:
            return None
        start = i + len(_TIME_KEY)
        return rfc3339_ns(frame[start : frame.find('"', start)])

    def exchange_times(self, frames: pl.Series) -> pl.Series:
        return (
            frames.str.extract(_TIME_RE, 1)
            .str.strptime(pl.Datetime("ns", "UTC"), _RFC3339, strict=False)
            .dt.epoch("ns")
            .cast(pl.Int64)
        )

    def control_events(self, frame: str) -> list[StreamEvent]:
        """Per-pair acks of subscribe/unsubscribe, and refusals (``success`` false; the channel from our
        ``req_id`` when the refusal has no ``result``)."""
        obj = json_object(frame) if frame.startswith("{") and '"method"' in frame else None
        if obj is None:
            return []
        method = obj.get("method")
        if method not in ("subscribe", "unsubscribe"):
            return []
        raw_result = obj.get("result")
        result: dict[str, Any] = raw_result if isinstance(raw_result, dict) else {}
        req = obj.get("req_id")
        channel = str(result.get("channel") or (_CHANNEL_OF_REQ.get(req, "") if isinstance(req, int) else ""))
        symbol = str(result.get("symbol") or obj.get("symbol") or "")
        if obj.get("success") is not True:
            return [StreamEvent(SUB_ERROR, channel, symbol, f"{method}: {obj.get('error', 'refused')}")]
        return [StreamEvent(SUBSCRIBED if method == "subscribe" else UNSUBSCRIBED, channel, symbol)]

    def new_session(self, subs: Sequence[Subscription], rest_url: str | None) -> KrakenSession:
        return KrakenSession(subs, self.book_builder, self.resubscribe)

    #: BookRebuilding: v2 book times are RFC 3339 text, which these epoch-ms patterns cannot read: books are
    #: sampled on receive time (``book_clock`` falls back to it)
    book_time_patterns: tuple[str, ...] = ()

    def book_builder(self, symbol: str, *, keep_raw: bool = True) -> KrakenBookBuilder:  # BookRebuilding
        price, qty = self._precisions.get(symbol, (None, None))
        return KrakenBookBuilder(symbol, self.book_depth, price_precision=price, qty_precision=qty)

    def rest_cost(self, url: str) -> tuple[int, RateLimit]:
        """Books come over the WebSocket; a public REST call counts against Kraken's public budget (1 per s)."""
        return 1, KRAKEN_REST_LIMIT

    def trade_history(self, channel: str) -> TradeHistory | None:
        """``GET /0/public/Trades`` for "trade" (``_history``)."""
        return self._history if channel == TRADE else None

    # -- symbols and normalization -------------------------------------------------------------------------
    def normalize_symbol(self, symbol: str) -> str:
        """``BTC/USD`` -> ``BTC-USD`` (v2 names bitcoin BTC; v1's XBT is not this protocol's)."""
        return symbol.replace("/", "-")

    def exchange_symbol(self, unified: str) -> str:
        """``BTC-USD`` -> ``BTC/USD``."""
        base, sep, quote = unified.partition("-")
        if not sep or not base or not quote or "-" in quote:
            raise ValueError(f"kraken: not a BASE-QUOTE symbol: {unified!r}")
        return f"{base}/{quote}"

    def normalize_trades(self, raw: pl.DataFrame) -> pl.DataFrame:
        return self.normalize_trades_with_rejects(raw)[0]

    def normalize_trades_with_rejects(self, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(trades, rejects): one trade per element of ``data`` of a ``trade`` message (snapshot or update, and
        the REST history's records, which ``KrakenTradeHistory.encode`` lays out the same way).

        price and qty come from the JSON text (quoted before decoding: exact digits); ``ts`` from ``timestamp``;
        ``trade_id`` is the pair's sequence number, also ``seq_id``/``fill_first``/``fill_last`` (one fill each:
        contiguous ids let coverage prove completeness).
        """
        rows = raw_rows(raw, self.id, [TRADE])
        if rows.height == 0:
            return empty_normalized_trades(), empty_rejects()
        quoted = rows.get_column("payload").str.replace_all(POLARS_QUOTE_NUMBERS, POLARS_QUOTED)
        decoded, ok = decode_json(quoted, _TRADE_MSG)
        items = decoded.struct.field("data")
        rows = explode_records(rows, ok, items, _data_missing=items.is_null())
        it = pl.col("_items").struct
        tid = it.field("trade_id")
        seq = tid.cast(pl.Int64, strict=False)
        rows = rows.with_columns(
            _symbol=pl.coalesce(it.field("symbol"), pl.when(pl.col("symbol") != "").then(pl.col("symbol"))),
            _ts=it.field("timestamp").str.strptime(pl.Datetime("ns", "UTC"), _RFC3339, strict=False),
            _trade_id=tid,
            _price=it.field("price"),
            _size=it.field("qty"),
            _side=it.field("side"),
            **single_fills(seq),
        )
        reason = (
            pl.when(pl.col("_decoded").not_())
            .then(pl.lit("payload is not a trade message in the documented layout"))
            .when(pl.col("_data_missing"))
            .then(pl.lit("payload has no data list"))
            .when(pl.col("_n").fill_null(0) == 0)
            .then(pl.lit("no trades in data"))
            .when(pl.col("_items").is_null())
            .then(pl.lit("null trade in data"))
            .when(pl.col("_trade_id").is_not_null() & pl.col("_trade_id").str.contains(_INTEGER).not_())
            .then(pl.format("trade_id is not an integer: {}", pl.col("_trade_id").str.slice(0, 64)))
        )
        return split_trades(rows, exchange=self.id, normalize_symbol=self.normalize_symbol, reason=reason)

    # -- typed parsing (tests and tools) -------------------------------------------------------------------
    def parse_trades(self, frame: str) -> list[Trade]:
        """The trades of one ``trade`` message (exact decimals from the text); [] for anything else."""
        msg = exact_loads(frame)
        if not isinstance(msg, dict) or msg.get("channel") != TRADE:
            return []
        out = []
        for d in msg.get("data") or ():
            ts = rfc3339_ns(str(d["timestamp"]))
            if ts is None:
                raise ValueError(f"kraken trade without an RFC 3339 timestamp: {d!r:.120}")
            out.append(
                Trade(
                    exchange=self.id,
                    channel=TRADE,
                    symbol=str(d["symbol"]),
                    ts=ts,
                    trade_id=str(d["trade_id"]),
                    price=Decimal(d["price"]),
                    size=Decimal(d["qty"]),
                    side=str(d["side"]),
                )
            )
        return out
