"""Kraken WebSocket v2, server side: subscribe/unsubscribe with per-pair acks (and refusals of unknown pairs or
channels), ``{"method":"ping"}`` answered with ``pong``, a fresh ``book`` snapshot (with its checksum) and a
``trade`` snapshot of the last 50 trades for a (re)subscriber, and the REST history ``GET /0/public/Trades`` from
the recorded ``trade`` messages.

Over the REST budget (about 1 call per second) the answer is HTTP 429 with Kraken's error list
``{"error":["EGeneral:Too many requests"]}``.
"""

from __future__ import annotations

import re
import time
from bisect import bisect_right
from collections import deque
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
from ._book import BOOK
from ._exchange import BOOK_DEPTHS, KrakenExchange
from ._history import KRAKEN_REST_LIMIT, KRAKEN_TRADES_PATH, rest_pair
from ._wire import CHECKSUM_DEPTH, exact_loads, kraken_checksum, rfc3339, rfc3339_ns

__all__ = ["KrakenReplay"]

_CONTROL = "control"
_TRADE = "trade"
_CHANNELS = frozenset({"trade", "book", "ticker", "ohlc"})
#: what a trade snapshot holds (docs: "the most recent 50 trades")
_TRADE_SNAPSHOT = 50
#: the depth the server keeps books at (the deepest a client may ask for)
_SERVER_DEPTH = max(BOOK_DEPTHS)
_MAX_COUNT = 1000
_TIMES = re.compile(r'("(?:timestamp|interval_begin)"\s*:\s*")([^"]+)(")')


@dataclass(slots=True)
class _Update:
    channel: str
    symbol: str
    kind: str
    items: list[dict[str, Any]]


def _number_levels(levels: list[tuple[str, str]]) -> str:
    return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in levels) + "]"


def _now() -> str:
    return rfc3339(time.time_ns() // 1000 * 1000)


class KrakenReplay(ReplayProtocol):
    server_pings = False  # v2 clients send {"method":"ping"}

    def __init__(self, exchange: KrakenExchange) -> None:
        super().__init__(exchange.id)
        self._route = exchange.route
        self._books: dict[str, L2Book] = {}
        self._book_ts: dict[str, str] = {}
        #: the last trades passed per pair (records with price/qty texts), for trade snapshots
        self._recent: dict[str, deque[dict[str, Any]]] = {}
        #: pair -> recorded trades for REST history (times in microseconds)
        self._trades = TradeLogs()
        #: every pair the recording has a push of, by v2 name and by REST name
        self._instruments: set[str] = set()
        self._by_rest: dict[str, str] = {}
        #: book and trade snapshots generated for (re)subscribers
        self.snapshots_sent = 0
        self.trade_snapshots_sent = 0
        #: pings answered
        self.pongs_sent = 0

    # --- the recording -----------------------------------------------------------------------------

    def scan(self, frame: CapturedFrame, *, times: bool) -> int | None:
        if frame.kind != "ws":
            return None
        channel, symbol = self._route(frame.frame)
        if channel not in _CHANNELS:
            return None
        if symbol:
            self._instruments.add(symbol)
            self._by_rest[rest_pair(symbol)] = symbol
        latest: int | None = None
        if times:
            for m in _TIMES.finditer(frame.frame):
                ns = rfc3339_ns(m.group(2))
                if ns is not None:
                    latest = ns // 1_000_000 if latest is None else max(latest, ns // 1_000_000)
        if channel == _TRADE:
            for item in exact_loads(frame.frame).get("data") or ():
                self._record(item, symbol, frame.recv_ns)
        return latest

    def _record(self, item: Any, symbol: str, recv_ns: int) -> None:
        if not isinstance(item, dict):
            return
        ns = rfc3339_ns(str(item.get("timestamp", "")))
        trade_id = item.get("trade_id")
        if ns is None or not isinstance(trade_id, int):
            return  # not a trade in the documented layout: nothing the exchange would serve
        pair = str(item.get("symbol") or symbol)
        log = self._trades.log(pair)
        log.add(trade_id, ns // 1000, recv_ns, dict(item))

    def finish_scan(self) -> None:
        self._trades.finish()

    def prepare(self, frame: CapturedFrame) -> Prepared | None:
        if frame.kind != "ws":
            return None
        text = frame.frame
        channel, symbol = self._route(text)
        if channel == _CONTROL or channel not in _CHANNELS:
            return None  # recorded acks, pongs, heartbeats, status: the server answers its own clients
        key = f"{channel}:{symbol}"
        update: _Update | None = None
        if channel in (BOOK, _TRADE):
            msg = exact_loads(text)
            items = [d for d in msg.get("data") or () if isinstance(d, dict)]
            update = _Update(channel, symbol, str(msg.get("type", "update")), items)
        if self.shift_ms:
            text = self._shifted(text)
        return Prepared(frame.recv_ns, key, key, text.encode(), update)

    def _shifted(self, text: str) -> str:
        shift = self.shift_ms * 1_000_000

        def move(m: re.Match[str]) -> str:
            ns = rfc3339_ns(m.group(2))
            return m.group(0) if ns is None else f"{m.group(1)}{rfc3339(ns + shift)}{m.group(3)}"

        return _TIMES.sub(move, text)

    def advance(self, frame: Prepared) -> None:
        update = frame.update
        if not isinstance(update, _Update):
            return
        if update.channel == _TRADE:
            recent = self._recent.get(update.symbol)
            if recent is None:
                recent = self._recent[update.symbol] = deque(maxlen=_TRADE_SNAPSHOT)
            recent.extend(update.items)
            return
        for d in update.items:
            pair = str(d.get("symbol") or update.symbol)
            bids = [(lv["price"], lv["qty"]) for lv in d.get("bids", ())]
            asks = [(lv["price"], lv["qty"]) for lv in d.get("asks", ())]
            book = self._books.get(pair)
            if update.kind == "snapshot":
                book = self._books[pair] = L2Book(pair, keep_raw=True)
                book.load(bids, asks)
            elif book is None:
                continue
            else:
                book.apply(bids, asks)
            book.truncate(_SERVER_DEPTH)
            if isinstance(d.get("timestamp"), str):
                self._book_ts[pair] = d["timestamp"]

    # --- clients -----------------------------------------------------------------------------------

    def accepts(self, path: str) -> bool:
        return path.rstrip("/") == "/v2"

    def on_open(self, client: ReplayClient, path: str, query: Query) -> list[bytes]:
        status = {"api_version": "v2", "connection_id": client.id, "system": "online", "version": "2.0.0"}
        return [orjson.dumps({"channel": "status", "type": "update", "data": [status]})]

    def on_message(self, client: ReplayClient, text: str) -> list[bytes]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [orjson.dumps({"error": "Malformed request", "success": False, "time_in": _now()})]
        if not isinstance(msg, dict):
            return [orjson.dumps({"error": "Malformed request", "success": False, "time_in": _now()})]
        method, req_id = msg.get("method"), msg.get("req_id")
        echo: dict[str, Any] = {} if req_id is None else {"req_id": req_id}
        if method == "ping":
            self.pongs_sent += 1
            return [orjson.dumps({"method": "pong", **echo, "time_in": _now(), "time_out": _now()})]
        params = msg.get("params")
        if method not in ("subscribe", "unsubscribe") or not isinstance(params, dict):
            return [orjson.dumps({"error": f"Unsupported method {method}", "method": method, "success": False, **echo})]
        channel, symbols = str(params.get("channel")), params.get("symbol")
        if not isinstance(symbols, list) or not symbols:
            return [orjson.dumps({"error": "Missing symbol", "method": method, "success": False, **echo})]
        replies: list[bytes] = []
        snapshots: list[bytes] = []
        for symbol in symbols:
            if channel not in _CHANNELS:
                error = f"Channel {channel} not supported"
            elif symbol not in self._instruments:
                error = f"Currency pair not supported {symbol}"
            else:
                error = ""
            if error:
                refusal = {"error": error, "method": method, "success": False, "symbol": symbol, **echo}
                replies.append(orjson.dumps({**refusal, "time_in": _now(), "time_out": _now()}))
                continue
            key = f"{channel}:{symbol}"
            result: dict[str, Any] = {"channel": channel, "symbol": symbol}
            if channel == BOOK:
                result["depth"] = params.get("depth", 10)
            if method == "unsubscribe":
                client.unsubscribe(key)
            else:
                result["snapshot"] = params.get("snapshot", channel != _TRADE)
                new = client.subscribe(key, key)
                if new and result["snapshot"]:
                    snap = self._snapshot(channel, symbol, params)
                    if snap is not None:
                        snapshots.append(snap)
            ack = {"method": method, **echo, "result": result, "success": True, "time_in": _now(), "time_out": _now()}
            replies.append(orjson.dumps(ack))
        return replies + snapshots

    def _trade_item(self, rec: dict[str, Any]) -> dict[str, Any]:
        """A recorded trade as the wire has it: price and qty numbers with their digits, the time shifted."""
        item = dict(rec)
        item["price"], item["qty"] = _Raw(str(rec["price"])), _Raw(str(rec["qty"]))
        ns = rfc3339_ns(str(rec.get("timestamp", "")))
        if ns is not None and self.shift_ms:
            item["timestamp"] = rfc3339(ns + self.shift_ms * 1_000_000)
        return item

    def _snapshot(self, channel: str, symbol: str, params: dict[str, Any]) -> bytes | None:
        """The book or the last trades as they stand at the cursor (before the recording's own snapshot reached
        the cursor there is none: the subscriber gets the recorded one)."""
        if channel == _TRADE:
            recent = self._recent.get(symbol)
            if not recent:
                return None
            data = [self._trade_item(rec) for rec in recent]
            self.trade_snapshots_sent += 1
            return _dumps_with_raw({"channel": _TRADE, "type": "snapshot", "data": data})
        if channel != BOOK:
            return None
        book = self._books.get(symbol)
        if book is None:
            return None
        depth = params.get("depth", 10)
        depth = depth if isinstance(depth, int) and depth in BOOK_DEPTHS else 10
        bids, asks = book.raw_bids(depth), book.raw_asks(depth)
        checksum = kraken_checksum(bids[:CHECKSUM_DEPTH], asks[:CHECKSUM_DEPTH])
        ts = self._book_ts.get(symbol)
        stamp = ""
        if ts is not None:
            ns = rfc3339_ns(ts)
            stamp = f',"timestamp":"{rfc3339(ns + self.shift_ms * 1_000_000) if ns is not None else ts}"'
        self.snapshots_sent += 1
        body = (
            f'{{"symbol":"{symbol}","bids":{_number_levels(bids)},"asks":{_number_levels(asks)},'
            f'"checksum":{checksum}{stamp}}}'
        )
        return f'{{"channel":"book","type":"snapshot","data":[{body}]}}'.encode()

    # --- REST --------------------------------------------------------------------------------------

    @property
    def default_rest_limit(self) -> RateLimit:
        return KRAKEN_REST_LIMIT

    def rest_weight(self, path: str, query: Query) -> int | None:
        return 1 if path.rstrip("/") == KRAKEN_TRADES_PATH else None

    def rest_headers(self, used: int, limit: RateLimit) -> HttpHeaders:
        return {}

    def throttled(self, status: int, retry_after_s: int, used: int, limit: RateLimit) -> Throttled:
        return 429, b'{"error":["EGeneral:Too many requests"]}', {}

    def http_get(self, path: str, query: Query) -> HttpReply | None:
        if path.rstrip("/") != KRAKEN_TRADES_PATH:
            return None
        pair = (query.get("pair") or [""])[0]
        symbol = pair if pair in self._instruments else self._by_rest.get(pair)
        if symbol is None:
            return 200, orjson.dumps({"error": ["EQuery:Unknown asset pair"]})
        since_text = (query.get("since") or ["0"])[0]
        count_text = (query.get("count") or [str(_MAX_COUNT)])[0]
        if not since_text.isdigit() or not count_text.isdigit():
            return 200, orjson.dumps({"error": ["EGeneral:Invalid arguments"]})
        count = max(1, min(_MAX_COUNT, int(count_text)))
        # since: ns (the ``last`` of a reply) or, as Kraken also accepts, whole seconds
        since_ns = int(since_text) if len(since_text) > 12 else int(since_text) * 1_000_000_000
        shift_ns = self.shift_ms * 1_000_000
        log = self._trades.get(symbol)
        rows: list[list[Any]] = []
        last_ns = since_ns
        if log is not None:
            start = bisect_right(log.times, (since_ns - shift_ns) // 1000)
            for i in log.forward(start, count, self.visible):
                rec = log.records[i]
                ns = log.times[i] * 1000 + shift_ns
                seconds = f"{ns // 1_000_000_000}.{ns % 1_000_000_000 // 1000:06d}"
                side = "b" if rec.get("side") == "buy" else "s"
                kind = "m" if rec.get("ord_type") == "market" else "l"
                rows.append([rec["price"], rec["qty"], _Raw(seconds), side, kind, "", rec["trade_id"]])
                last_ns = ns
        body = _dumps_with_raw({"error": [], "result": {rest_pair(symbol): rows, "last": str(last_ns)}})
        return 200, body


class _Raw(str):
    """A number written as its text (the reply's ``time``: seconds with microseconds, not a float's digits)."""


def _dumps_with_raw(obj: Any) -> bytes:
    """orjson output with every ``_Raw`` string unquoted (a JSON number with exactly those digits)."""
    marker = "\u0000raw:"
    raws: list[str] = []

    def mark(value: Any) -> Any:
        if isinstance(value, _Raw):
            raws.append(str(value))
            return marker
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = orjson.dumps(mark(obj)).decode()
    quoted = orjson.dumps(marker).decode()
    parts = text.split(quoted)
    out = [parts[0]]
    for raw, part in zip(raws, parts[1:], strict=True):
        out.append(raw)
        out.append(part)
    return "".join(out).encode()
