"""Gate.io v4 spot / USDT futures, server side: subscribe/unsubscribe requests with their acks, ``spot.ping`` /
``futures.ping`` answered by a pong, the REST order book (``with_id``) and the REST trade history, over recorded
frames (Gate.io "Spot WebSocket v4" / "Futures WebSocket v4": "Server response", "Application ping/pong"; Gate.io
"API v4": "Retrieve order book", "Retrieve market trades").

Order books: Gate.io sends no book on subscribe to ``order_book_update`` (clients take the REST snapshot), so neither
does the server. Its book of a pair starts from the recorded REST reply (served as recorded while the cursor has not
reached it: that reply is the exchange's near future) and takes every recorded diff after it, a recording's lost
diff included (the exchange's book has no gap; a recorder's loss is not the server's), so a client that resyncs after
a gap gets the book the stream continues from, ``id`` = the last ``u`` passed.

Recorded REST replies are matched to their pair by the request URL where the capture reader names it (``symbol``),
else by their ``id``: the pair whose recorded diffs' ``U``..``u`` ranges hold (or come nearest to) it (update ids
are per-pair counters far apart; the cryptofeed reader names only ``symbol``/``instId``/``pair`` parameters, not
Gate.io's ``currency_pair``/``contract``).

Over the REST budget (200 requests per 10 s) the answer is Gate.io's: HTTP 429 ``{"label":"TOO_MANY_REQUESTS",
"message":"Request Rate Limit Exceeded"}``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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
from ._book import raw_levels
from ._exchange import GateioExchange
from ._history import GATEIO_FUTURES_TRADES_PATH, GATEIO_REST_LIMIT, GATEIO_SPOT_TRADES_PATH, record_time_ns

__all__ = ["GateioReplay"]

_CONTROL = "control"
_BOOK_MAX = 100  # order book: limit at most 100 (spot 1000 today; the recording's snapshots hold 100)
_TRADES_MAX = 1000


@dataclass(slots=True)
class _Diff:
    symbol: str
    first: int
    last: int
    bids: list[list[str]]
    asks: list[list[str]]
    full: bool


@dataclass(slots=True)
class _Snapshot:
    symbol: str
    body: dict[str, Any]


@dataclass(slots=True)
class _ServerBook:
    """The exchange's book of one pair: the recorded REST reply, then every diff after it."""

    symbol: str
    recorded: dict[str, Any] | None = None
    recorded_raw: bytes = b""
    book: L2Book | None = None
    last: int = -1
    #: diffs passed before the recorded reply (applied on top of it when the cursor reaches it)
    early: list[_Diff] = field(default_factory=list)
    #: (U, u) of every recorded diff: what names a REST reply the reader could not name
    ranges: list[tuple[int, int]] = field(default_factory=list)

    def on_diff(self, diff: _Diff) -> None:
        book = self.book
        if diff.full:
            if book is None:
                book = self.book = L2Book(self.symbol, keep_raw=True)
            book.load(diff.bids, diff.asks)
            self.last = diff.last
            return
        if book is None:
            if len(self.early) < 10_000:
                self.early.append(diff)
            return
        if diff.last > self.last:
            book.apply(diff.bids, diff.asks)
            self.last = diff.last

    def on_snapshot(self, body: dict[str, Any]) -> None:
        if self.book is not None:
            return  # a later recorded reply: the book already runs ahead of it
        book = self.book = L2Book(self.symbol, keep_raw=True)
        book.load(raw_levels(body.get("bids", [])), raw_levels(body.get("asks", [])))
        self.last = int(body["id"])
        for diff in self.early:
            if diff.last > self.last:
                book.apply(diff.bids, diff.asks)
                self.last = diff.last
        self.early.clear()


class GateioReplay(ReplayProtocol):
    server_pings = False  # clients send {"channel":"spot.ping"}

    def __init__(self, exchange: GateioExchange) -> None:
        super().__init__(exchange.id)
        self._x = exchange
        self._futures = exchange.market == "futures"
        self._ws_path = "/v4/ws/usdt" if self._futures else "/ws/v4"
        self._book_path = "/api/v4/futures/usdt/order_book" if self._futures else "/api/v4/spot/order_book"
        self._trades_path = GATEIO_FUTURES_TRADES_PATH if self._futures else GATEIO_SPOT_TRADES_PATH
        self._books: dict[str, _ServerBook] = {}
        self._trades = TradeLogs()
        self._symbols: set[str] = set()
        #: recorded REST replies the reader did not name: (recv_ns, id) -> pair, settled by ``finish_scan``
        self._unnamed: dict[tuple[int, int], str] = {}
        #: REST order books served
        self.rest_books = 0
        #: pongs sent
        self.pongs = 0
        #: the recording's first receive time (the server's clock before the cursor moves)
        self._first_recv_ns: int | None = None

    # --- the recording -----------------------------------------------------------------------------

    def scan(self, frame: CapturedFrame, *, times: bool) -> int | None:
        if self._first_recv_ns is None or frame.recv_ns < self._first_recv_ns:
            self._first_recv_ns = frame.recv_ns
        if frame.kind == "rest":
            body = _object(frame.frame)
            if body is None or "id" not in body or "asks" not in body:
                return None
            if frame.symbol:
                self._scan_snapshot(frame.symbol, body, frame.frame)
            else:
                self._unnamed[(frame.recv_ns, int(body["id"]))] = ""
            return None
        if frame.kind != "ws":
            return None
        channel, symbol = self._x.route(frame.frame)
        if channel == _CONTROL or not channel:
            return None
        self._symbols.add(symbol)
        is_book = channel == self._x.book_channel
        is_trade = channel == self._x.trade_channel
        if not (times or is_book or is_trade):
            return None
        msg = orjson.loads(frame.frame)
        result = msg.get("result")
        if is_book and isinstance(result, dict) and "u" in result:
            u = int(result["u"])
            self._book(symbol).ranges.append((int(result.get("U", u)), u))
        if is_trade:
            for item in result if isinstance(result, list) else [result]:
                if isinstance(item, dict):
                    self._record(item, frame.recv_ns)
        if not times:
            return None
        t = self._x.exchange_time(frame.frame)
        return None if t is None else t // 1_000_000

    def _scan_snapshot(self, symbol: str, body: dict[str, Any], text: str) -> None:
        book = self._book(symbol)
        if book.recorded is None:
            book.recorded, book.recorded_raw = body, text.encode()

    def _record(self, item: dict[str, Any], recv_ns: int) -> None:
        """A recorded trade as the REST history record of the same trade."""
        try:
            trade_id, t_ns = int(item["id"]), record_time_ns(item)
        except (KeyError, TypeError, ValueError):
            return  # not a trade in the documented layout: nothing the exchange would serve
        symbol = str(item.get("contract" if self._futures else "currency_pair", ""))
        if self._futures:
            record: dict[str, object] = {k: item[k] for k in ("id", "create_time", "create_time_ms", "contract",
                                                              "size", "price") if k in item}  # fmt: skip
        else:
            record = {
                "id": str(trade_id),
                "create_time": str(item.get("create_time", t_ns // 10**9)),
                "create_time_ms": str(item["create_time_ms"]),
                "currency_pair": symbol,
                "side": item.get("side"),
                "amount": item.get("amount"),
                "price": item.get("price"),
            }
        log = self._trades.log(symbol)
        log.add(trade_id, t_ns // 1_000_000, recv_ns, record)

    def finish_scan(self) -> None:
        self._trades.finish()
        for key in list(self._unnamed):
            self._unnamed[key] = self._pair_of(key[1])

    def _pair_of(self, snap: int) -> str:
        """The pair whose recorded diffs hold update id ``snap`` (U-1 <= id <= u), else come nearest to it."""
        best, best_d = "", None
        for symbol, book in self._books.items():
            for first, last in book.ranges:
                d = 0 if first - 1 <= snap <= last else min(abs(snap - last), abs(first - 1 - snap))
                if best_d is None or d < best_d:
                    best, best_d = symbol, d
        return best

    def prepare(self, frame: CapturedFrame) -> Prepared | None:
        if frame.kind == "rest":
            body = _object(frame.frame)
            if body is None or "id" not in body or "asks" not in body:
                return None
            symbol = frame.symbol or self._unnamed.get((frame.recv_ns, int(body["id"])), "")
            if not symbol:
                return None
            if not frame.symbol:
                self._scan_snapshot(symbol, body, frame.frame)
            return Prepared(frame.recv_ns, None, "depthSnapshot", None, _Snapshot(symbol, body))
        if frame.kind != "ws":
            return None
        text = frame.frame
        channel, symbol = self._x.route(text)
        if channel == _CONTROL or not channel:
            return None  # recorded acks and pongs: the server answers its own clients
        key = f"{channel}:{symbol}"
        shift = self.shift_ms
        update: _Diff | None = None
        if shift or channel == self._x.book_channel:
            msg = orjson.loads(text)
            result = msg.get("result")
            if channel == self._x.book_channel and isinstance(result, dict) and "u" in result:
                u = int(result["u"])
                update = _Diff(symbol, int(result.get("U", u)), u, raw_levels(result.get("b", [])),
                               raw_levels(result.get("a", [])), result.get("full") is True)  # fmt: skip
            if shift:
                _shift_push(msg, shift)
                return Prepared(frame.recv_ns, key, key, orjson.dumps(msg), update)
        return Prepared(frame.recv_ns, key, key, text.encode(), update)

    def advance(self, frame: Prepared) -> None:
        update = frame.update
        if isinstance(update, _Diff):
            self._book(update.symbol).on_diff(update)
        elif isinstance(update, _Snapshot):
            self._book(update.symbol).on_snapshot(update.body)

    def _book(self, symbol: str) -> _ServerBook:
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = _ServerBook(symbol)
        return book

    # --- clients -----------------------------------------------------------------------------------

    def accepts(self, path: str) -> bool:
        return path.rstrip("/") == self._ws_path

    def on_open(self, client: ReplayClient, path: str, query: Query) -> list[bytes]:
        return []

    def _now(self) -> float:
        """The server's clock in seconds: where the cursor is in the recording (rebased), as the exchange's replies
        carry its own time; the wall clock only for a recording without frames."""
        recv = self.passed_ns if self.passed_ns >= 0 else self._first_recv_ns
        if recv is None:
            return time.time()
        return (recv // 1_000_000 + self.shift_ms) / 1000

    def on_message(self, client: ReplayClient, text: str) -> list[bytes]:
        now = self._now()
        msg = _object(text)
        if msg is None:
            return [_reply(now, "", "", None, error=(1, "invalid argument provided"))]
        channel, event, payload = str(msg.get("channel", "")), msg.get("event"), msg.get("payload")
        if channel.endswith(".ping"):
            self.pongs += 1
            return [_reply(now, channel[:-5] + ".pong", "", None, result=None)]
        if event not in ("subscribe", "unsubscribe"):
            return [_reply(now, channel, str(event), payload, error=(1, "invalid argument provided"))]
        if channel not in self._x.capabilities.channels:
            return [_reply(now, channel, event, payload, error=(2, f"unknown channel {channel}"))]
        symbols = self._x.payload_symbols(channel, payload)
        if not symbols:
            return [_reply(now, channel, event, payload, error=(2, "invalid payload"))]
        for symbol in symbols:
            key = f"{channel}:{symbol}"
            if event == "subscribe":
                client.subscribe(key, key)
            else:
                client.unsubscribe(key)
        return [_reply(now, channel, event, payload, result={"status": "success"})]

    # --- REST --------------------------------------------------------------------------------------

    @property
    def default_rest_limit(self) -> RateLimit:
        return GATEIO_REST_LIMIT

    def rest_weight(self, path: str, query: Query) -> int | None:
        return 1 if path.rstrip("/") in (self._book_path, self._trades_path) else None

    def rest_headers(self, used: int, limit: RateLimit) -> HttpHeaders:
        return {
            "X-Gate-RateLimit-Requests-Remain": str(max(0, limit.weight - used)),
            "X-Gate-RateLimit-Limit": str(limit.weight),
        }

    def throttled(self, status: int, retry_after_s: int, used: int, limit: RateLimit) -> Throttled:
        body = b'{"label":"TOO_MANY_REQUESTS","message":"Request Rate Limit Exceeded"}'
        return 429, body, self.rest_headers(used, limit)

    def http_get(self, path: str, query: Query) -> HttpReply | None:
        path = path.rstrip("/")
        if path == self._book_path:
            return self._order_book(query)
        if path == self._trades_path:
            return self._market_trades(query)
        return None

    def _order_book(self, query: Query) -> HttpReply:
        symbol = (query.get(self._x.symbol_param) or [""])[0]
        book = self._books.get(symbol)
        if book is None or book.recorded is None:
            if symbol not in self._symbols:
                return _rest_error(400, "INVALID_CURRENCY" if not self._futures else "CONTRACT_NOT_FOUND",
                                   f"unknown {self._x.symbol_param} {symbol}")  # fmt: skip
            return _rest_error(503, "SERVER_ERROR", f"the replayed capture has no order book of {symbol}")
        raw = (query.get("limit") or ["10"])[0]
        if not raw.isdigit():
            return _rest_error(400, "INVALID_PARAM_VALUE", "Invalid limit")
        limit = max(1, min(_BOOK_MAX, int(raw)))
        self.rest_books += 1
        with_id = (query.get("with_id") or ["false"])[0] == "true"
        live = book.book
        recorded = book.recorded
        if live is None:
            body = dict(recorded)
            body["bids"], body["asks"] = recorded["bids"][:limit], recorded["asks"][:limit]
        else:
            body = {"id": book.last} if with_id else {}
            for key, value in recorded.items():
                if key in ("id", "bids", "asks"):
                    continue
                body[key] = value
            bids, asks = live.raw_bids(limit), live.raw_asks(limit)
            if self._futures:
                body["asks"] = [{"p": p, "s": _size(s)} for p, s in asks]
                body["bids"] = [{"p": p, "s": _size(s)} for p, s in bids]
            else:
                body["asks"] = [[p, s] for p, s in asks]
                body["bids"] = [[p, s] for p, s in bids]
        if not with_id:
            body.pop("id", None)
        if self.shift_ms:
            for key in ("current", "update"):
                value = body.get(key)
                if isinstance(value, float):
                    body[key] = round(value + self.shift_ms / 1000, 3)
                elif isinstance(value, int):
                    body[key] = value + self.shift_ms
        return 200, orjson.dumps(body)

    def _market_trades(self, query: Query) -> HttpReply:
        """Newest first; ``from``/``to`` (seconds, both ends included) and ``limit`` (at most 1000), paged by ``page``
        (spot) or ``offset`` (futures); spot ``last_id`` with ``reverse`` (older than it when true)."""
        symbol = (query.get(self._x.symbol_param) or [""])[0]
        if not symbol:
            return _rest_error(400, "MISSING_REQUIRED_PARAM", f"Missing required parameter: {self._x.symbol_param}")
        params: dict[str, int | None] = {}
        for name in ("limit", "from", "to", "page", "offset", "last_id"):
            raw = (query.get(name) or [""])[0]
            if raw and not raw.isdigit():
                return _rest_error(400, "INVALID_PARAM_VALUE", f"Invalid {name}")
            params[name] = int(raw) if raw else None
        limit = max(1, min(_TRADES_MAX, params["limit"] or 100))
        log = self._trades.get(symbol)
        if log is None:
            if symbol not in self._symbols:
                return _rest_error(400, "INVALID_CURRENCY", f"unknown {self._x.symbol_param} {symbol}")
            return 200, b"[]"
        shift = self.shift_ms
        lo_ms = None if params["from"] is None else params["from"] * 1000 - shift
        hi_ms = None if params["to"] is None else params["to"] * 1000 + 999 - shift
        last_id, reverse = params["last_id"], (query.get("reverse") or ["false"])[0] == "true"
        picked = []
        for i in range(len(log) - 1, -1, -1):  # newest first
            if not self.visible(log.recvs[i]):
                continue
            t = log.times[i]
            if (lo_ms is not None and t < lo_ms) or (hi_ms is not None and t > hi_ms):
                continue
            if last_id is not None and (log.ids[i] >= last_id if reverse else log.ids[i] <= last_id):
                continue
            picked.append(i)
        skip = (params["offset"] or 0) if self._futures else ((params["page"] or 1) - 1) * limit
        records = [_shift_record(log.records[i], shift) for i in picked[skip : skip + limit]]
        return 200, orjson.dumps(records)


def _object(text: str) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _reply(
    now: float,
    channel: str,
    event: str,
    payload: object,
    *,
    result: object = None,
    error: tuple[int, str] | None = None,
) -> bytes:
    msg: dict[str, Any] = {"time": int(now), "time_ms": int(now * 1000), "channel": channel, "event": event}
    if payload is not None:
        msg["payload"] = payload
    if error is not None:
        msg["error"] = {"code": error[0], "message": error[1]}
        msg["result"] = {"status": "fail"}
    else:
        msg["result"] = result
    return orjson.dumps(msg)


def _rest_error(status: int, label: str, message: str) -> HttpReply:
    return status, orjson.dumps({"label": label, "message": message})


def _shift_ms_text(value: object, shift_ms: int) -> object:
    """``create_time_ms`` moved by whole ms, its fraction text kept ("1619093543708.2642" + 60000)."""
    if isinstance(value, str):
        whole, dot, frac = value.partition(".")
        return f"{int(whole) + shift_ms}{dot}{frac}"
    if isinstance(value, int | float):
        return value + shift_ms
    return value


def _shift_item(item: dict[str, Any], shift_ms: int) -> dict[str, Any]:
    shift_s = shift_ms // 1000
    out = dict(item)
    if "create_time_ms" in out:
        out["create_time_ms"] = _shift_ms_text(out["create_time_ms"], shift_ms)
    if isinstance(out.get("create_time"), int):
        out["create_time"] = out["create_time"] + shift_s
    elif isinstance(out.get("create_time"), str) and out["create_time"].isdigit():
        out["create_time"] = str(int(out["create_time"]) + shift_s)
    if "n" in out and "t" in out:  # a candlestick: t in seconds (text on spot, a number on futures)
        t = out["t"]
        out["t"] = str(int(t) + shift_s) if isinstance(t, str) else t + shift_s
    else:
        if isinstance(out.get("t"), int):  # books and book tickers: ms
            out["t"] = out["t"] + shift_ms
        if isinstance(out.get("E"), int):  # spot order_book_update (2021): seconds
            out["E"] = out["E"] + shift_s
    return out


def _shift_push(msg: dict[str, Any], shift_ms: int) -> None:
    """Every exchange time of a push moved by ``shift_ms`` (whole minutes): ``time`` (s), ``time_ms`` (when not 0),
    and the result's own times."""
    if isinstance(msg.get("time"), int):
        msg["time"] += shift_ms // 1000
    if isinstance(msg.get("time_ms"), int) and msg["time_ms"] > 0:
        msg["time_ms"] += shift_ms
    result = msg.get("result")
    if isinstance(result, dict):
        msg["result"] = _shift_item(result, shift_ms)
    elif isinstance(result, list):
        msg["result"] = [_shift_item(r, shift_ms) if isinstance(r, dict) else r for r in result]


def _shift_record(record: dict[str, object], shift_ms: int) -> dict[str, object]:
    return _shift_item(dict(record), shift_ms) if shift_ms else record


def _size(text: str) -> int | str:
    """A futures level's size as Gate.io sends it: a JSON integer of contracts (a decimal stays text)."""
    return int(text) if text.isdigit() else text
