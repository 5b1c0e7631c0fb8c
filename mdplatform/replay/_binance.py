"""Binance spot / USD-M / COIN-M, server side: combined streams, SUBSCRIBE, REST depth snapshots."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..book import L2Book
from ..capture import CapturedFrame
from ..exchanges import BinanceBookBuilder, BinanceExchange, get_exchange
from ._protocol import HttpReply, Prepared, Query, ReplayClient, ReplayProtocol

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

    def __init__(self, exchange_id: str) -> None:
        super().__init__(exchange_id)
        if exchange_id not in _DEPTH_PATHS:
            raise ValueError(f"not a Binance market: {exchange_id!r}")
        self._depth_path, self._default_limit = _DEPTH_PATHS[exchange_id]
        self._books: dict[str, _ServerBook] = {}
        exchange = get_exchange(exchange_id)
        assert isinstance(exchange, BinanceExchange)
        self._exchange = exchange

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
        if stream_key(stream).endswith("@depth"):
            self._book(stream.partition("@")[0].upper())
        if not times:
            return None
        data = orjson.loads(text).get("data")
        return _latest(data) if isinstance(data, dict) else None

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

    def http_get(self, path: str, query: Query) -> HttpReply | None:
        if path.rstrip("/") != self._depth_path:
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
