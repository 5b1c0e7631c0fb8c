"""Gate.io API v4 public WebSocket: spot (wss://api.gateio.ws/ws/v4/) and USDT-settled perpetual futures
(wss://fx-ws.gateio.ws/v4/ws/usdt).

Pages followed (checked 2026-12): Gate.io "Spot WebSocket v4" (gate.io/docs/developers/apiv4/ws/en/: request
``{"time","channel","event","payload"}``, acks ``{"event":"subscribe","result":{"status":"success"}}``, errors
``"error":{"code","message"}``, application ping ``spot.ping`` answered by ``spot.pong``; channels ``spot.trades``,
``spot.book_ticker``, ``spot.order_book_update``, ``spot.candlesticks``, ``spot.tickers``); Gate.io "Futures
WebSocket v4" (gate.io/docs/developers/futures/ws/en/: ``futures.ping``/``futures.pong``, ``futures.trades``,
``futures.book_ticker``, ``futures.order_book_update``, ``futures.candlesticks``); the announcements "Gate.io Futures
API upgrade (New orderbook API with 10ms update)" (gate.io/article/19776: the U/u + ``with_id`` REST snapshot rules)
and "Order book push logic optimization" (gate.com/announcements/article/44678, 2025: ``full`` pushes on
``spot.order_book_update``, ``l`` on futures); Gate.io "API v4" REST (gate.io/docs/developers/apiv4/en/:
``GET /spot/order_book``, ``GET /futures/{settle}/order_book`` with ``with_id``, ``GET /spot/trades``,
``GET /futures/{settle}/trades``, public rate limit 200 requests per 10 s per endpoint). The book rules are in
``_book``, the REST history in ``_history``.

Frames: ``{"time":s[,"time_ms":ms],"channel":"spot.trades","event":"update","result":{...}}``; futures trades,
candlesticks and tickers carry a list in ``result``. Trades: ``spot.trades`` has the taker ``side``, an ``id``
that is global across pairs (the 2021 recording shows one counter for every pair: NOT contiguous per pair, so no
completeness is claimed from ids) and ``create_time_ms`` as a decimal string of milliseconds ("1619093543708.2642",
kept exactly: ns = ms x 10^6 + the fraction's first six digits). ``futures.trades`` has a signed ``size``: the number of
contracts, negative when the taker sold; the stored size is ``|size|`` in CONTRACTS (the contract's
``quanto_multiplier`` is not applied: it is not in the frame), the side its sign. Trades flagged ``is_internal``
(insurance-fund / ADL takeovers, not matched on the book and left out of Gate.io's candles) are rejects with that
reason. Candlesticks are recorded raw (spot ``v`` is the quote volume; a minute without trades is pushed flat at the
previous close with ``v`` 0).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import orjson
import polars as pl

from ...history import RateLimit

if TYPE_CHECKING:
    from ...contract import ReplayProtocol
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
from .._normalize import decode_json, empty_normalized_trades, empty_rejects, raw_rows, single_fills, split_trades
from .._scan import json_object
from .._urls import with_default_path
from ._book import GateioBookBuilder, GateioSession
from ._history import GATEIO_REST_LIMIT, GateioTradeHistory

__all__ = ["GateioExchange", "Market", "create_time_ns", "ms_text_to_ns"]

Market = Literal["spot", "futures"]

CONTROL: Route = ("control", "")

#: levels the REST snapshot asks for: what a 100ms ``order_book_update`` stream covers
SNAPSHOT_LIMIT = 100


@dataclass(frozen=True, slots=True)
class _Spec:
    id: str
    prefix: str  # "spot" / "futures"
    ws_url: str
    rest_url: str  # the order book endpoint (a bare host override gets this path)
    rest_base: str
    symbol_param: str  # currency_pair / contract
    markets: frozenset[str]
    capture: CaptureHints


_SPECS: dict[str, _Spec] = {
    "spot": _Spec(
        "gateio",
        "spot",
        "wss://api.gateio.ws/ws/v4/",
        "https://api.gateio.ws/api/v4/spot/order_book",
        "https://api.gateio.ws",
        "currency_pair",
        frozenset({"spot"}),
        CaptureHints(hosts=("api.gateio.ws/ws/v4", "api.gateio.ws/api/v4/spot"), feeds=("GATEIO",)),
    ),
    "futures": _Spec(
        "gateio-futures",
        "futures",
        "wss://fx-ws.gateio.ws/v4/ws/usdt",
        "https://api.gateio.ws/api/v4/futures/usdt/order_book",
        "https://api.gateio.ws",
        "contract",
        frozenset({"linear-perpetual"}),
        CaptureHints(
            hosts=("fx-ws.gateio.ws/v4/ws/usdt", "api.gateio.ws/api/v4/futures/usdt"), feeds=("GATEIO_FUTURES",)
        ),
    ),
}

_CHANNEL = '"channel":"'
_CHANNEL_LEN = len(_CHANNEL)
_UPDATE = '"event":"update"'
_RESULT = '"result"'
#: price or size/amount sent as a JSON number with a fraction: polars would read it through a float
_FLOAT_DECIMAL = r'"(?:price|amount|size)":\s*-?[0-9]+\.'
_PRICE_NUMBER = r'"price":\s*-?[0-9]'
_AMOUNT_NUMBER = r'"amount":\s*-?[0-9]'
_MS_TEXT = r"^([0-9]+)(?:\.([0-9]+))?$"

#: one trade as the WS result and the REST records hold it; everything text (JSON integers become their digits:
#: exact), ``is_internal`` a flag. Fields not listed (``create_time``, ``role``, ``range``, ``sequence_id``) ignored.
_ITEM = pl.Struct(
    {
        "id": pl.String(),
        "create_time_ms": pl.String(),
        "side": pl.String(),
        "currency_pair": pl.String(),
        "contract": pl.String(),
        "amount": pl.String(),
        "size": pl.String(),
        "price": pl.String(),
        "is_internal": pl.Boolean(),
    }
)
_SPOT_PUSH = pl.Struct({"channel": pl.String(), "event": pl.String(), "result": _ITEM})
_FUTURES_PUSH = pl.Struct({"channel": pl.String(), "event": pl.String(), "result": pl.List(_ITEM)})
_REST_RECORDS = pl.List(_ITEM)


def ms_text_to_ns(expr: pl.Expr) -> pl.Expr:
    """Gate.io's milliseconds text ("1619093543708.2642", or digits) -> Datetime ns UTC, exactly (the fraction is
    cut at the nanosecond); null when it is not such a number."""
    whole = expr.str.extract(_MS_TEXT, 1).cast(pl.Int64, strict=False)
    frac = expr.str.extract(_MS_TEXT, 2).str.slice(0, 6).str.pad_end(6, "0").cast(pl.Int64, strict=False)
    return (whole * 1_000_000 + frac.fill_null(0)).cast(pl.Datetime("ns", "UTC"))


def create_time_ns(text: str) -> int:
    """``ms_text_to_ns`` of one value (tests and tools)."""
    whole, _, frac = str(text).partition(".")
    return int(whole) * 1_000_000 + int((frac + "000000")[:6])


def _symbol_after(frame: str, marker: str, start: int, *, numbers: bool = False) -> str:
    """The first string value after ``marker`` from ``start`` that is not a number (futures levels may carry their
    size as a string under the same key ``s`` as the contract); ``numbers``: the first value, whatever it is."""
    i = frame.find(marker, start)
    while i >= 0:
        j = i + len(marker)
        end = frame.find('"', j)
        value = frame[j:end]
        if numbers or (value and not (value[0].isdigit() or value[0] == "-")):
            return value
        i = frame.find(marker, end)
    return ""


class GateioExchange:
    """One Gate.io v4 market: "spot" (``gateio``) or "futures" (``gateio-futures``, USDT perpetuals)."""

    def __init__(self, market: Market) -> None:
        if market not in _SPECS:
            raise ValueError(f"unknown Gate.io market {market!r}; known: {sorted(_SPECS)}")
        spec = self._spec = _SPECS[market]
        # contract attributes (the collector only reads them)
        self.id = spec.id
        self.ws_url = spec.ws_url
        self.rest_url = spec.rest_url
        self.capture_hints = spec.capture
        self.market: Market = market
        p = spec.prefix
        self.trade_channel = f"{p}.trades"
        self.book_channel = f"{p}.order_book_update"
        self.ticker_channel = f"{p}.book_ticker"
        self.candle_channel = f"{p}.candlesticks"
        self.tickers_channel = f"{p}.tickers"
        self._ping_channel = f"{p}.ping"
        channels = (
            self.trade_channel,
            self.book_channel,
            self.ticker_channel,
            self.candle_channel,
            self.tickers_channel,
        )
        self.capabilities = Capabilities(
            channels=frozenset(channels),
            trade_channels=frozenset({self.trade_channel}),
            book_channels=frozenset({self.book_channel}),
            ticker_channels=frozenset({self.ticker_channel}),
            book_sync="rest-snapshot",
            sequence_check=True,
            checksum=False,
            markets=spec.markets,
            # spot trade ids are one counter over every pair; futures ids are not documented as contiguous
            contiguous_ids=frozenset(),
            # the 2021-2023 acks do not name the stream they acknowledge ({"event":"subscribe","result":
            # {"status":"success"}}): streams count as subscribed when the subscribe is sent, refusals are read
            subscribe_ack=False,
            # no per-connection limit is documented
            streams_per_connection=None,
        )
        # the docs ask for an application ping ({"channel":"spot.ping"}); Gate.io names no idle limit: ping after
        # 10 s of silence, reconnect after 30 s. No connection-rate limit is documented: 1 per second, 3 at once.
        # The ping is a fixed text: the "time" of a request is the client's and is not checked on public channels.
        self.keepalive = KeepAlive(
            client_ping=orjson.dumps({"channel": self._ping_channel}).decode(),
            interval_s=10.0,
            idle_timeout_s=30.0,
            connects_per_s=1.0,
            connect_burst=3,
        )
        self._history = GateioTradeHistory(market, self.trade_channel)
        # channel -> the key naming its instrument in a push
        self._symbol_marker = {
            self.trade_channel: '"currency_pair":"' if market == "spot" else '"contract":"',
            self.tickers_channel: '"currency_pair":"' if market == "spot" else '"contract":"',
            self.book_channel: '"s":"',
            self.ticker_channel: '"s":"',
            self.candle_channel: '"n":"',
        }

    def __repr__(self) -> str:
        return f"GateioExchange({self.market!r})"

    # -- replay server -------------------------------------------------------------------------------------
    def replay_protocol(self) -> ReplayProtocol:
        from ._replay import GateioReplay  # here: the server side is only loaded by ``mdp replay`` and tests

        return GateioReplay(self)

    @property
    def symbol_param(self) -> str:
        return self._spec.symbol_param

    # -- connecting ----------------------------------------------------------------------------------------
    def connect_url(self, subs: Sequence[Subscription], ws_url: str) -> str:
        return with_default_path(ws_url, self.ws_url)

    def subscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._requests("subscribe", subs)

    def unsubscribe_messages(self, subs: Sequence[Subscription]) -> list[str]:
        return self._requests("unsubscribe", subs)

    def _requests(self, event: str, subs: Sequence[Subscription]) -> list[str]:
        """One request per channel for trades and tickers (their payload is a list of instruments), one per instrument
        for order books (``[pair, "100ms"]``; futures ``[contract, "100ms", "100"]``) and candlesticks
        (``["1m", pair]``)."""
        now = int(time.time())
        listed: dict[str, list[str]] = {}
        out: list[str] = []
        for sub in dict.fromkeys(subs):
            if sub.channel not in self.capabilities.channels:
                raise ValueError(
                    f"{self.id}: unsupported channel {sub.channel!r}; supported: {sorted(self.capabilities.channels)}"
                )
            if not sub.symbol:
                raise ValueError(f"{self.id}: subscription to {sub.channel!r} needs an instrument")
            if sub.channel == self.book_channel:
                payload = [sub.symbol, "100ms"] + ([str(SNAPSHOT_LIMIT)] if self.market == "futures" else [])
            elif sub.channel == self.candle_channel:
                payload = ["1m", sub.symbol]
            else:
                listed.setdefault(sub.channel, []).append(sub.symbol)
                continue
            out.append(self._request(now, sub.channel, event, payload))
        for channel, symbols in listed.items():
            out.insert(0, self._request(now, channel, event, symbols))
        return out

    @staticmethod
    def _request(now: int, channel: str, event: str, payload: list[str]) -> str:
        return orjson.dumps({"time": now, "channel": channel, "event": event, "payload": payload}).decode()

    def snapshot_url(self, symbol: str, rest_url: str | None = None, limit: int = SNAPSHOT_LIMIT) -> str:
        base = with_default_path(rest_url, self.rest_url) if rest_url else self.rest_url
        return f"{base}?{self._spec.symbol_param}={symbol}&limit={limit}&with_id=true"

    def rest_cost(self, url: str) -> tuple[int, RateLimit]:
        """One request; Gate.io's public endpoints allow 200 requests per 10 s each (the tighter shared budget)."""
        return 1, GATEIO_REST_LIMIT

    # -- hot path ------------------------------------------------------------------------------------------
    def route(self, frame: str) -> Route:
        i = frame.find(_CHANNEL)
        if i < 0:
            return CONTROL
        start = i + _CHANNEL_LEN
        channel = frame[start : frame.find('"', start)]
        marker = self._symbol_marker.get(channel)
        if marker is None or _UPDATE not in frame:
            return CONTROL  # acks, errors, pongs, channels not read here
        r = frame.find(_RESULT)
        if channel == self.candle_channel:
            # "n":"1m_BTC_USDT": the interval, then the instrument
            return channel, _symbol_after(frame, marker, r if r >= 0 else 0, numbers=True).partition("_")[2]
        return channel, _symbol_after(frame, marker, r if r >= 0 else 0)

    def exchange_time(self, frame: str) -> int | None:
        """The push's ``time_ms`` when it has one (since 2022; 0 in acks), else its ``time`` (seconds), in ns."""
        i = frame.find('"time_ms":')
        if i >= 0:
            j = end = i + 10
            while end < len(frame) and frame[end].isdigit():
                end += 1
            if end > j and int(frame[j:end]) > 0:
                return int(frame[j:end]) * 1_000_000
        i = frame.find('"time":')
        if i < 0:
            return None
        j = end = i + 7
        while end < len(frame) and frame[end].isdigit():
            end += 1
        return int(frame[j:end]) * 1_000_000_000 if end > j else None

    def exchange_times(self, frames: pl.Series) -> pl.Series:
        ms = frames.str.extract(r'"time_ms":([0-9]+)', 1).cast(pl.Int64, strict=False)
        seconds = frames.str.extract(r'"time":([0-9]+)', 1).cast(pl.Int64, strict=False)
        out = pl.select(
            pl.when(ms > 0).then(ms * 1_000_000).otherwise(seconds * 1_000_000_000).alias(frames.name)
        ).to_series()
        return out

    def control_events(self, frame: str) -> list[StreamEvent]:
        """``"event":"subscribe"``/``"unsubscribe"`` frames: an ``error`` (or ``result.status`` "fail") is a refusal;
        a success names its streams only where the ack echoes the ``payload`` (acks today; not in 2021-2023)."""
        if '"event":"' not in frame or _UPDATE in frame:
            return []
        obj = json_object(frame)
        if obj is None:
            return []
        event = obj.get("event")
        channel = str(obj.get("channel", ""))
        error = obj.get("error")
        result = obj.get("result")
        status = result.get("status") if isinstance(result, dict) else None
        symbols = self.payload_symbols(channel, obj.get("payload"))
        if error or status == "fail":
            detail = f"{error.get('code', '')}: {error.get('message', '')}" if isinstance(error, dict) else str(error)
            return [StreamEvent(SUB_ERROR, channel, s, detail) for s in symbols or [""]]
        if event == "subscribe" and status == "success":
            return [StreamEvent(SUBSCRIBED, channel, s) for s in symbols]
        if event == "unsubscribe" and status == "success":
            return [StreamEvent(UNSUBSCRIBED, channel, s) for s in symbols]
        return []

    def payload_symbols(self, channel: str, payload: object) -> list[str]:
        if not isinstance(payload, list) or not payload:
            return []
        if channel == self.book_channel:
            return [str(payload[0])]
        if channel == self.candle_channel:
            return [str(payload[1])] if len(payload) > 1 else []
        return [str(p) for p in payload]

    def new_session(self, subs: Sequence[Subscription], rest_url: str | None) -> GateioSession:
        return GateioSession(self, subs, rest_url or self.rest_url)

    #: BookRebuilding: an update's ``t`` (ms), else the push's ``time_ms``
    book_time_patterns: tuple[str, ...] = (r'"t":(\d+)', r'"time_ms":([1-9]\d*)')

    def book_builder(self, symbol: str, *, keep_raw: bool = False) -> GateioBookBuilder:  # BookRebuilding
        return GateioBookBuilder(symbol, self.book_channel, keep_raw=keep_raw)

    def trade_history(self, channel: str) -> TradeHistory | None:
        """``GET /spot/trades`` / ``GET /futures/usdt/trades`` for the trade channel (see ``_history``)."""
        return self._history if channel == self.trade_channel else None

    # -- symbols and normalization -------------------------------------------------------------------------
    def normalize_symbol(self, symbol: str) -> str:
        """spot BTC_USDT -> BTC-USDT; futures BTC_USDT -> BTC-USDT-PERP."""
        base_quote = symbol.upper().replace("_", "-")
        return f"{base_quote}-PERP" if self.market == "futures" else base_quote

    def normalize_trades(self, raw: pl.DataFrame) -> pl.DataFrame:
        return self.normalize_trades_with_rejects(raw)[0]

    def normalize_trades_with_rejects(self, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(trades, rejects) of the trade channel: live pushes and REST history pages (a JSON array, as
        ``GateioTradeHistory.encode`` keeps them). ``trade_id`` is Gate.io's id; ``fills`` 1; ``seq_id`` and the
        fill range null (ids not contiguous per instrument). Spot: ``side`` as sent (the taker's), ``size`` the
        ``amount``. Futures: ``size`` = |size| contracts, ``side`` sell when ``size`` is negative."""
        rows = raw_rows(raw, self.id, [self.trade_channel])
        if rows.height == 0:
            return empty_normalized_trades(), empty_rejects()
        rest = rows.get_column("payload").str.starts_with("[")
        parts = [self._normalize(rows.filter(rest.not_()), rest=False), self._normalize(rows.filter(rest), rest=True)]
        return pl.concat([p[0] for p in parts]), pl.concat([p[1] for p in parts])

    def _normalize(self, rows: pl.DataFrame, *, rest: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
        if rows.height == 0:
            return empty_normalized_trades(), empty_rejects()
        futures = self.market == "futures"
        payload = rows.get_column("payload")
        if rest:
            decoded, ok = decode_json(payload, _REST_RECORDS)
            items: pl.Series = decoded
            event_ok = pl.lit(True)
            listed = True
        else:
            decoded, ok = decode_json(payload, _FUTURES_PUSH if futures else _SPOT_PUSH)
            items = decoded.struct.field("result")
            rows = rows.with_columns(_event=decoded.struct.field("event"), _channel=decoded.struct.field("channel"))
            event_ok = (pl.col("_event") == "update") & (pl.col("_channel") == self.trade_channel)
            listed = futures
        rows = rows.with_columns(_decoded=ok, _items=items)
        if listed:
            rows = rows.with_columns(_n=pl.col("_items").list.len()).explode(
                "_items", empty_as_null=True, keep_nulls=True
            )
        else:
            rows = rows.with_columns(_n=pl.when(pl.col("_items").is_null()).then(0).otherwise(1))
        it = pl.col("_items").struct
        size = it.field("size")
        own = pl.when(pl.col("symbol") != "").then(pl.col("symbol"))
        if futures:
            parsed = {
                "_symbol": pl.coalesce(it.field("contract"), own),
                "_size": size.str.strip_prefix("-"),
                "_side": pl.when(size.str.starts_with("-"))
                .then(pl.lit("sell"))
                .when(size.is_not_null())
                .then(pl.lit("buy")),
            }
        else:
            parsed = {
                "_symbol": pl.coalesce(it.field("currency_pair"), own),
                "_size": it.field("amount"),
                "_side": it.field("side"),
            }
        rows = rows.with_columns(
            _ts=ms_text_to_ns(it.field("create_time_ms")),
            _trade_id=it.field("id"),
            _price=it.field("price"),
            **single_fills(),
            _internal=it.field("is_internal").fill_null(False),
            **parsed,
        )
        text = pl.col("payload")
        numeric = text.str.contains(_PRICE_NUMBER) | text.str.contains(_FLOAT_DECIMAL)
        if not futures:
            numeric = numeric | text.str.contains(_AMOUNT_NUMBER)
        kind = "REST trade list" if rest else f"{self.trade_channel} push"
        reason = (
            pl.when(pl.col("_decoded").not_())
            .then(pl.lit(f"payload is not a {kind} in the documented layout"))
            .when(event_ok.not_().fill_null(True))
            .then(pl.lit(f"not an update of {self.trade_channel}"))
            .when(numeric)
            .then(pl.lit("price or size is a JSON number with a fraction (or a spot price/amount not a string)"))
            .when(pl.col("_n").fill_null(0) == 0)
            .then(pl.lit("no trades in the payload"))
            .when(pl.col("_items").is_null())
            .then(pl.lit("null trade in the payload"))
            .when(pl.col("_trade_id").str.contains(r"^[0-9]+$").not_().fill_null(True))
            .then(pl.lit("trade id is not an integer"))
            .when(pl.col("_internal"))
            .then(pl.lit("internal trade (insurance fund / ADL takeover): not matched on the book, not in candles"))
        )
        return split_trades(rows, exchange=self.id, normalize_symbol=self.normalize_symbol, reason=reason)
