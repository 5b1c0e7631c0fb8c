"""Bybit v5 public WebSocket, server side: ``op`` subscribe/unsubscribe with Bybit's acks and refusals, the JSON
``{"op":"ping"}`` heartbeat, a fresh ``orderbook`` snapshot for every (re)subscriber from the book the cursor has
kept, and ``GET /v5/market/recent-trade`` from the recorded ``publicTrade`` pushes (the last 60 or 1,000 trades the
cursor has passed, newest first, as Bybit answers).

Ack, pong and refusal layouts follow the v5 "Connect" page; the wording of refusals (``Invalid symbol :[topic]``,
``error:handler not found,topic:...``, ``args size >10``) is what Bybit is reported to send, the docs give none.
Over the REST budget (600 requests per 5 s) the answer is Bybit's HTTP 403 "access too frequent".
"""

from __future__ import annotations

import time
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
from ._exchange import ARGS_PER_REQUEST, TRADES, BybitExchange
from ._history import BYBIT_HISTORY_PATH, HISTORY_DEPTH, bybit_rest_limit

__all__ = ["BybitReplay"]

_CONTROL = "control"
#: the time fields a push carries (top level and per item), shifted when the replay rebases times
_TOP_TIMES = ("ts", "cts")
_ITEM_TIMES = ("T", "start", "end", "timestamp")


@dataclass(slots=True)
class _BookUpdate:
    topic: str
    kind: str
    data: dict[str, Any]
    ts: int | None
    cts: int | None


class _ServerBook:
    """One orderbook topic as Bybit keeps it: levels, the last ``u``/``seq`` and times."""

    __slots__ = ("book", "cts", "depth", "seq", "symbol", "ts", "u")

    def __init__(self, symbol: str, depth: int) -> None:
        self.symbol = symbol
        self.depth = depth
        self.book = L2Book(symbol, keep_raw=True)
        self.u: int | None = None
        self.seq: int | None = None
        self.ts: int | None = None
        self.cts: int | None = None

    def apply(self, update: _BookUpdate) -> None:
        data = update.data
        bids, asks = data.get("b") or [], data.get("a") or []
        if update.kind == "snapshot" or data.get("u") == 1:
            self.book.load(bids, asks)
        else:
            self.book.apply(bids, asks)
        self.u = data.get("u", self.u)
        self.seq = data.get("seq", self.seq)
        self.ts = update.ts if update.ts is not None else self.ts
        self.cts = update.cts if update.cts is not None else self.cts

    def snapshot(self, topic: str, shift_ms: int) -> bytes:
        data: dict[str, Any] = {
            "s": self.symbol,
            "b": [list(level) for level in self.book.raw_bids(self.depth)],
            "a": [list(level) for level in self.book.raw_asks(self.depth)],
            "u": self.u,
            "seq": self.seq,
        }
        msg: dict[str, Any] = {"topic": topic, "type": "snapshot"}
        if self.ts is not None:
            msg["ts"] = self.ts + shift_ms
        msg["data"] = data
        if self.cts is not None:
            msg["cts"] = self.cts + shift_ms
        return orjson.dumps(msg)


class BybitReplay(ReplayProtocol):
    server_pings = False  # Bybit clients send {"op":"ping"}

    def __init__(self, exchange: BybitExchange) -> None:
        super().__init__(exchange.id)
        self._exchange = exchange
        self._market = exchange.market
        self._channels = exchange.capabilities.channels
        self._book_channels = exchange.capabilities.book_channels
        self._route = exchange.route
        self._books: dict[str, _ServerBook] = {}
        #: book snapshots sent to (re)subscribers
        self.snapshots_sent = 0
        #: symbol -> recorded trades in the recent-trade layout, keyed by recording order (ids are not ordered)
        self._trades = TradeLogs()
        self._seen: set[tuple[str, str]] = set()
        self._order = 0
        #: every symbol the recording has a push of (others are refused as Bybit refuses unknown symbols)
        self._symbols: set[str] = set()

    # --- the recording -----------------------------------------------------------------------------

    def scan(self, frame: CapturedFrame, *, times: bool) -> int | None:
        if frame.kind != "ws" or '"topic"' not in frame.frame[:40]:
            return None
        channel, symbol = self._route(frame.frame)
        if symbol:
            self._symbols.add(symbol)
        trades = channel == TRADES
        if not times and not trades:
            return None
        msg = orjson.loads(frame.frame)
        latest = msg.get("ts") if times and isinstance(msg.get("ts"), int) else None
        if trades:
            for item in msg.get("data") or ():
                if isinstance(item, dict):
                    self._record(symbol, item, frame.recv_ns)
        return latest

    def _record(self, symbol: str, item: dict[str, Any], recv_ns: int) -> None:
        try:
            t, trade_id = int(item["T"]), str(item["i"])
        except (KeyError, TypeError, ValueError):
            return  # not a trade in the documented layout: nothing the exchange would serve
        sym = str(item.get("s") or symbol)
        if (sym, trade_id) in self._seen:
            return  # recorded twice (two connections): Bybit keeps one
        self._seen.add((sym, trade_id))
        log = self._trades.log(sym)
        self._order += 1
        record = {
            "execId": trade_id,
            "symbol": sym,
            "price": item.get("p"),
            "size": item.get("v"),
            "side": item.get("S"),
            "time": str(t),
            "isBlockTrade": bool(item.get("BT", False)),
        }
        log.add(self._order, t, recv_ns, record)

    def finish_scan(self) -> None:
        self._trades.finish()

    def prepare(self, frame: CapturedFrame) -> Prepared | None:
        text = frame.frame
        if frame.kind != "ws":
            return None
        channel, symbol = self._route(text)
        if channel == _CONTROL or not channel:
            return None  # recorded acks and pongs: the server answers its own clients
        topic = f"{channel}.{symbol}"
        shift = self.shift_ms
        update: _BookUpdate | None = None
        if shift or channel in self._book_channels:
            msg = orjson.loads(text)
            data = msg.get("data")
            if channel in self._book_channels and isinstance(data, dict):
                update = _BookUpdate(topic, str(msg.get("type")), data, msg.get("ts"), msg.get("cts"))
            if shift:
                return Prepared(frame.recv_ns, topic, topic, orjson.dumps(_shifted(msg, shift)), update)
        return Prepared(frame.recv_ns, topic, topic, text.encode(), update)

    def advance(self, frame: Prepared) -> None:
        update = frame.update
        if isinstance(update, _BookUpdate):
            book = self._books.get(update.topic)
            if book is None:
                if update.kind != "snapshot":
                    return
                channel, _, symbol = update.topic.rpartition(".")
                book = self._books[update.topic] = _ServerBook(symbol, int(channel.rpartition(".")[2]))
            book.apply(update)

    # --- clients -----------------------------------------------------------------------------------

    def accepts(self, path: str) -> bool:
        return path.rstrip("/").startswith("/v5/public/")

    def on_open(self, client: ReplayClient, path: str, query: Query) -> list[bytes]:
        return []

    def on_message(self, client: ReplayClient, text: str) -> list[bytes]:
        conn_id = f"replay-{client.id:08x}"
        msg = json_object(text)
        if msg is None:
            return [_ack(False, f"error:invalid request {text[:100]}", conn_id, "", "")]
        op, req_id = msg.get("op"), str(msg.get("req_id", ""))
        if op == "ping":
            return [_ack(True, "pong", conn_id, req_id, "ping")]
        args = msg.get("args")
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
            return [_ack(False, f"error:invalid op or args {text[:100]}", conn_id, req_id, str(op or ""))]
        if self._market == "spot" and len(args) > ARGS_PER_REQUEST:
            return [_ack(False, f"args size >{ARGS_PER_REQUEST}", conn_id, req_id, op)]
        refused: list[str] = []
        snapshots: list[bytes] = []
        for arg in args:
            topic = str(arg)
            channel, _, symbol = topic.rpartition(".")
            if channel not in self._channels:
                refused.append(f"error:handler not found,topic:{topic}")
                continue
            if symbol not in self._symbols:
                refused.append(f"Invalid symbol :[{topic}]")
                continue
            if op == "unsubscribe":
                client.unsubscribe(topic)
                continue
            if client.subscribe(topic, topic) and channel in self._book_channels:
                book = self._books.get(topic)
                # before the recorded snapshot the subscriber gets that one when the cursor reaches it
                if book is not None:
                    snapshots.append(book.snapshot(topic, self.shift_ms))
                    self.snapshots_sent += 1
        ack = _ack(not refused, "; ".join(refused), conn_id, req_id, op)
        return [ack, *snapshots]

    # --- REST --------------------------------------------------------------------------------------

    @property
    def default_rest_limit(self) -> RateLimit:
        return bybit_rest_limit()

    def rest_weight(self, path: str, query: Query) -> int | None:
        return 1 if path.rstrip("/") == BYBIT_HISTORY_PATH else None

    def rest_headers(self, used: int, limit: RateLimit) -> HttpHeaders:
        return {}

    def throttled(self, status: int, retry_after_s: int, used: int, limit: RateLimit) -> Throttled:
        return 403, b"access too frequent", {}

    def http_get(self, path: str, query: Query) -> HttpReply | None:
        if path.rstrip("/") != BYBIT_HISTORY_PATH:
            return None
        return self._recent_trades(query)

    def _recent_trades(self, query: Query) -> HttpReply:
        """The last ``limit`` trades the cursor has passed, newest first; ``time``: the newest of them (the
        recording's "now"), or the wall clock while the recording is all past (no subscriber yet)."""
        category = (query.get("category") or [""])[0]
        symbol = (query.get("symbol") or [""])[0]
        if category != self._market:
            return _rest_error(10001, f"category {category!r} is not served here (this replay is {self._market})")
        if not symbol:
            return _rest_error(10001, "params error: symbol is required")
        if symbol not in self._symbols:
            return _rest_error(10001, "params error: Symbol Invalid")
        depth = HISTORY_DEPTH[self._market]
        raw = (query.get("limit") or [""])[0]
        if raw and not raw.isdigit():
            return _rest_error(10001, "params error: limit")
        limit = max(1, min(depth, int(raw))) if raw else (60 if self._market == "spot" else 500)
        log = self._trades.get(symbol)
        rows: list[dict[str, object]] = []
        if log is not None:
            shift = self.shift_ms
            for i in reversed(log.backward(len(log), limit, self.visible)):
                record = log.records[i]
                rows.append({**record, "time": str(log.times[i] + shift)} if shift else record)
        now = int(str(rows[0]["time"])) if self.subscribed and rows else time.time_ns() // 1_000_000
        body = {
            "retCode": 0,
            "retMsg": "OK",
            "result": {"category": self._market, "list": rows},
            "retExtInfo": {},
            "time": now,
        }
        return 200, orjson.dumps(body)


def _ack(success: bool, ret_msg: str, conn_id: str, req_id: str, op: str) -> bytes:
    return orjson.dumps({"success": success, "ret_msg": ret_msg, "conn_id": conn_id, "req_id": req_id, "op": op})


def _rest_error(code: int, msg: str) -> HttpReply:
    return 200, orjson.dumps({"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": 0})


def _shifted(msg: dict[str, Any], shift_ms: int) -> dict[str, Any]:
    out = dict(msg)
    for key in _TOP_TIMES:
        if isinstance(out.get(key), int):
            out[key] += shift_ms
    data = out.get("data")
    items = data if isinstance(data, list) else None
    if items is not None:
        out["data"] = [_shift_item(item, shift_ms) for item in items]
    return out


def _shift_item(item: Any, shift_ms: int) -> Any:
    if not isinstance(item, dict):
        return item
    item = dict(item)
    for key in _ITEM_TIMES:
        if isinstance(item.get(key), int):
            item[key] += shift_ms
    return item
