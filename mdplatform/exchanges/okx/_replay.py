"""OKX v5 public channels, server side: op subscribe/unsubscribe, text ping, books snapshots mid-stream, the REST
order book ``GET /api/v5/market/books`` and the REST trade history ``GET /api/v5/market/history-trades`` from the
recorded ``trades`` pushes (OKX API v5 docs: "WS / Order book channel", "GET / Order book", "GET / Trades history";
the 2026 changelog's "How to manage a local order book correctly" for the REST book's ``seqId``).

Sequence ids: the server's book of each (channel, instId) follows the recorded ``seqId``; a generated snapshot (for a
client subscribing mid-stream, or resubscribing after a gap) carries ``prevSeqId`` -1 and the book's ``seqId``, and a
REST book its ``seqId``, so the updates that follow chain onto either. Recordings from before OKX sent seqIds (2022)
get none, unless ``seq_ids`` is set (a test asks for it before subscribing): the server then numbers every recorded
``books`` push as OKX does (snapshot ``prevSeqId`` -1, each update's ``prevSeqId`` the previous ``seqId``).
A stream recorded without a WS snapshot (OKX after its snapshot delisting) gets no generated one either: its book
starts from a recorded REST reply, and clients take the REST path. The generated checksum is 0 where the recording
sends 0 (OKX since 2026-06-23), the CRC32 otherwise.

Over the REST budget (20 requests per 2 s) the answer is OKX's: HTTP 429 with
``{"msg":"Too Many Requests","code":"50011"}`` and no Retry-After header (the docs name none).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
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
from .._trade_logs import TradeLogs
from ._book import REST_BOOKS_PATH
from ._exchange import CHECKSUM_DEPTH, OkxExchange, okx_checksum
from ._history import OKX_HISTORY_LIMIT, OKX_HISTORY_PATH

__all__ = ["OkxReplay"]

_ARG_PREFIX = '{"arg":{'
#: the exchange module's channel for acks, errors and pongs
_CONTROL = "control"
#: incremental book channels and the depth OKX keeps for each (a snapshot carries this many levels)
_BOOK_DEPTH = {"books": 400, "books-l2-tbt": 400, "books50-l2-tbt": 50}
_TRADES = "trades"
#: history-trades answers at most (and by default) this many records
_HISTORY_MAX = 100
#: GET / Order book: sz at most 400 per side, 1 by default
_BOOKS_MAX = 400
#: seqId steps of the numbering ``seq_ids`` gives a recording without them (OKX's own steps vary)
_SEQ_STEP = 7


@dataclass(slots=True)
class _BookUpdate:
    key: str
    action: str  # "snapshot", "update", or "rest" (a recorded REST book: loads the book like a snapshot)
    data: dict[str, Any]


class _ServerBook:
    """One (channel, instId) book as OKX keeps it, with the per-level order counts a snapshot carries."""

    __slots__ = ("book", "checksum_zero", "orders", "seq", "ts")

    def __init__(self, inst_id: str) -> None:
        self.book = L2Book(inst_id, keep_raw=True)
        self.orders: dict[str, str] = {}  # "bid:<px>" / "ask:<px>" -> number of orders
        self.ts: str | int | None = None
        self.seq: int | None = None
        #: the recording's checksums are 0 (deprecated): generated ones are too
        self.checksum_zero = False

    def apply(self, action: str, data: dict[str, Any]) -> None:
        bids, asks = data.get("bids", []), data.get("asks", [])
        if "checksum" in data:
            self.checksum_zero = data["checksum"] in (0, "0")
        if action in ("snapshot", "rest"):
            self.book.load(bids, asks)
            self.orders.clear()
        else:
            self.book.apply(bids, asks)
        orders = self.orders
        for side, levels in (("bid:", bids), ("ask:", asks)):
            for level in levels:
                if float(level[1]) == 0.0:
                    orders.pop(side + level[0], None)
                elif len(level) > 3:
                    orders[side + level[0]] = level[3]
        self.ts = data.get("ts", self.ts)
        seq = data.get("seqId")
        if seq is not None:
            self.seq = int(seq)

    def _levels(self, depth: int) -> dict[str, Any]:
        book, orders = self.book, self.orders
        asks = [[p, s, "0", orders.get("ask:" + p, "0")] for p, s in book.raw_asks(depth)]
        bids = [[p, s, "0", orders.get("bid:" + p, "0")] for p, s in book.raw_bids(depth)]
        return {"asks": asks, "bids": bids}

    def snapshot(self, arg: dict[str, Any], depth: int, shift_ms: int) -> bytes:
        item = self._levels(depth)
        if self.ts is not None:
            item["ts"] = _shifted(self.ts, shift_ms)
        book = self.book
        crc = okx_checksum(book.raw_bids(CHECKSUM_DEPTH), book.raw_asks(CHECKSUM_DEPTH))
        item["checksum"] = 0 if self.checksum_zero else crc
        if self.seq is not None:
            item["prevSeqId"] = -1
            item["seqId"] = self.seq
        return orjson.dumps({"arg": arg, "action": "snapshot", "data": [item]})

    def rest(self, depth: int, shift_ms: int) -> bytes:
        """The ``GET /api/v5/market/books`` reply: levels, ``ts`` and (where the stream has them) ``seqId``."""
        item = self._levels(depth)
        if self.ts is not None:
            item["ts"] = str(_shifted(self.ts, shift_ms))
        if self.seq is not None:
            item["seqId"] = self.seq
        return orjson.dumps({"code": "0", "msg": "", "data": [item]})


class OkxReplay(ReplayProtocol):
    server_pings = False  # OKX clients send text "ping"

    def __init__(self, exchange: OkxExchange) -> None:
        super().__init__(exchange.id)
        self._books: dict[str, _ServerBook] = {}
        #: book snapshots generated for clients that subscribed mid-stream
        self.snapshots_sent = 0
        self._route = exchange.route
        #: instId -> recorded trades (the pushes' items) for REST history
        self._trades = TradeLogs()
        #: every instId the recording has a push of
        self._instruments: set[str] = set()
        #: (channel:instId) keys whose recording has a WS snapshot: only they get generated ones
        self._ws_snapshots: set[str] = set()
        #: number recorded ``books`` pushes that carry no seqId (set before the first subscription)
        self.seq_ids = False
        self._numbered: dict[str, int] = {}
        #: REST book snapshots served
        self.rest_books = 0

    # --- the recording -----------------------------------------------------------------------------

    def scan(self, frame: CapturedFrame, *, times: bool) -> int | None:
        if frame.kind != "ws" or not frame.frame.startswith(_ARG_PREFIX):
            return None
        channel, inst_id = self._route(frame.frame)
        if inst_id:
            self._instruments.add(inst_id)
        if channel in _BOOK_DEPTH and '"snapshot"' in frame.frame:
            self._ws_snapshots.add(f"{channel}:{inst_id}")
        trades = channel == _TRADES
        if not times and not trades:
            return None
        msg = orjson.loads(frame.frame)
        latest: int | None = None
        for item in msg.get("data") or ():
            if not isinstance(item, dict):
                continue
            if trades:
                self._record(inst_id, item, frame.recv_ns)
            if times and (ts := item.get("ts")) is not None:
                value = int(ts)
                latest = value if latest is None else max(latest, value)
        return latest

    def _record(self, inst_id: str, item: dict[str, Any], recv_ns: int) -> None:
        try:
            trade_id, ts = int(item["tradeId"]), int(item["ts"])
        except (KeyError, TypeError, ValueError):
            return  # not a trade in the documented layout: nothing the exchange would serve
        inst = str(item.get("instId") or inst_id)
        log = self._trades.log(inst)
        log.add(trade_id, ts, recv_ns, dict(item))

    def finish_scan(self) -> None:
        self._trades.finish()

    def prepare(self, frame: CapturedFrame) -> Prepared | None:
        text = frame.frame
        if frame.kind == "rest":
            # a recorded GET / Order book reply: the server's book of that instId starts (again) from it
            if frame.symbol and '"asks"' in text:
                items = orjson.loads(text).get("data") or []
                if items and isinstance(items[0], dict):
                    loaded = _BookUpdate(f"books:{frame.symbol}", "rest", items[0])
                    return Prepared(frame.recv_ns, None, f"rest:{frame.symbol}", None, loaded)
            return None
        if frame.kind != "ws":
            return None
        channel, inst_id = self._route(text)
        if channel == _CONTROL or not channel:
            return None  # recorded acks, errors and pongs: the server answers its own clients
        key = f"{channel}:{inst_id}"
        shift = self.shift_ms
        update: _BookUpdate | None = None
        if shift or channel in _BOOK_DEPTH:
            msg = orjson.loads(text)
            items = msg.get("data") or []
            if channel in _BOOK_DEPTH and items:
                update = _BookUpdate(key, msg.get("action", "update"), items[0])
            if shift:
                # the book keeps the recorded item; the shifted frame is a copy
                msg["data"] = [_shift_item(item, shift) for item in items]
                return Prepared(frame.recv_ns, key, key, orjson.dumps(msg), update)
        return Prepared(frame.recv_ns, key, key, text.encode(), update)

    def advance(self, frame: Prepared) -> None:
        update = frame.update
        if isinstance(update, _BookUpdate):
            if self.seq_ids and "seqId" not in update.data and update.action != "rest":
                self._number(frame, update)
            book = self._books.get(update.key)
            if book is None:
                if update.action == "update":
                    return
                book = self._books[update.key] = _ServerBook(update.key.partition(":")[2])
            book.apply(update.action, update.data)

    def _number(self, frame: Prepared, update: _BookUpdate) -> None:
        """Give a recorded push without seqIds the ones OKX sends today (the frame sent and the book's alike)."""
        last = self._numbered.get(update.key)
        seq = 1000 if last is None else last + _SEQ_STEP
        prev = -1 if update.action == "snapshot" or last is None else last
        self._numbered[update.key] = seq
        update.data = {**update.data, "prevSeqId": prev, "seqId": seq}
        if frame.data is not None:
            msg = orjson.loads(frame.data)
            items = msg.get("data") or []
            if items and isinstance(items[0], dict):
                items[0] = {**items[0], "prevSeqId": prev, "seqId": seq}
            frame.data = orjson.dumps(msg)

    # --- clients -----------------------------------------------------------------------------------

    def accepts(self, path: str) -> bool:
        return path.rstrip("/").startswith("/ws/v5/")

    def on_open(self, client: ReplayClient, path: str, query: Query) -> list[bytes]:
        return []

    def on_message(self, client: ReplayClient, text: str) -> list[bytes]:
        if text == "ping":
            return [b"pong"]
        conn_id = f"{client.id:08x}"
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_error("60012", f"Invalid request: {text[:200]}", conn_id)]
        op = msg.get("op") if isinstance(msg, dict) else None
        args = msg.get("args") if isinstance(msg, dict) else None
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
            return [_error("60012", f"Invalid request: {text[:200]}", conn_id)]
        acks: list[bytes] = []
        snapshots: list[bytes] = []
        for arg in args:
            if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
                acks.append(_error("60012", f"Invalid request: {text[:200]}", conn_id))
                continue
            channel, inst_id = arg["channel"], str(arg.get("instId", ""))
            key = f"{channel}:{inst_id}"
            if op == "unsubscribe":
                client.unsubscribe(key)
                acks.append(orjson.dumps({"event": "unsubscribe", "arg": arg, "connId": conn_id}))
                continue
            acks.append(orjson.dumps({"event": "subscribe", "arg": arg, "connId": conn_id}))
            if client.subscribe(key, key) and channel in _BOOK_DEPTH:
                book = self._books.get(key)
                # before the recorded snapshot the subscriber gets that one when the cursor reaches it; a stream
                # recorded without WS snapshots (OKX after their delisting) gets none: the client asks REST
                if book is not None and key in self._ws_snapshots:
                    snap_arg = {"channel": channel, "instId": inst_id}
                    snapshots.append(book.snapshot(snap_arg, _BOOK_DEPTH[channel], self.shift_ms))
                    self.snapshots_sent += 1
        return acks + snapshots

    # --- REST --------------------------------------------------------------------------------------

    @property
    def default_rest_limit(self) -> RateLimit:
        return OKX_HISTORY_LIMIT

    def rest_weight(self, path: str, query: Query) -> int | None:
        return 1 if path.rstrip("/") in (OKX_HISTORY_PATH, REST_BOOKS_PATH) else None

    def rest_headers(self, used: int, limit: RateLimit) -> HttpHeaders:
        return {}

    def throttled(self, status: int, retry_after_s: int, used: int, limit: RateLimit) -> Throttled:
        return 429, b'{"msg":"Too Many Requests","code":"50011"}', {}

    def http_get(self, path: str, query: Query) -> HttpReply | None:
        path = path.rstrip("/")
        if path == REST_BOOKS_PATH:
            return self._books_rest(query)
        if path != OKX_HISTORY_PATH:
            return None
        return self._history_trades(query)

    def _books_rest(self, query: Query) -> HttpReply:
        """``GET / Order book``: the book as the cursor has passed it, ``sz`` levels per side (1 by default, at
        most 400), with its ``seqId`` where the stream has them."""
        inst_id = (query.get("instId") or [""])[0]
        if not inst_id:
            return _rest_error(400, "50014", "Parameter instId cannot be empty")
        raw = (query.get("sz") or ["1"])[0]
        if not raw.isdigit():
            return _rest_error(400, "51000", "Parameter sz error")
        depth = max(1, min(_BOOKS_MAX, int(raw)))
        book = next((self._books[k] for k in (f"{c}:{inst_id}" for c in _BOOK_DEPTH) if k in self._books), None)
        if book is None:
            if inst_id not in self._instruments:
                return _rest_error(400, "51001", "Instrument ID does not exist")
            # the recording has not reached a book of it yet: OKX's answer to a passing failure (clients retry)
            return _rest_error(503, "50001", "Service temporarily unavailable. Please try again later")
        self.rest_books += 1
        return 200, book.rest(depth, self.shift_ms)

    def _history_trades(self, query: Query) -> HttpReply:
        """``history-trades``: newest first, at most ``limit``; ``type`` 1 pages by tradeId (``after``: older than
        it, ``before``: newer than it), 2 by timestamp (``after`` only)."""
        inst_id = (query.get("instId") or [""])[0]
        if not inst_id:
            return _rest_error(400, "50014", "Parameter instId cannot be empty")
        log = self._trades.get(inst_id)
        if log is None and inst_id not in self._instruments:
            return _rest_error(400, "51001", "Instrument ID does not exist")
        kind = (query.get("type") or ["1"])[0]
        if kind not in ("1", "2"):
            return _rest_error(400, "51000", "Parameter type error")
        params: dict[str, int | None] = {}
        for name in ("after", "before", "limit"):
            raw = (query.get(name) or [""])[0]
            if raw and not raw.isdigit():
                return _rest_error(400, "51000", f"Parameter {name} error")
            params[name] = int(raw) if raw else None
        if kind == "2" and params["before"] is not None:
            return _rest_error(400, "51000", "Parameter before error")
        limit = params["limit"]
        limit = _HISTORY_MAX if limit is None else max(1, min(_HISTORY_MAX, limit))
        if log is None:
            return 200, orjson.dumps({"code": "0", "msg": "", "data": []})
        after, before = params["after"], params["before"]
        lo, hi = 0, len(log)
        if kind == "1":
            if after is not None:
                hi = bisect_left(log.ids, after)
            if before is not None:
                lo = bisect_right(log.ids, before)
        elif after is not None:
            hi = bisect_left(log.times, after - self.shift_ms)
        indexes = log.backward(hi, limit, self.visible, lo)
        shift = self.shift_ms
        data = []
        for i in reversed(indexes):
            item = log.records[i]
            data.append(_shift_item(item, shift) if shift else item)
        return 200, orjson.dumps({"code": "0", "msg": "", "data": data})


def _shifted(ts: str | int, shift_ms: int) -> str | int:
    return str(int(ts) + shift_ms) if isinstance(ts, str) else ts + shift_ms


def _shift_item(item: Any, shift_ms: int) -> Any:
    if isinstance(item, dict) and "ts" in item:
        item = dict(item)
        item["ts"] = _shifted(item["ts"], shift_ms)
    return item


def _rest_error(status: int, code: str, msg: str) -> HttpReply:
    return status, orjson.dumps({"code": code, "msg": msg, "data": []})


def _error(code: str, msg: str, conn_id: str) -> bytes:
    return orjson.dumps({"event": "error", "code": code, "msg": msg, "connId": conn_id})
