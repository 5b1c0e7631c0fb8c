"""Bitfinex v2 public WebSocket, server side: ``conf``, ``subscribe``/``unsubscribe`` (by chanId) with their events,
``ping``/``pong``, a fresh book snapshot for a (re)subscriber, and the REST ``GET /v2/trades/{symbol}/hist`` from the
recorded trades (docs.bitfinex.com "General", "Books", "Trades", REST "Trades"; see ``_exchange``/``_history``).

Channel ids: a stream is served under the chanId its recording's ``subscribed`` event gave it (recorded frames name
it), whoever subscribes and however often. Sequence numbers (SEQ_ALL) are per connection on Bitfinex; this server
sends each recorded frame once for every client (one encoding), so it cannot number them per client: it strips the
recorded ones and answers ``conf`` with the checksum flag only (a client then checks no sequence; the checksum frames
recorded, or built from the docs into a capture, are served as recorded). Exchange times (trade MTS) are shifted by
``shift_ms``; books and tickers carry none.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

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
from ._book import BOOK_CHANNEL, BOOK_LEN
from ._exchange import BitfinexExchange
from ._history import BITFINEX_HISTORY_LIMIT
from ._wire import OB_CHECKSUM, exact, split_seq

__all__ = ["BitfinexReplay"]

_CONTROL = "control"
_TRADES = "trades"
_HIST = re.compile(r"^/v2/trades/([^/]+)/hist$")
_NUMBER = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$")
#: trades a subscriber's snapshot holds ("Trades": the latest trades on subscribe)
_SNAPSHOT_TRADES = 30
#: GET /v2/trades/{symbol}/hist: 125 records by default, 10,000 at most
_HIST_DEFAULT, _HIST_MAX = 125, 10_000


def _dump(value: Any) -> str:
    """A value decoded by ``exact`` written back: numbers as their text, other strings quoted."""
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    if isinstance(value, str):
        return value if _NUMBER.match(value) else orjson.dumps(value).decode()
    return orjson.dumps(value).decode()


@dataclass(slots=True)
class _BookUpdate:
    key: str
    body: list[Any]


@dataclass(slots=True)
class _Ticker:
    key: str
    data: bytes


class _ServerBook:
    """One book as Bitfinex keeps it: price text -> (count, amount) texts, for a subscriber's snapshot."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids: dict[str, tuple[str, str]] = {}
        self.asks: dict[str, tuple[str, str]] = {}

    def apply(self, data: list[Any]) -> None:
        if not data or isinstance(data[0], list):
            self.bids.clear()
            self.asks.clear()
            for level in data:
                self._set(level)
        else:
            self._set(data)

    def _set(self, level: list[str]) -> None:
        price, count, amount = level[0], level[1], level[2]
        side = self.asks if amount.startswith("-") else self.bids
        if count == "0":
            side.pop(price, None)
        else:
            side[price] = (count, amount)

    def snapshot(self, chan: int) -> bytes:
        bids = sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))
        levels = ",".join(f"[{p},{c},{a}]" for p, (c, a) in [*bids, *asks])
        return f"[{chan},[{levels}]]".encode()


class BitfinexReplay(ReplayProtocol):
    server_pings = False  # Bitfinex sends heartbeats per channel; clients may send {"event":"ping"}

    def __init__(self, exchange: BitfinexExchange) -> None:
        super().__init__(exchange.id)
        self._scan_route = exchange.connection_router()
        self._prep_route = exchange.connection_router()
        #: key ("channel:symbol") -> the chanId the recording gave it, and back
        self._chan: dict[str, int] = {}
        self._keys: dict[int, str] = {}
        #: the subscribe options each recorded book was subscribed with (prec/freq/len)
        self._books: dict[str, _ServerBook] = {}
        self._trades = TradeLogs()
        #: the last recorded ticker frame per key (a ticker subscriber gets it first)
        self._tickers: dict[str, bytes] = {}
        #: keys whose recorded trades snapshot the cursor has passed
        self._trades_passed: set[str] = set()
        self.snapshots_sent = 0
        self.trade_snapshots_sent = 0
        self.ticker_snapshots_sent = 0

    # --- the recording -----------------------------------------------------------------------------

    def scan(self, frame: CapturedFrame, *, times: bool) -> int | None:
        if frame.kind != "ws":
            return None
        text = frame.frame
        channel, symbol = self._scan_route(text)
        if channel == _CONTROL:
            if '"subscribed"' in text:
                obj = orjson.loads(text)
                key = f"{obj.get('channel')}:{obj.get('symbol')}"
                self._chan.setdefault(key, int(obj["chanId"]))
                self._keys.setdefault(int(obj["chanId"]), key)
            return None
        if channel != _TRADES:
            return None
        body, _ = split_seq(exact(text))
        items = _trade_items(body)
        log = self._trades.log(symbol)
        latest: int | None = None
        for item in items:
            record: dict[str, object] = {"id": item[0], "mts": item[1], "amount": item[2], "price": item[3]}
            log.add(int(item[0]), int(item[1]), frame.recv_ns, record)
            latest = max(latest or 0, int(item[1]))
        return latest if times else None

    def finish_scan(self) -> None:
        self._trades.finish()

    def prepare(self, frame: CapturedFrame) -> Prepared | None:
        if frame.kind != "ws":
            return None
        text = frame.frame
        channel, symbol = self._prep_route(text)
        if channel == _CONTROL or not channel:
            return None  # recorded events: the server answers its own clients
        key = f"{channel}:{symbol}"
        body, seq = split_seq(exact(text))
        update: _BookUpdate | None = None
        if channel == BOOK_CHANNEL and len(body) > 1 and isinstance(body[1], list):
            update = _BookUpdate(key, body[1])
        elif channel == _TRADES and len(body) == 2 and isinstance(body[1], list):
            update = _BookUpdate(key, [])  # a trades snapshot: marks the key as passed
        if seq is None and not (self.shift_ms and channel == _TRADES):
            data = text.encode()
        else:
            if self.shift_ms and channel == _TRADES:
                body = _shift_trades(body, self.shift_ms)
            data = _dump(body).encode()
        if channel == "ticker":
            return Prepared(frame.recv_ns, key, key, data, _Ticker(key, data))
        return Prepared(frame.recv_ns, key, key, data, update)

    def advance(self, frame: Prepared) -> None:
        update = frame.update
        if isinstance(update, _Ticker):
            self._tickers[update.key] = update.data
            return
        if not isinstance(update, _BookUpdate):
            return
        if update.key.startswith(_TRADES + ":"):
            self._trades_passed.add(update.key)
            return
        book = self._books.get(update.key)
        if book is None:
            if update.body and not isinstance(update.body[0], list):
                return  # an update before the recorded snapshot
            book = self._books[update.key] = _ServerBook()
        book.apply(update.body)

    # --- clients -----------------------------------------------------------------------------------

    def accepts(self, path: str) -> bool:
        return path.rstrip("/") == "/ws/2"

    def on_open(self, client: ReplayClient, path: str, query: Query) -> list[bytes]:
        return [orjson.dumps({"event": "info", "version": 2, "serverId": "replay", "platform": {"status": 1}})]

    def on_message(self, client: ReplayClient, text: str) -> list[bytes]:
        msg = json_object(text)
        if msg is None:
            return [_error(10000, "Unknown event")]
        event = msg.get("event")
        if event == "ping":
            return [orjson.dumps({"event": "pong", "ts": time.time_ns() // 1_000_000, "cid": msg.get("cid")})]
        if event == "conf":
            raw_flags = msg.get("flags")
            flags = raw_flags if isinstance(raw_flags, int) else 0
            # sequence numbers cannot be given per client (module doc): only the checksum flag is taken
            return [orjson.dumps({"event": "conf", "status": "OK", "flags": flags & OB_CHECKSUM})]
        if event == "unsubscribe":
            chan = msg.get("chanId")
            key = self._keys.get(chan) if isinstance(chan, int) else None
            if key is None or key not in client.keys:
                return [_error(10400, "unsubscribe: invalid", chanId=chan)]
            client.unsubscribe(key)
            return [orjson.dumps({"event": "unsubscribed", "status": "OK", "chanId": chan})]
        if event == "subscribe":
            return self._subscribe(client, msg)
        return [_error(10000, "Unknown event")]

    def _subscribe(self, client: ReplayClient, msg: dict[str, Any]) -> list[bytes]:
        channel, symbol = str(msg.get("channel", "")), str(msg.get("symbol", ""))
        key = f"{channel}:{symbol}"
        chan = self._chan.get(key)
        if chan is None:
            return [_error(10300, "subscribe: invalid", channel=channel, symbol=symbol)]
        if key in client.keys:
            return [_error(10301, "subscribe: dup", channel=channel, symbol=symbol)]
        client.subscribe(key, key)
        ack: dict[str, Any] = {"event": "subscribed", "channel": channel, "chanId": chan, "symbol": symbol}
        if channel == BOOK_CHANNEL:
            ack.update(prec=msg.get("prec", "P0"), freq=msg.get("freq", "F0"), len=str(msg.get("len", BOOK_LEN)))
        ack["pair"] = symbol[1:]
        out = [orjson.dumps(ack)]
        # a stream the cursor has passed the start of gets its snapshot now (else the recorded one comes)
        if channel == BOOK_CHANNEL and (book := self._books.get(key)) is not None:
            out.append(book.snapshot(chan))
            self.snapshots_sent += 1
        elif channel == _TRADES and key in self._trades_passed:
            out.append(self._trade_snapshot(chan, symbol))
            self.trade_snapshots_sent += 1
        elif channel == "ticker" and (last := self._tickers.get(key)) is not None:
            out.append(last)
            self.ticker_snapshots_sent += 1
        return out

    def _trade_snapshot(self, chan: int, symbol: str) -> bytes:
        log = self._trades.get(symbol)
        items: list[str] = []
        if log is not None:
            for i in reversed(log.backward(len(log), _SNAPSHOT_TRADES, self.visible)):
                items.append(_record(log.records[i], self.shift_ms))
        return f"[{chan},[{','.join(items)}]]".encode()

    # --- REST --------------------------------------------------------------------------------------

    @property
    def default_rest_limit(self) -> RateLimit:
        return BITFINEX_HISTORY_LIMIT

    def rest_weight(self, path: str, query: Query) -> int | None:
        return 1 if _HIST.match(path.rstrip("/")) else None

    def rest_headers(self, used: int, limit: RateLimit) -> HttpHeaders:
        return {}

    def throttled(self, status: int, retry_after_s: int, used: int, limit: RateLimit) -> Throttled:
        return 429, b'["error",11010,"ratelimit: error"]', {}

    def http_get(self, path: str, query: Query) -> HttpReply | None:
        m = _HIST.match(path.rstrip("/"))
        if m is None:
            return None
        symbol = m.group(1)
        params: dict[str, int | None] = {}
        for name in ("start", "end", "limit", "sort"):
            raw = (query.get(name) or [""])[0]
            if raw and not re.fullmatch(r"-?\d+", raw):
                return 500, orjson.dumps(["error", 10020, f"{name}: invalid"])
            params[name] = int(raw) if raw else None
        limit = params["limit"] or _HIST_DEFAULT
        if not 1 <= limit <= _HIST_MAX:
            return 500, orjson.dumps(["error", 10020, "limit: invalid"])
        log = self._trades.get(symbol)
        if log is None:
            return 200, b"[]"
        shift = self.shift_ms
        start, end = params["start"], params["end"]
        picked = [
            i
            for i in range(len(log))
            if (start is None or log.times[i] + shift >= start)
            and (end is None or log.times[i] + shift <= end)
            and self.visible(log.recvs[i])
        ]
        picked.sort(key=lambda i: (log.times[i], log.ids[i]), reverse=params["sort"] != 1)
        body = "[" + ",".join(_record(log.records[i], shift) for i in picked[:limit]) + "]"
        return 200, body.encode()


def _trade_items(body: list[Any]) -> list[list[str]]:
    """The [ID, MTS, AMOUNT, PRICE] trades of a decoded trades frame (snapshot, te or tu); [] for others."""
    if len(body) == 2 and isinstance(body[1], list):
        return [t for t in body[1] if isinstance(t, list) and len(t) >= 4]
    if len(body) == 3 and body[1] in ("te", "tu") and isinstance(body[2], list) and len(body[2]) >= 4:
        return [body[2]]
    return []


def _shift_trades(body: list[Any], shift_ms: int) -> list[Any]:
    def moved(t: list[str]) -> list[str]:
        return [t[0], str(int(t[1]) + shift_ms), *t[2:]]

    if len(body) == 2 and isinstance(body[1], list):
        return [body[0], [moved(t) if isinstance(t, list) and len(t) >= 4 else t for t in body[1]]]
    if len(body) == 3 and body[1] in ("te", "tu") and isinstance(body[2], list) and len(body[2]) >= 4:
        return [body[0], body[1], moved(body[2])]
    return body


def _record(record: dict[str, object], shift_ms: int) -> str:
    mts = int(str(record["mts"])) + shift_ms
    return f"[{record['id']},{mts},{record['amount']},{record['price']}]"


def _error(code: int, msg: str, **extra: object) -> bytes:
    return orjson.dumps({"event": "error", "msg": msg, "code": code, **extra})
