"""HTX market WebSocket, server side: gzip frames, the server's ``{"ping": t}`` heartbeat, sub/unsub acks, MBP
refreshes (``req`` answered by ``rep``), a snapshot for each (re)subscriber of a swap high_freq book, and the REST
trade history (``GET /market/history/trade``, ``/linear-swap-ex/...``, ``/swap-ex/...``) from the recorded trades.
Pages as in ``_exchange``, ``_book`` and ``_history``.

Every frame goes out gzip-compressed, as HTX sends it. (The replay server frames every payload as a WebSocket text
frame: a client reading HTX takes a payload that is not UTF-8 as binary, so the gzip bytes reach it as they would.)
The recorded pings are sent to every subscribed client; their pongs are counted (``pongs``), as HTX counts them
before it drops a client. Recorded acks and refresh answers are not replayed: the server answers its own clients (a
recorded ``rep`` loads the server's book, so a later ``req`` is answered from the book where the cursor is).

Times: every ``"ts"`` (and ``quoteTime``) and each ping's value are shifted by ``shift_ms`` in the text (no number is
parsed through a float). Over the REST budget (10 per second) the answer is HTTP 429 with HTX's error layout.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

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
from ._book import is_high_freq, is_mbp, parse_exact
from ._exchange import FEED_PATH, HtxExchange
from ._history import HTX_HISTORY_LIMIT, HTX_HISTORY_MAX, HtxTradeHistory
from ._wire import CONTROL, gunzip_text, gzip_text, split_topic, topic

__all__ = ["HtxReplay"]

_PING_KEY = "ping"
_TRADES = "trade.detail"
_TIMES = re.compile(r'"(ts|quoteTime)":(\d+)')
_FIRST_TS = re.compile(r'"ts":(\d+)')
_PING = re.compile(r'^\{"ping":\s*(\d+)\s*\}$')
_TRADE_OBJECT = re.compile(r'\{[^{}]*"direction"[^{}]*\}')
_TRADE_FIELDS = re.compile(r'"(tradeId|trade-id|id|ts)":\s*"?(\d+)')


def _text(frame: str) -> str | None:
    """A recorded frame's text: cryptofeed keeps HTX's binary frames as Python bytes literals."""
    if frame[:2] in ("b'", 'b"'):
        return gunzip_text(ast.literal_eval(frame))
    return frame


@dataclass(slots=True)
class _BookUpdate:
    key: str
    #: "mbp" (an update), "rep" (a refresh: loads the book), "hf" (high_freq snapshot or update), "time" (none)
    kind: str
    data: dict[str, Any]
    #: the frame's first ``ts`` (ms, unshifted): the server's clock once the cursor passes it
    ts_ms: int | None


class _ServerBook:
    """One book as HTX keeps it: levels as the text it writes, and the sequence its next push continues."""

    __slots__ = ("book", "seq", "ts")

    def __init__(self, symbol: str) -> None:
        self.book = L2Book(symbol, keep_raw=True)
        self.seq: int | None = None  # mbp seqNum, high_freq version
        self.ts: int | None = None

    def levels_text(self, depth: int) -> str:
        bids = ",".join(f"[{p},{q}]" for p, q in self.book.raw_bids(depth))
        asks = ",".join(f"[{p},{q}]" for p, q in self.book.raw_asks(depth))
        return f'"bids":[{bids}],"asks":[{asks}]'


def _levels(raw: object) -> list[tuple[str, str]]:
    return [(str(level[0]), str(level[1])) for level in raw] if isinstance(raw, list) else []


def _depth(channel: str) -> int:
    digits = "".join(c for c in channel.rsplit(".", 1)[-1] if c.isdigit()) or "150"
    return int(digits) if channel.startswith("mbp.") else int(channel.split("_")[1].split(".")[0])


class HtxReplay(ReplayProtocol):
    server_pings = False  # HTX pings in JSON (the recorded pings are replayed)
    binary_frames = True  # every frame gzip-compressed

    def __init__(self, exchange: HtxExchange) -> None:
        super().__init__(exchange.id)
        self._exchange = exchange
        self._spot = exchange.market == "spot"
        self._history_path = HtxTradeHistory(exchange.market).path
        self._books: dict[str, _ServerBook] = {}
        self._trades = TradeLogs()
        self._symbols: set[str] = set()
        #: the latest exchange time (ms, unshifted) the cursor passed: the ``ts`` of acks and refreshes
        self._clock_ms = 0
        #: pong values received (as the client wrote them)
        self.pongs: list[int] = []
        #: ping values sent (once per recorded ping, whatever the number of clients)
        self.pings: list[int] = []
        #: MBP refreshes answered, swap snapshots generated
        self.refreshes = 0
        self.snapshots_sent = 0
        paths = {"spot": ("/ws", FEED_PATH), "linear": ("/linear-swap-ws",), "inverse": ("/swap-ws",)}
        self._paths = paths[exchange.market]

    # --- the recording -----------------------------------------------------------------------------------------
    def scan(self, frame: CapturedFrame, *, times: bool) -> int | None:
        if frame.kind != "ws":
            return None
        text = _text(frame.frame)
        if text is None:
            return None
        channel, symbol = self._exchange.route(text)
        if symbol:
            self._symbols.add(symbol)
        if self._clock_ms == 0 and (m := _FIRST_TS.search(text)) is not None:
            self._clock_ms = int(m.group(1))
        if channel == _TRADES:
            for item in _TRADE_OBJECT.findall(text):
                fields = dict(_TRADE_FIELDS.findall(item))
                tid = fields.get("tradeId", fields.get("trade-id")) if self._spot else fields.get("id")
                if tid is None or "ts" not in fields:
                    continue
                log = self._trades.log(symbol)
                log.add(int(tid), int(fields["ts"]), frame.recv_ns, {"text": item.replace('"tradeId":', '"trade-id":')})
        if not times:
            return None
        found = [int(v) for k, v in _TIMES.findall(text) if k == "ts"]
        return max(found) if found else None

    def finish_scan(self) -> None:
        self._trades.finish()

    def _shift(self, text: str) -> str:
        shift = self.shift_ms
        if not shift:
            return text
        text = _TIMES.sub(lambda m: f'"{m.group(1)}":{int(m.group(2)) + shift}', text)
        return _PING.sub(lambda m: f'{{"ping":{int(m.group(1)) + shift}}}', text)

    def prepare(self, frame: CapturedFrame) -> Prepared | None:
        if frame.kind != "ws":
            return None
        text = _text(frame.frame)
        if text is None:
            return None
        channel, symbol = self._exchange.route(text)
        if (channel, symbol) == CONTROL:
            if _PING.match(text):
                return Prepared(frame.recv_ns, _PING_KEY, _PING_KEY, gzip_text(self._shift(text)))
            return None  # recorded acks and errors: the server answers its own clients
        key = f"{channel}:{symbol}"
        first = _FIRST_TS.search(text)
        update = _BookUpdate(key, "time", {}, int(first.group(1)) if first else None)
        if is_mbp(channel) or is_high_freq(channel):
            msg = parse_exact(text)
            if "rep" in msg:
                data = msg.get("data")
                if isinstance(data, dict):
                    update.kind, update.data = "rep", data
                return Prepared(frame.recv_ns, None, f"rep:{symbol}", None, update)
            tick = msg.get("tick")
            if isinstance(tick, dict):
                update.kind, update.data = ("mbp" if is_mbp(channel) else "hf"), tick
        return Prepared(frame.recv_ns, key, key, gzip_text(self._shift(text)), update)

    def advance(self, frame: Prepared) -> None:
        if frame.key == _PING_KEY and frame.data is not None:
            if (m := _PING.match(gunzip_text(frame.data) or "")) is not None:
                self.pings.append(int(m.group(1)))
            return
        update = frame.update
        if not isinstance(update, _BookUpdate):
            return
        if update.ts_ms is not None:
            self._clock_ms = max(self._clock_ms, update.ts_ms)
        if update.kind == "time":
            return
        data = update.data
        book = self._books.get(update.key)
        if book is None:
            book = self._books[update.key] = _ServerBook(update.key.partition(":")[2])
        if update.kind == "rep":
            book.book.load(_levels(data.get("bids")), _levels(data.get("asks")))
            book.seq = int(data["seqNum"])
        elif update.kind == "mbp":
            book.book.apply(_levels(data.get("bids")), _levels(data.get("asks")))
            book.seq = int(data["seqNum"])
        elif data.get("event") == "snapshot":
            book.book.load(_levels(data.get("bids")), _levels(data.get("asks")))
            book.seq = int(data["version"])
        elif book.seq is not None:  # an update before any snapshot has nothing to apply to
            book.book.apply(_levels(data.get("bids")), _levels(data.get("asks")))
            book.seq = int(data["version"])
        if update.ts_ms is not None:
            book.ts = update.ts_ms

    # --- clients ---------------------------------------------------------------------------------------------
    def accepts(self, path: str) -> bool:
        return path.rstrip("/") in self._paths

    def on_open(self, client: ReplayClient, path: str, query: Query) -> list[bytes]:
        return []

    def _now(self) -> int:
        return self._clock_ms + self.shift_ms

    def _reply(self, obj: dict[str, Any]) -> bytes:
        return gzip_text(json.dumps(obj, separators=(",", ":")))

    def _error(self, request_id: object, msg: str) -> bytes:
        return self._reply(
            {"status": "error", "ts": self._now(), "id": request_id, "err-code": "bad-request", "err-msg": msg}
        )

    def on_message(self, client: ReplayClient, text: str) -> list[bytes]:
        try:
            msg = json.loads(text)
        except json.JSONDecodeError:
            return [self._error(None, "not json string")]
        if not isinstance(msg, dict):
            return [self._error(None, "not json string")]
        if "pong" in msg:
            pong = msg["pong"]
            if isinstance(pong, int):
                self.pongs.append(pong)
            return []
        request_id = msg.get("id")
        for op in ("sub", "unsub", "req"):
            name = msg.get(op)
            if name is None:
                continue
            route = split_topic(name) if isinstance(name, str) else None
            if route is None or route[1] not in self._symbols:
                return [self._error(request_id, f"invalid topic {name}")]
            channel, symbol = route
            key = f"{channel}:{symbol}"
            if op == "unsub":
                client.unsubscribe(key)
                return [self._reply({"id": request_id, "status": "ok", "unsubbed": name, "ts": self._now()})]
            if op == "req":
                return [self._refresh(request_id, name, channel, key)]
            ack = {"id": request_id, "status": "ok", "subbed": name, "ts": self._now()}
            if is_high_freq(channel):
                ack["data_type"] = msg.get("data_type", "incremental")
            out = [self._reply(ack)]
            client.keys.add(_PING_KEY)  # the heartbeat goes to every client with a subscription
            if client.subscribe(key, key) and is_high_freq(channel):
                book = self._books.get(key)
                if book is not None and book.seq is not None:
                    out.append(self._snapshot(name, book))
            return out
        return [self._error(request_id, "invalid request")]

    def _refresh(self, request_id: object, name: str, channel: str, key: str) -> bytes:
        """``req`` of an MBP stream: the book where the cursor is, with the seqNum its next update continues."""
        book = self._books.get(key)
        if not is_mbp(channel) or book is None or book.seq is None:
            return self._error(request_id, f"invalid topic {name}")
        self.refreshes += 1
        body = (
            f'{{"id":{json.dumps(request_id)},"rep":"{name}","status":"ok","ts":{self._now()},'
            f'"data":{{"seqNum":{book.seq},{book.levels_text(_depth(channel))}}}}}'
        )
        return gzip_text(body)

    def _snapshot(self, name: str, book: _ServerBook) -> bytes:
        """The first push of a (re)subscribed high_freq book: ``event`` snapshot with the book's version."""
        self.snapshots_sent += 1
        ts = (book.ts or self._clock_ms) + self.shift_ms
        body = (
            f'{{"ch":"{name}","tick":{{{book.levels_text(150)},"ch":"{name}","event":"snapshot",'
            f'"id":{book.seq},"mrid":{book.seq},"ts":{ts},"version":{book.seq}}},"ts":{ts}}}'
        )
        return gzip_text(body)

    # --- REST ------------------------------------------------------------------------------------------------
    @property
    def default_rest_limit(self) -> RateLimit:
        return HTX_HISTORY_LIMIT

    def rest_weight(self, path: str, query: Query) -> int | None:
        return 1 if path.rstrip("/") == self._history_path else None

    def rest_headers(self, used: int, limit: RateLimit) -> HttpHeaders:
        return {}

    def throttled(self, status: int, retry_after_s: int, used: int, limit: RateLimit) -> Throttled:
        body = b'{"status":"error","err-code":"bad-request","err-msg":"429 too many request","data":null}'
        return 429, body, {}

    def http_get(self, path: str, query: Query) -> HttpReply | None:
        if path.rstrip("/") != self._history_path:
            return None
        param = "symbol" if self._spot else "contract_code"
        symbol = (query.get(param) or [""])[0]
        raw = (query.get("size") or ["1"])[0]
        if not symbol or symbol not in self._symbols:
            return 200, b'{"status":"error","err-code":"invalid-parameter","err-msg":"invalid symbol","data":null}'
        if not raw.isdigit() or not 1 <= int(raw) <= HTX_HISTORY_MAX:
            return 200, b'{"status":"error","err-code":"invalid-parameter","err-msg":"invalid size","data":null}'
        log = self._trades.get(symbol)
        ticks: list[str] = []
        if log is not None:
            for i in reversed(log.backward(len(log), int(raw), self.visible)):
                item = self._shift(str(log.records[i]["text"]))
                ts = log.times[i] + self.shift_ms
                ticks.append(f'{{"id":{log.ids[i]},"ts":{ts},"data":[{item}]}}')
        ch = topic(_TRADES, symbol)
        body = f'{{"ch":"{ch}","status":"ok","ts":{self._now()},"data":[{",".join(ticks)}]}}'
        return 200, body.encode()
