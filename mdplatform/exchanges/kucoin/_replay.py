"""KuCoin spot, server side: ``POST /api/v1/bullet-public`` (a token, this server's endpoint, a ping interval), the
``welcome`` frame, ``ping``/``pong``, ``subscribe``/``unsubscribe`` with acks and KuCoin's limits, the REST book
``GET /api/v1/market/orderbook/level2_100`` (also ``level2_20`` and the full ``/api/v3/market/orderbook/level2``) and
the REST trade history ``GET /api/v1/market/histories`` from the recorded ``match`` pushes (pages as in ``_exchange``).

The server keeps each symbol's book as KuCoin does: from a recorded REST snapshot on, every recorded level2 change
beyond the book's sequence is applied, whatever a client misses (a diff left out of a capture is a gap for the
client, not for the exchange). Before the cursor reaches a symbol's recorded snapshot, REST answers with that
recorded snapshot (the client then skips the diffs it already contains). Over the REST budget (public pool, 2000
weight per 30 s) the answer is KuCoin's: HTTP 429 ``{"code":"429000","msg":"Too Many Requests"}``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
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
from ._book import diff_ids
from ._exchange import STREAMS_PER_CONNECTION, KucoinExchange
from ._history import HISTORY_WEIGHT, KUCOIN_PUBLIC_LIMIT
from ._wire import BULLET_PATH, CHANNELS, HISTORY_PATH, SNAPSHOT_PATH, TOPIC_SYMBOLS, route_topic, time_ns

__all__ = ["KucoinReplay"]

_CONTROL = "control"
_BOOK_PATHS = {SNAPSHOT_PATH: 100, "/api/v1/market/orderbook/level2_20": 20, "/api/v3/market/orderbook/level2": None}
_WEIGHTS = {BULLET_PATH: 10, SNAPSHOT_PATH: 4, "/api/v1/market/orderbook/level2_20": 2, HISTORY_PATH: HISTORY_WEIGHT}
_WEIGHTS["/api/v3/market/orderbook/level2"] = 3
_HISTORY_MAX = 100
_OK = "200000"


@dataclass(slots=True)
class _Load:
    symbol: str
    data: dict[str, Any]


@dataclass(slots=True)
class _Changes:
    symbol: str
    end: int
    data: dict[str, Any]


class _ServerBook:
    """One symbol's book as the exchange has it: a REST snapshot, then every change beyond its sequence."""

    __slots__ = ("book", "ms", "seq")

    def __init__(self, symbol: str) -> None:
        self.book = L2Book(symbol, keep_raw=True)
        self.seq = -1
        self.ms: int | None = None

    def load(self, data: dict[str, Any]) -> None:
        self.book.load(data.get("bids") or [], data.get("asks") or [])
        self.seq = int(data["sequence"])
        t = data.get("time")
        self.ms = int(t) if isinstance(t, int) else self.ms

    def apply(self, data: dict[str, Any], end: int) -> None:
        changes = data.get("changes") or {}
        sides = []
        for side in ("bids", "asks"):
            levels = []
            for level in changes.get(side) or ():
                if int(level[2]) <= self.seq or not level[0].strip("0."):
                    continue  # already in the book, or a sequence-only change (price 0)
                levels.append(level[:2])
            sides.append(levels)
        self.book.apply(sides[0], sides[1])
        self.seq = max(self.seq, end)
        t = data.get("time")
        self.ms = int(t) if isinstance(t, int) else self.ms

    def rest(self, depth: int | None, shift_ms: int, now_ms: int | None) -> bytes:
        book = self.book
        ms = self.ms if self.ms is not None else now_ms
        data = {
            "time": None if ms is None else ms + shift_ms,
            "sequence": str(self.seq),
            "bids": [[p, s] for p, s in book.raw_bids(depth)],
            "asks": [[p, s] for p, s in book.raw_asks(depth)],
        }
        return orjson.dumps({"code": _OK, "data": data})


class KucoinReplay(ReplayProtocol):
    server_pings = False  # KuCoin clients send {"type":"ping"}

    def __init__(self, exchange: KucoinExchange) -> None:
        super().__init__(exchange.id)
        self._route = exchange.route
        self._books: dict[str, _ServerBook] = {}
        #: symbol -> the first recorded REST snapshot (served until the cursor reaches it)
        self._recorded: dict[str, dict[str, Any]] = {}
        self._trades = TradeLogs()
        self._symbols: set[str] = set()
        #: what ``bullet-public`` hands out (tests shorten the ping interval)
        self.ping_interval_ms = 18_000
        self.ping_timeout_ms = 10_000
        self.token = "replay-" + secrets.token_hex(8)
        #: tokens and connectIds the WebSocket clients came with, in order; pings answered
        self.tokens: list[str] = []
        self.connect_ids: list[str] = []
        self.pings = 0
        self.tokens_issued = 0
        self.rest_books = 0
        self.last_ms: int | None = None

    # --- the recording -----------------------------------------------------------------------------------------

    def scan(self, frame: CapturedFrame, *, times: bool) -> int | None:
        if frame.kind == "rest":
            if frame.symbol and frame.symbol not in self._recorded and '"sequence"' in frame.frame:
                data = orjson.loads(frame.frame).get("data")
                if isinstance(data, dict):
                    self._recorded[frame.symbol] = data
            return None
        if frame.kind != "ws":
            return None
        channel, symbol = self._route(frame.frame)
        if channel == _CONTROL:
            return None
        self._symbols.add(symbol)
        if channel == "match":
            self._record(symbol, frame)
        t = time_ns(frame.frame) if times else None
        return None if t is None else t // 1_000_000

    def _record(self, symbol: str, frame: CapturedFrame) -> None:
        d = orjson.loads(frame.frame).get("data")
        try:
            seq, t = int(d["sequence"]), int(d["time"])
            record = {"sequence": d["sequence"], "price": d["price"], "size": d["size"], "side": d["side"], "time": t}
        except (KeyError, TypeError, ValueError):
            return  # not a trade in the documented layout: nothing the exchange would serve
        log = self._trades.log(symbol)
        log.add(seq, t // 1_000_000, frame.recv_ns, record)

    def finish_scan(self) -> None:
        self._trades.finish()

    def prepare(self, frame: CapturedFrame) -> Prepared | None:
        text = frame.frame
        if frame.kind == "rest":
            data = self._recorded.get(frame.symbol)
            if data is not None and '"sequence"' in text:
                loaded = orjson.loads(text).get("data")
                if isinstance(loaded, dict):
                    return Prepared(frame.recv_ns, None, f"rest:{frame.symbol}", None, _Load(frame.symbol, loaded))
            return None
        if frame.kind != "ws":
            return None
        channel, symbol = self._route(text)
        if channel == _CONTROL or not channel:
            return None  # recorded welcome, acks, pongs: the server answers its own clients
        key = f"{channel}:{symbol}"
        update: _Changes | None = None
        msg: dict[str, Any] | None = None
        if channel == "level2":
            ids = diff_ids(text)
            if ids is not None:
                msg = orjson.loads(text)
                update = _Changes(symbol, ids[1], msg["data"])
        if self.shift_ms:
            msg = msg if msg is not None else orjson.loads(text)
            shifted = _shifted(msg, self.shift_ms)
            return Prepared(frame.recv_ns, key, key, orjson.dumps(shifted), update)
        return Prepared(frame.recv_ns, key, key, text.encode(), update)

    def advance(self, frame: Prepared) -> None:
        update = frame.update
        if isinstance(update, _Load):
            book = self._books.get(update.symbol)
            if book is None:
                book = self._books[update.symbol] = _ServerBook(update.symbol)
            book.load(update.data)
        elif isinstance(update, _Changes):
            book = self._books.get(update.symbol)
            if book is not None:
                book.apply(update.data, update.end)

    # --- clients -----------------------------------------------------------------------------------------------

    def accepts(self, path: str) -> bool:
        return path.rstrip("/") in ("", "/endpoint")

    def on_open(self, client: ReplayClient, path: str, query: Query) -> list[bytes]:
        token = (query.get("token") or [""])[0]
        connect_id = (query.get("connectId") or [f"{client.id:08x}"])[0]
        self.tokens.append(token)
        self.connect_ids.append(connect_id)
        if token != self.token:
            return [orjson.dumps({"id": connect_id, "type": "error", "code": 401, "data": "token is invalid"})]
        return [orjson.dumps({"id": connect_id, "type": "welcome"})]

    def on_message(self, client: ReplayClient, text: str) -> list[bytes]:
        msg = json_object(text)
        if msg is None:
            return [_error("", 415, "command type is invalid")]
        rid = str(msg.get("id", ""))
        kind = msg.get("type")
        if kind == "ping":
            self.pings += 1
            return [orjson.dumps({"id": rid, "type": "pong"})]
        if kind not in ("subscribe", "unsubscribe"):
            return [_error(rid, 415, "command type is invalid")]
        topic = msg.get("topic")
        if not isinstance(topic, str) or not topic:
            return [_error(rid, 406, "topic is required")]
        head, _, names = topic.partition(":")
        channel = head.rpartition("/")[2]
        if not head.startswith("/market/") or channel not in CHANNELS or not names:
            return [_error(rid, 404, f"topic {topic} is not found")]
        streams = [route_topic(f"{head}:{name}") for name in names.split(",")]
        if len(streams) > TOPIC_SYMBOLS:
            return [_error(rid, 509, f"exceed max subscription count limitation of {TOPIC_SYMBOLS} per time")]
        if kind == "subscribe":
            if len(client.keys | {f"{c}:{s}" for c, s in streams}) > STREAMS_PER_CONNECTION:
                return [
                    _error(
                        rid, 509, f"exceed max subscription count limitation of {STREAMS_PER_CONNECTION} per session"
                    )
                ]
            for c, s in streams:
                client.subscribe(f"{c}:{s}", f"{c}:{s}")
        else:
            for c, s in streams:
                client.unsubscribe(f"{c}:{s}")
        return [orjson.dumps({"id": rid, "type": "ack"})] if msg.get("response") else []

    # --- REST --------------------------------------------------------------------------------------------------

    @property
    def default_rest_limit(self) -> RateLimit:
        return KUCOIN_PUBLIC_LIMIT

    def rest_weight(self, path: str, query: Query) -> int | None:
        return _WEIGHTS.get(path.rstrip("/"))

    def rest_headers(self, used: int, limit: RateLimit) -> HttpHeaders:
        return {"gw-ratelimit-limit": str(limit.weight), "gw-ratelimit-remaining": str(max(0, limit.weight - used))}

    def throttled(self, status: int, retry_after_s: int, used: int, limit: RateLimit) -> Throttled:
        headers = {"gw-ratelimit-remaining": "0", "gw-ratelimit-reset": str(retry_after_s * 1000)}
        return 429, b'{"code":"429000","msg":"Too Many Requests"}', headers

    def http_get(self, path: str, query: Query) -> HttpReply | None:
        """Every REST call this exchange serves (the bullet-public POST included: the server answers by path)."""
        path = path.rstrip("/")
        if path == BULLET_PATH:
            return self._bullet()
        if path in _BOOK_PATHS:
            return self._book(query, _BOOK_PATHS[path])
        if path == HISTORY_PATH:
            return self._history(query)
        return None

    def _bullet(self) -> HttpReply:
        self.tokens_issued += 1
        endpoint = "ws" + self.base_url.removeprefix("http") + "/endpoint"
        server = {
            "endpoint": endpoint,
            "encrypt": endpoint.startswith("wss"),
            "protocol": "websocket",
            "pingInterval": self.ping_interval_ms,
            "pingTimeout": self.ping_timeout_ms,
        }
        return 200, orjson.dumps({"code": _OK, "data": {"token": self.token, "instanceServers": [server]}})

    def _book(self, query: Query, depth: int | None) -> HttpReply:
        symbol = (query.get("symbol") or [""])[0]
        if not symbol:
            return _rest_error(400, "400100", "symbol is required")
        book = self._books.get(symbol)
        if book is not None:
            self.rest_books += 1
            return 200, book.rest(depth, self.shift_ms, None)
        recorded = self._recorded.get(symbol)
        if recorded is not None:
            # the cursor has not reached the recorded snapshot: the exchange's book is (at least) that one
            self.rest_books += 1
            data = dict(recorded)
            if depth is not None:
                data["bids"], data["asks"] = data.get("bids", [])[:depth], data.get("asks", [])[:depth]
            if isinstance(data.get("time"), int):
                data["time"] += self.shift_ms
            return 200, orjson.dumps({"code": _OK, "data": data})
        if symbol in self._symbols:
            return _rest_error(503, "503000", "the recording holds no book of this symbol yet")
        return _rest_error(400, "400100", "symbol not exists")

    def _history(self, query: Query) -> HttpReply:
        """The last 100 trades the cursor has passed (the whole recording before any subscription), oldest first."""
        symbol = (query.get("symbol") or [""])[0]
        if not symbol:
            return _rest_error(400, "400100", "symbol is required")
        log = self._trades.get(symbol)
        if log is None:
            if symbol not in self._symbols:
                return _rest_error(400, "400100", "symbol not exists")
            return 200, orjson.dumps({"code": _OK, "data": []})
        indexes = log.backward(len(log), _HISTORY_MAX, self.visible)
        shift_ns = self.shift_ms * 1_000_000
        data = []
        for i in indexes:
            record = log.records[i]
            data.append({**record, "time": int(str(record["time"])) + shift_ns} if shift_ns else record)
        return 200, orjson.dumps({"code": _OK, "data": data})


def _shifted(msg: dict[str, Any], shift_ms: int) -> dict[str, Any]:
    """A push with its exchange times moved by ``shift_ms`` (ms ``time`` of level2/ticker, ns ``time`` of match and
    candles, the candle's start in seconds)."""
    data = msg.get("data")
    if not isinstance(data, dict):
        return msg
    data = dict(data)
    t = data.get("time")
    if isinstance(t, str) and t.isdigit():
        data["time"] = str(int(t) + shift_ms * 1_000_000)
    elif isinstance(t, int):
        data["time"] = t + shift_ms * 1_000_000 if t >= 10**15 else t + shift_ms
    candles = data.get("candles")
    if isinstance(candles, list) and candles and str(candles[0]).isdigit():
        data["candles"] = [str(int(candles[0]) + shift_ms // 1000), *candles[1:]]
    return {**msg, "data": data}


def _error(rid: str, code: int, text: str) -> bytes:
    return orjson.dumps({"id": rid, "type": "error", "code": code, "data": text})


def _rest_error(status: int, code: str, msg: str) -> HttpReply:
    return status, orjson.dumps({"code": code, "msg": msg})
