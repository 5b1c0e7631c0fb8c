"""MEXC spot v3 WebSocket, server side: ``SUBSCRIPTION``/``UNSUBSCRIPTION`` with MEXC's answers, ``{"method":"PING"}``
answered ``PONG``, the recorded protobuf pushes sent as recorded (times re-encoded when the replay rebases them), and
the REST endpoints the platform calls: ``GET /api/v3/depth`` from the book the cursor keeps and ``GET /api/v3/trades``
from the recorded deals.

Frames: a recording keeps each binary push as a Python bytes literal (cryptofeed's ``b'...'``); the replay sends those
bytes. The replay server writes every frame as a WebSocket text frame (its one frame kind): the collector tells a
binary push by its content (not UTF-8: every push holds its body's field tag, 0xCA/0xD2/0xDA 0x13), not by the
opcode, so the bytes take the same path as MEXC's binary frames.

The server's book of a symbol is the capture's first recorded ``/api/v3/depth`` reply, then every recorded depth push
the cursor passes whose ``toVersion`` goes beyond it (the exchange never loses its own pushes: a push left out of a
recording is one a client lost). Before the cursor reaches the recorded reply's version, that reply is served as
recorded (the exchange's future, as the Binance replay does).

Answers follow the "Websocket Market Streams" page (``{"id":0,"code":0,"msg":<params>}``; a stream refused:
``"Not Subscribed successfully! [<streams>].  Reason: Blocked! "``, a full-width colon, as users report it; the docs
show none); at most
30 subscriptions per connection (MEXC's limit: further ones are refused the same way). Over the REST budget
(500 per 10 s) the answer is HTTP 429 with ``Retry-After``, and 418 for an IP that keeps sending ("General Info /
Limits": bans scale from 2 minutes to 3 days); the body ``{"code":429,"msg":"Too Many Requests"}`` is not documented.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
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
)
from ...history import RateLimit
from .._scan import json_object
from .._trade_logs import TradeLogs
from . import _proto
from ._exchange import DEPTH_URL, STREAMS_PER_CONNECTION, MexcExchange, _split
from ._history import MEXC_TRADES_PATH, TRADES_WEIGHT, mexc_rest_limit

__all__ = ["MexcReplay"]

_CONTROL = "control"
_DEPTH_PATH = "/api/v3/depth"
_DEPTH_DEFAULT, _DEPTH_MAX = 100, 5000
_TRADES_DEFAULT, _TRADES_MAX = 500, 1000
_REFUSAL = "Not Subscribed successfully! [{}].  Reason\uff1a Blocked! "


@dataclass(slots=True)
class _Depth:
    symbol: str
    first: int
    last: int
    bids: list[list[str]]
    asks: list[list[str]]
    send_ms: int | None


@dataclass(slots=True)
class _Snapshot:
    symbol: str


class _ServerBook:
    """One symbol's book as MEXC keeps it (the module docstring)."""

    __slots__ = ("book", "passed", "recorded", "send_ms", "version")

    def __init__(self, recorded: dict[str, Any]) -> None:
        self.recorded = recorded
        self.book = L2Book(str(recorded.get("symbol", "")), keep_raw=True)
        self.book.load(recorded.get("bids") or [], recorded.get("asks") or [])
        self.version = int(recorded["lastUpdateId"])
        #: the newest push applied moved the book past the recorded reply
        self.passed = False
        self.send_ms: int | None = None

    def apply(self, diff: _Depth) -> None:
        if diff.last <= self.version:
            return  # already in the book
        self.book.apply(diff.bids, diff.asks)
        self.version = diff.last
        self.send_ms = diff.send_ms
        self.passed = True

    def body(self, limit: int, shift_ms: int) -> dict[str, Any]:
        recorded = self.recorded
        if not self.passed:
            ts = recorded.get("timestamp")
            return {
                "lastUpdateId": self.version,
                "bids": recorded.get("bids", [])[:limit],
                "asks": recorded.get("asks", [])[:limit],
                "timestamp": ts + shift_ms if isinstance(ts, int) else ts,
            }
        ts = self.send_ms if self.send_ms is not None else recorded.get("timestamp")
        return {
            "lastUpdateId": self.version,
            "bids": [list(level) for level in self.book.raw_bids(limit)],
            "asks": [list(level) for level in self.book.raw_asks(limit)],
            "timestamp": ts + shift_ms if isinstance(ts, int) else ts,
        }


def _bytes(frame: str) -> bytes | None:
    """A recorded binary frame (a bytes literal) as its bytes; None for a text frame."""
    if frame[:2] not in ("b'", 'b"'):
        return None
    value = ast.literal_eval(frame)
    return value if isinstance(value, bytes) else None


def _levels(items: Any) -> list[list[str]]:
    return [[i.price, i.quantity] for i in items]


class MexcReplay(ReplayProtocol):
    server_pings = False  # clients send {"method":"PING"}
    binary_frames = True  # pushes are protocol buffers (acks and PONG are JSON text)
    rest_bans = True  # repeated 429s get the IP banned (418)

    def __init__(self, exchange: MexcExchange) -> None:
        super().__init__(exchange.id)
        self._exchange = exchange
        self._channels = exchange.capabilities.channels
        self._depth_channels = exchange.capabilities.book_channels
        self._deal_channels = exchange.capabilities.trade_channels
        self._books: dict[str, _ServerBook] = {}
        #: symbol -> recorded trades in the ``/api/v3/trades`` layout, in recording order
        self._trades = TradeLogs()
        self._seen: set[tuple[str, str]] = set()
        self._order = 0
        #: every symbol the recording has a push of (others are refused)
        self._symbols: set[str] = set()

    # --- the recording -----------------------------------------------------------------------------

    def scan(self, frame: CapturedFrame, *, times: bool) -> int | None:
        if frame.kind == "rest":
            body = orjson.loads(frame.frame)
            if isinstance(body, dict) and "lastUpdateId" in body and frame.symbol:
                if frame.symbol not in self._books:
                    self._books[frame.symbol] = _ServerBook({"symbol": frame.symbol, **body})
                ts = body.get("timestamp")
                return ts if times and isinstance(ts, int) else None
            return None
        data = _bytes(frame.frame) if frame.kind == "ws" else None
        if data is None:
            return None
        msg = _proto.parse(data)
        channel, symbol = self._exchange.route(f'{{"channel":"{msg.channel}"}}')
        if symbol:
            self._symbols.add(symbol)
        if channel in self._deal_channels:
            for item in msg.publicAggreDeals.deals:
                self._record(symbol, item, frame.recv_ns)
        return msg.sendTime if times and msg.HasField("sendTime") else None

    def _record(self, symbol: str, item: Any, recv_ns: int) -> None:
        key = item.tradeId or f"{item.time}-{item.price}-{item.quantity}-{item.tradeType}"
        if (symbol, key) in self._seen:
            return  # the same trade on the symbol's other push rate, or recorded twice
        self._seen.add((symbol, key))
        log = self._trades.log(symbol)
        self._order += 1
        record = {
            "id": None,
            "price": item.price,
            "qty": item.quantity,
            "quoteQty": _quote(item.price, item.quantity),
            "time": int(item.time),
            "isBuyerMaker": item.tradeType == 2,
            "isBestMatch": True,
            "tradeType": "BID" if item.tradeType == 1 else "ASK",
        }
        log.add(self._order, int(item.time), recv_ns, record)

    def finish_scan(self) -> None:
        self._trades.finish()

    def prepare(self, frame: CapturedFrame) -> Prepared | None:
        if frame.kind == "rest":
            return Prepared(frame.recv_ns, None, "depthSnapshot", None, _Snapshot(frame.symbol))
        data = _bytes(frame.frame) if frame.kind == "ws" else None
        if data is None:
            return None  # recorded JSON answers (acks, PONG): the server answers its own clients
        msg = _proto.parse(data)
        stream = msg.channel
        channel, symbol = self._exchange.route(f'{{"channel":"{stream}"}}')
        update: _Depth | None = None
        if channel in self._depth_channels:
            body = msg.publicAggreDepths
            update = _Depth(
                symbol,
                int(body.fromVersion),
                int(body.toVersion),
                _levels(body.bids),
                _levels(body.asks),
                msg.sendTime if msg.HasField("sendTime") else None,
            )
        shift = self.shift_ms
        if shift:
            _shift(msg, shift)
            data = msg.SerializeToString()
        return Prepared(frame.recv_ns, stream, stream, data, update)

    def advance(self, frame: Prepared) -> None:
        update = frame.update
        if isinstance(update, _Depth):
            book = self._books.get(update.symbol)
            if book is not None:
                book.apply(update)

    # --- clients -----------------------------------------------------------------------------------

    def accepts(self, path: str) -> bool:
        return path.rstrip("/") == "/ws"

    def on_open(self, client: ReplayClient, path: str, query: Query) -> list[bytes]:
        return []

    def on_message(self, client: ReplayClient, text: str) -> list[bytes]:
        msg = json_object(text)
        if msg is None:
            return [_answer(text[:100], code=400)]
        method = str(msg.get("method", "")).upper()
        if method == "PING":
            return [_answer("PONG")]
        params = msg.get("params")
        if method not in ("SUBSCRIPTION", "UNSUBSCRIPTION") or not isinstance(params, list) or not params:
            return [_answer(f"Invalid request: {text[:100]}", code=400)]
        names = [str(p) for p in params]
        if method == "UNSUBSCRIPTION":
            for name in names:
                client.unsubscribe(name)
            return [_answer(",".join(names))]
        refused: list[str] = []
        for name in names:
            channel, symbol = _split(name)
            full = name not in client.names and len(client.names) >= STREAMS_PER_CONNECTION
            if channel not in self._channels or symbol not in self._symbols or full:
                refused.append(name)
                continue
            client.subscribe(name, name)
        if refused:
            return [_answer(_REFUSAL.format(",".join(refused)))]
        return [_answer(",".join(names))]

    # --- REST --------------------------------------------------------------------------------------

    @property
    def default_rest_limit(self) -> RateLimit:
        return mexc_rest_limit()

    def rest_weight(self, path: str, query: Query) -> int | None:
        path = path.rstrip("/")
        if path == _DEPTH_PATH:
            return 1
        if path == MEXC_TRADES_PATH:
            return TRADES_WEIGHT
        return None

    def rest_headers(self, used: int, limit: RateLimit) -> HttpHeaders:
        return {}

    def throttled(self, status: int, retry_after_s: int, used: int, limit: RateLimit) -> Throttled:
        body = {"code": status, "msg": "Too Many Requests" if status == 429 else "IP banned"}
        return status, orjson.dumps(body), {"Retry-After": str(retry_after_s)}

    def http_get(self, path: str, query: Query) -> HttpReply | None:
        path = path.rstrip("/")
        if path == _DEPTH_PATH:
            return self._depth(query)
        if path == MEXC_TRADES_PATH:
            return self._recent_trades(query)
        return None

    def _symbol_limit(self, query: Query, default: int, most: int) -> tuple[str, int, HttpReply | None]:
        """(symbol, limit, the error answer or None)."""
        symbol = (query.get("symbol") or [""])[0].upper()
        if symbol not in self._symbols and symbol not in self._books:
            return symbol, 0, (400, orjson.dumps({"code": -1121, "msg": "Invalid symbol."}))
        raw = (query.get("limit") or [""])[0]
        if raw and not raw.isdigit():
            return symbol, 0, (400, orjson.dumps({"code": 700002, "msg": "limit is not a number"}))
        return symbol, max(1, min(most, int(raw))) if raw else default, None

    def _depth(self, query: Query) -> HttpReply:
        symbol, limit, error = self._symbol_limit(query, _DEPTH_DEFAULT, _DEPTH_MAX)
        if error is not None:
            return error
        book = self._books.get(symbol)
        if book is None:
            return 503, orjson.dumps({"code": -1, "msg": f"the replayed capture has no {DEPTH_URL} reply of {symbol}"})
        return 200, orjson.dumps(book.body(limit, self.shift_ms))

    def _recent_trades(self, query: Query) -> HttpReply:
        """The last ``limit`` trades the cursor has passed (the whole recording while nobody subscribed), newest
        first, ``id`` null as MEXC answers."""
        symbol, limit, error = self._symbol_limit(query, _TRADES_DEFAULT, _TRADES_MAX)
        if error is not None:
            return error
        log = self._trades.get(symbol)
        rows: list[dict[str, object]] = []
        if log is not None:
            shift = self.shift_ms
            for i in reversed(log.backward(len(log), limit, self.visible)):
                record = log.records[i]
                rows.append({**record, "time": log.times[i] + shift} if shift else record)
        return 200, orjson.dumps(rows)


def _answer(msg: str, *, code: int = 0) -> bytes:
    return orjson.dumps({"id": 0, "code": code, "msg": msg})


def _quote(price: str, qty: str) -> str:
    try:
        return str(Decimal(price) * Decimal(qty))
    except InvalidOperation:
        return ""


def _shift(msg: Any, shift_ms: int) -> None:
    """Every exchange time of a push moved by ``shift_ms`` (the replay's rebase), in place."""
    for name in ("createTime", "sendTime"):
        if msg.HasField(name):
            setattr(msg, name, getattr(msg, name) + shift_ms)
    body = msg.WhichOneof("body")
    if body == _proto.BODY_DEALS:
        for item in msg.publicAggreDeals.deals:
            if item.time:
                item.time += shift_ms
    elif body == _proto.BODY_DEPTHS:
        depths = msg.publicAggreDepths
        if depths.lastOrderCreateTime:
            depths.lastOrderCreateTime += shift_ms
    elif body == _proto.BODY_KLINE:
        kline = msg.publicSpotKline  # window bounds in seconds (the shift is whole minutes)
        kline.windowStart += shift_ms // 1000
        kline.windowEnd += shift_ms // 1000
