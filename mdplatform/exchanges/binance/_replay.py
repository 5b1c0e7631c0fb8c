"""Binance spot / USD-M / COIN-M, server side: combined streams, SUBSCRIBE, REST depth snapshots and trade history.

REST trade history: ``historicalTrades`` from the recorded ``trade`` frames and ``aggTrades`` from the recorded
``aggTrade`` frames only (an aggregate is never derived from trades: a capture without aggTrade frames answers
aggTrades with an error saying so). Request weights and limits are the exchange's (``_history``); over the
budget the answer is Binance's: 429 with ``Retry-After`` and ``X-MBX-USED-WEIGHT-<interval>``, and an IP that
keeps sending during the Retry-After period is banned with 418 (for two windows, the docs' shortest ban).
"""

from __future__ import annotations

import re
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from ...book import L2Book
from ...contract import (
    CapturedFrame,
    HttpHeaders,
    HttpReply,
    Prepared,
    Query,
    ReplayClient,
    ReplayProtocol,
    Throttled,
    TradeLog,
)
from ...history import RateLimit
from ...history._rest import used_weight_header
from ._exchange import BinanceBookBuilder, BinanceExchange
from ._history import BinanceRestSpec, binance_rest_spec

__all__ = ["BinanceReplay", "stream_key"]

_STREAM_PREFIX = '{"stream":"'
_DEPTH_STREAM = re.compile(r"^(.+@depth)(?:@\d+ms)?$")
#: REST depth endpoint and default limit per market
_DEPTH_PATHS = {
    "binance": ("/api/v3/depth", 100),
    "binance-usdm": ("/fapi/v1/depth", 500),
    "binance-coinm": ("/dapi/v1/depth", 500),
}
_MAX_LIMIT = 5000
_EARLY_DIFFS = 10_000
#: aggTrades refuses a startTime..endTime span of an hour or more
_AGG_MAX_SPAN_MS = 3_600_000
_TRADE_CHANNELS = ("trade", "aggTrade")
_QUOTE_8 = Decimal("0.00000001")


def stream_key(stream: str) -> str:
    """The subscription key of a stream name: any update speed of a diff-depth stream is the same key.

    "btcusdt@depth@100ms", "btcusdt@depth@0ms" and "btcusdt@depth" -> "btcusdt@depth"; partial-depth
    streams ("btcusdt@depth5@100ms") and everything else are their own key.
    """
    s = stream.lower()
    m = _DEPTH_STREAM.match(s)
    return m.group(1) if m else s


@dataclass(slots=True)
class _Diff:
    symbol: str
    last: int  # u
    data: dict[str, Any]  # the depthUpdate event (levels and ids for the book builder)
    event_ms: int | None  # E
    trans_ms: int | None  # T


@dataclass(slots=True)
class _Snapshot:
    symbol: str
    body: dict[str, Any]


@dataclass(slots=True)
class _ServerBook:
    """The exchange's view of one instrument: the recorded snapshot, then every diff the cursor passed,
    kept by the exchange module's own book builder (Binance's sync rules)."""

    symbol: str
    builder: BinanceBookBuilder | None = None  # created once the recording is known to hold a snapshot
    recorded: dict[str, Any] | None = None
    recorded_raw: bytes = b""
    passed: bool = False  # the cursor reached the recorded snapshot
    event_ms: int | None = None
    trans_ms: int | None = None
    #: E/T of diffs buffered before the snapshot, by u: the last one applied gives the book its times
    early_times: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)

    def on_diff(self, diff: _Diff) -> None:
        builder = self.builder
        if builder is None:
            return
        applied = builder.applied
        builder.on_depth(diff.data)
        if builder.applied != applied:
            self.event_ms, self.trans_ms = diff.event_ms, diff.trans_ms
        elif not self.passed and len(self.early_times) < _EARLY_DIFFS:
            self.early_times[diff.last] = (diff.event_ms, diff.trans_ms)

    def on_snapshot(self, body: dict[str, Any]) -> None:
        builder = self.builder
        if builder is None or self.passed:
            return
        self.passed = True
        builder.on_snapshot(body)
        if builder.state == "synced":
            last = builder.book.update_id
            default = (body.get("E"), body.get("T"))
            self.event_ms, self.trans_ms = self.early_times.get(last, default) if last is not None else default
        self.early_times.clear()

    def book(self) -> L2Book | None:
        builder = self.builder
        return builder.book if builder is not None and builder.state == "synced" else None


class BinanceReplay(ReplayProtocol):
    server_pings = True
    rest_bans = True

    def __init__(self, exchange: BinanceExchange) -> None:
        exchange_id = exchange.id
        super().__init__(exchange_id)
        self._depth_path, self._default_limit = _DEPTH_PATHS[exchange_id]
        self._books: dict[str, _ServerBook] = {}
        self._exchange = exchange
        self._spec: BinanceRestSpec = binance_rest_spec(exchange_id)
        #: channel ("trade", "aggTrade") -> symbol -> recorded trades in the REST layout
        self._logs: dict[str, dict[str, TradeLog]] = {channel: {} for channel in _TRADE_CHANNELS}
        #: every symbol the recording has a stream of
        self._symbols: set[str] = set()

    # --- the recording -----------------------------------------------------------------------------

    def scan(self, frame: CapturedFrame, *, times: bool) -> int | None:
        if frame.kind == "rest":
            body = orjson.loads(frame.frame)
            if isinstance(body, dict) and "lastUpdateId" in body and frame.symbol:
                book = self._book(frame.symbol)
                if book.recorded is None:
                    book.recorded, book.recorded_raw = body, frame.frame.encode()
                    book.builder = self._exchange.book_builder(frame.symbol, keep_raw=True)
                return _latest(body) if times else None
            return None
        text = frame.frame
        if not text.startswith(_STREAM_PREFIX):
            return None
        stream = text[len(_STREAM_PREFIX) : text.find('"', len(_STREAM_PREFIX))]
        name, _, kind = stream.partition("@")
        self._symbols.add(name.upper())
        if stream_key(stream).endswith("@depth"):
            self._book(name.upper())
        trades = kind in _TRADE_CHANNELS
        if not times and not trades:
            return None
        data = orjson.loads(text).get("data")
        if not isinstance(data, dict):
            return None
        if trades:
            self._record(kind, name.upper(), data, frame.recv_ns)
        return _latest(data) if times else None

    def _record(self, channel: str, symbol: str, data: dict[str, Any], recv_ns: int) -> None:
        """Keep a recorded trade/aggTrade event as the REST record of the same trade."""
        futures = self._exchange.futures
        try:
            if channel == "trade":
                trade_id, time_ms, price, qty = data["t"], data["T"], data["p"], data["q"]
                record: dict[str, object] = {"id": trade_id, "price": price, "qty": qty}
                if self.exchange_id == "binance-coinm":
                    record["baseQty"] = _base_qty(symbol, price, qty)
                else:
                    record["quoteQty"] = _quote_qty(price, qty)
                record["time"] = time_ms
                record["isBuyerMaker"] = data["m"]
                if not futures and "M" in data:
                    record["isBestMatch"] = data["M"]
            else:
                trade_id, time_ms = data["a"], data["T"]
                record = {k: data[k] for k in ("a", "p", "q", "f", "l", "T", "m")}
                if not futures and "M" in data:
                    record["M"] = data["M"]
        except KeyError:
            return  # not a trade event in the documented layout: nothing the exchange would serve
        if not isinstance(trade_id, int) or not isinstance(time_ms, int):
            return
        log = self._logs[channel].get(symbol)
        if log is None:
            log = self._logs[channel][symbol] = TradeLog()
        log.add(trade_id, time_ms, recv_ns, record)

    def finish_scan(self) -> None:
        for logs in self._logs.values():
            for log in logs.values():
                log.finish()

    def prepare(self, frame: CapturedFrame) -> Prepared | None:
        if frame.kind == "rest":
            body = orjson.loads(frame.frame)
            if not isinstance(body, dict) or "lastUpdateId" not in body or not frame.symbol:
                return None
            return Prepared(frame.recv_ns, None, "depthSnapshot", None, _Snapshot(frame.symbol, body))
        text = frame.frame
        if not text.startswith(_STREAM_PREFIX):
            return None  # recorded subscribe acks and the like: the server answers its own clients
        stream = text[len(_STREAM_PREFIX) : text.find('"', len(_STREAM_PREFIX))]
        key = stream_key(stream)
        shift = self.shift_ms
        update: _Diff | None = None
        if shift or key.endswith("@depth"):
            msg = orjson.loads(text)
            data = msg.get("data")
            if isinstance(data, dict):
                if "U" in data and "u" in data:
                    symbol = stream.partition("@")[0].upper()
                    update = _Diff(symbol, int(data["u"]), data, data.get("E"), data.get("T"))
                if shift:
                    _shift(data, shift)
                    return Prepared(frame.recv_ns, key, stream, orjson.dumps(msg), update)
        return Prepared(frame.recv_ns, key, stream, text.encode(), update)

    def advance(self, frame: Prepared) -> None:
        update = frame.update
        if update is None:
            return
        if isinstance(update, _Diff):
            book = self._books.get(update.symbol)
            if book is not None:
                book.on_diff(update)
        elif isinstance(update, _Snapshot):
            self._book(update.symbol).on_snapshot(update.body)

    def _book(self, symbol: str) -> _ServerBook:
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = _ServerBook(symbol)
        return book

    # --- clients -----------------------------------------------------------------------------------

    def accepts(self, path: str) -> bool:
        return path.rstrip("/") == "/stream"

    def on_open(self, client: ReplayClient, path: str, query: Query) -> list[bytes]:
        for streams in query.get("streams", []):
            for name in streams.split("/"):
                if name:
                    client.subscribe(name, stream_key(name))
        return []

    def on_message(self, client: ReplayClient, text: str) -> list[bytes]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [orjson.dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})]
        if not isinstance(msg, dict):
            return [orjson.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": None})]
        method, req_id, params = msg.get("method"), msg.get("id"), msg.get("params")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return [_error(req_id, "Invalid request: 'params' must be a list of stream names")]
            for name in params:
                if method == "SUBSCRIBE":
                    client.subscribe(name, stream_key(name))
                else:
                    client.unsubscribe(name)
            return [orjson.dumps({"result": None, "id": req_id})]
        if method == "LIST_SUBSCRIPTIONS":
            return [orjson.dumps({"result": list(client.names), "id": req_id})]
        if method == "SET_PROPERTY":
            return [orjson.dumps({"result": None, "id": req_id})]
        if method == "GET_PROPERTY":
            return [orjson.dumps({"result": True, "id": req_id})]
        return [_error(req_id, f"Invalid request: unknown method {method!r}")]

    # --- REST --------------------------------------------------------------------------------------

    @property
    def default_rest_limit(self) -> RateLimit:
        return self._spec.rate_limit

    def rest_weight(self, path: str, query: Query) -> int | None:
        path = path.rstrip("/")
        spec = self._spec
        if path == spec.trades_path:
            return spec.trades_weight
        if path == spec.agg_path:
            return spec.agg_weight
        if path == self._depth_path:
            try:
                limit = _int(query, "limit")
            except _IllegalParameter:
                limit = None
            return spec.depth_weight(self._default_limit if limit is None else limit)
        return None

    def rest_headers(self, used: int, limit: RateLimit) -> HttpHeaders:
        # X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter): "X-MBX-USED-WEIGHT-1M" for the real one-minute window
        return {used_weight_header(limit.per_s).upper(): str(used)}

    def throttled(self, status: int, retry_after_s: int, used: int, limit: RateLimit) -> Throttled:
        headers = self.rest_headers(used, limit)
        headers["Retry-After"] = str(retry_after_s)
        if status == 418:
            until_ms = time.time_ns() // 1_000_000 + retry_after_s * 1000
            msg = (
                f"Way too much request weight used; IP banned until {until_ms}. "
                "Please use WebSocket Streams for live updates to avoid bans."
            )
        else:
            msg = (
                f"Too much request weight used; current limit is {limit.weight} request weight per "
                f"{_interval_text(limit.per_s)}. "
                "Please use WebSocket Streams for live updates to avoid polling the API."
            )
        return status, orjson.dumps({"code": -1003, "msg": msg}), headers

    def http_get(self, path: str, query: Query) -> HttpReply | None:
        path = path.rstrip("/")
        if path == self._spec.trades_path:
            return self._historical_trades(query)
        if path == self._spec.agg_path:
            return self._agg_trades(query)
        if path != self._depth_path:
            return None
        symbol = (query.get("symbol") or [""])[0].upper()
        book = self._books.get(symbol)
        if book is None:
            return 400, orjson.dumps({"code": -1121, "msg": "Invalid symbol."})
        try:
            limit = int((query.get("limit") or [str(self._default_limit)])[0])
        except ValueError:
            return 400, orjson.dumps({"code": -1100, "msg": "Illegal characters found in parameter 'limit'."})
        limit = max(1, min(limit, _MAX_LIMIT))
        if book.recorded is None:
            return 503, orjson.dumps({"code": -1, "msg": f"the replayed capture has no snapshot of {symbol}"})
        if book.passed and book.book() is None:
            return 503, orjson.dumps({"code": -1, "msg": f"the replayed capture has a gap in {symbol} depth"})
        return 200, self._depth_body(book, limit)

    def _depth_body(self, book: _ServerBook, limit: int) -> bytes:
        recorded = book.recorded
        assert recorded is not None
        shift = self.shift_ms
        live = book.book()
        if live is None:
            # before the cursor reaches the recorded reply, that reply is the exchange's future: serve it
            if not shift and len(recorded["bids"]) <= limit and len(recorded["asks"]) <= limit:
                return book.recorded_raw
            body = dict(recorded)
            body["bids"], body["asks"] = recorded["bids"][:limit], recorded["asks"][:limit]
        else:
            body = {}
            for key, value in recorded.items():
                if key == "lastUpdateId":
                    body[key] = live.update_id
                elif key == "E":
                    body[key] = book.event_ms if book.event_ms is not None else value
                elif key == "T":
                    body[key] = book.trans_ms if book.trans_ms is not None else value
                elif key == "bids":
                    body[key] = [list(level) for level in live.raw_bids(limit)]
                elif key == "asks":
                    body[key] = [list(level) for level in live.raw_asks(limit)]
                else:
                    body[key] = value
        if shift:
            _shift(body, shift)
        return orjson.dumps(body)

    def _trade_log(self, channel: str, query: Query) -> TradeLog | HttpReply:
        symbol = (query.get("symbol") or [""])[0].upper()
        if not symbol:
            return _rest_error(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        log = self._logs[channel].get(symbol)
        if log is not None:
            return log
        if symbol not in self._symbols:
            return _rest_error(-1121, "Invalid symbol.")
        if channel == "aggTrade":
            msg = (
                f"the replayed capture has no aggTrade frames of {symbol}: aggTrades are served only from recorded "
                "aggTrade frames, never derived from trades"
            )
        else:
            msg = f"the replayed capture has no trade frames of {symbol}"
        return 400, orjson.dumps({"code": -1, "msg": msg})

    def _records(self, log: TradeLog, indexes: list[int], time_key: str) -> bytes:
        shift = self.shift_ms
        records = log.records
        if not shift:
            return orjson.dumps([records[i] for i in indexes])
        out = []
        for i in indexes:
            record = dict(records[i])
            record[time_key] = log.times[i] + shift
            out.append(record)
        return orjson.dumps(out)

    def _historical_trades(self, query: Query) -> HttpReply:
        """``historicalTrades``: ``limit`` trades from ``fromId`` on (the most recent ones without it)."""
        log = self._trade_log("trade", query)
        if not isinstance(log, TradeLog):
            return log
        spec = self._spec
        try:
            limit, from_id = _int(query, "limit"), _int(query, "fromId")
        except _IllegalParameter as exc:
            return exc.reply
        limit = max(1, min(spec.trades_max, spec.trades_default if limit is None else limit))
        if from_id is None:
            indexes = log.backward(len(log), limit, self.visible)
        else:
            indexes = log.forward(bisect_left(log.ids, from_id), limit, self.visible)
        return 200, self._records(log, indexes, "time")

    def _agg_trades(self, query: Query) -> HttpReply:
        """``aggTrades``: from ``fromId`` and/or within [startTime, endTime] (inclusive), ``limit`` of them; the
        most recent ones without any of the three (or with only endTime: the most recent at/before it)."""
        log = self._trade_log("aggTrade", query)
        if not isinstance(log, TradeLog):
            return log
        spec = self._spec
        try:
            limit, from_id = _int(query, "limit"), _int(query, "fromId")
            start, end = _int(query, "startTime"), _int(query, "endTime")
        except _IllegalParameter as exc:
            return exc.reply
        limit = max(1, min(spec.agg_max, spec.agg_default if limit is None else limit))
        if start is not None and end is not None and end - start >= _AGG_MAX_SPAN_MS:
            return _rest_error(-1127, "More than 1 hours between startTime and endTime.")
        shift = self.shift_ms
        lo, hi = 0, len(log)
        if from_id is not None:
            lo = bisect_left(log.ids, from_id)
        if start is not None:
            lo = max(lo, bisect_left(log.times, start - shift))
        if end is not None:
            hi = bisect_right(log.times, end - shift)
        if from_id is None and start is None:
            indexes = log.backward(hi, limit, self.visible, lo)
        else:
            indexes = log.forward(lo, limit, self.visible, hi)
        return 200, self._records(log, indexes, "T")


class _IllegalParameter(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.reply = _rest_error(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        )


def _int(query: Query, name: str) -> int | None:
    """An integer parameter, None when absent; ``_IllegalParameter`` when it is not one."""
    values = query.get(name)
    if not values:
        return None
    raw = values[0]
    if not raw.isdigit() or len(raw) > 20:
        raise _IllegalParameter(name)
    return int(raw)


def _rest_error(code: int, msg: str) -> HttpReply:
    return 400, orjson.dumps({"code": code, "msg": msg})


def _interval_text(per_s: float) -> str:
    seconds = round(per_s)
    for unit, name in ((86_400, "DAY"), (3_600, "HOUR"), (60, "MINUTE")):
        if seconds >= unit and seconds % unit == 0:
            return f"{seconds // unit} {name}"
    return f"{max(seconds, 1)} SECOND"


def _quote_qty(price: str, qty: str) -> str:
    """price x qty, exact (spot and USD-M ``quoteQty``)."""
    try:
        value = Decimal(price) * Decimal(qty)
    except InvalidOperation:
        return "0"
    return format(value.normalize(), "f")


def _base_qty(symbol: str, price: str, qty: str) -> str:
    """COIN-M ``baseQty``: contracts x contract size (100 USD for BTC, 10 USD for the others) / price."""
    size = Decimal(100) if symbol.startswith("BTC") else Decimal(10)
    try:
        value = Decimal(qty) * size / Decimal(price)
    except (InvalidOperation, ZeroDivisionError):
        return "0"
    return format(value.quantize(_QUOTE_8), "f")


def _error(req_id: object, msg: str) -> bytes:
    return orjson.dumps({"error": {"code": 2, "msg": msg}, "id": req_id})


#: event/transaction times; klines also carry their own open/close times
_TIME_KEYS = ("E", "T")
_KLINE_TIME_KEYS = ("t", "T")


def _shift(data: dict[str, Any], shift_ms: int) -> None:
    for key in _TIME_KEYS:
        value = data.get(key)
        if isinstance(value, int):
            data[key] = value + shift_ms
    kline = data.get("k")
    if isinstance(kline, dict):
        for key in _KLINE_TIME_KEYS:
            value = kline.get(key)
            if isinstance(value, int):
                kline[key] = value + shift_ms


def _latest(data: dict[str, Any]) -> int | None:
    times = [v for k in _TIME_KEYS if isinstance(v := data.get(k), int)]
    return max(times) if times else None
