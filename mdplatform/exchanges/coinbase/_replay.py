"""Coinbase Advanced Trade, server side: subscribe/unsubscribe (one channel per message) answered with a
``subscriptions`` frame, a fresh level2 snapshot for a (re)subscriber, ``sequence_num`` per connection, and the
public market trades endpoint ``GET /api/v3/brokerage/market/products/{product_id}/ticker`` served from the recorded
market_trades frames.

``sequence_num`` counts the frames of one connection, so the recorded numbers cannot be sent as they are: each
client's frames are renumbered as they are queued for it (its ``outbox``), keeping the recorded steps between the
frames it is subscribed to. A recorded jump (a frame missing from the recording) reaches the client as a jump,
which is how a test forces a sequence gap; frames it is not subscribed to, recorded acks and the frames this adapter
makes (acks, snapshots: ``sequence_num`` -1 until numbered) are accounted so that they make none.

Over the REST budget (10 requests per second) the answer is HTTP 429 with Coinbase's error object.
"""

from __future__ import annotations

import re
from bisect import bisect_left
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
from ._exchange import BOOK_CHANNEL, FRAME_CHANNELS, HEARTBEATS, TRADES_CHANNEL, CoinbaseExchange
from ._history import COINBASE_PUBLIC_LIMIT
from ._times import format_rfc3339, rfc3339_ns

__all__ = ["CoinbaseReplay"]

_CONTROL = "control"
_SEQ_VALUE = re.compile(rb'"sequence_num":\s*(-?\d+)')
#: times a shifted replay moves: frame ``timestamp``, trade ``time``, level ``event_time``
_TIMES = re.compile(r'"(timestamp|time|event_time)":"([^"]+)"')
_CANDLE_START = re.compile(r'"start":"(\d+)"')
_TICKER_PATH = re.compile(r"^/api/v3/brokerage/market/products/([^/]+)/ticker/?$")
_SECOND_NS = 1_000_000_000


def _frame(payload: bytes) -> bytes:
    """A server-to-client text frame (unmasked, RFC 6455 5.2), as the replay server writes them."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 1 << 16:
        head = b"\x81\x7e" + n.to_bytes(2, "big")
    else:
        head = b"\x81\x7f" + n.to_bytes(8, "big")
    return head + payload


def _payload(wire: bytes) -> bytes:
    n = wire[1] & 0x7F
    return wire[2 + (2 if n == 126 else 8 if n == 127 else 0) :]


class _Numbering:
    """One connection's ``sequence_num``: the last number sent, and the offset from recorded to sent numbers (None
    until the first recorded frame)."""

    __slots__ = ("last", "offset")

    def __init__(self) -> None:
        self.last = -1
        self.offset: int | None = None

    def renumber(self, wire: bytes) -> bytes:
        payload = _payload(wire)
        m = _SEQ_VALUE.search(payload)
        if m is None:
            return wire  # errors carry no number
        recorded = int(m.group(1))
        if recorded < 0:  # made here: the next number, and recorded frames move up by one
            number = self.last + 1
            if self.offset is not None:
                self.offset += 1
        else:
            if self.offset is None:
                self.offset = self.last + 1 - recorded
            number = recorded + self.offset
        self.last = number
        return _frame(payload[: m.start(1)] + str(number).encode() + payload[m.end(1) :])


class _Outbox(list[bytes]):
    """A client's outbox that numbers every frame as it is queued (the server shares one encoding of a recorded
    frame among its clients; the numbers are each connection's own)."""

    def __init__(self, numbering: _Numbering) -> None:
        super().__init__()
        self.numbering = numbering

    def append(self, wire: bytes) -> None:
        super().append(self.numbering.renumber(wire))

    def extend(self, wires: Any) -> None:
        for wire in wires:
            self.append(wire)


@dataclass(slots=True)
class _Passed:
    """What the cursor learns from a frame: its time and, for l2_data, its book events."""

    timestamp: str | None
    book: list[tuple[str, str, list[dict[str, Any]]]] = field(default_factory=list)


class _ServerBook:
    __slots__ = ("book",)

    def __init__(self, product: str) -> None:
        self.book = L2Book(product, keep_raw=True)

    def apply(self, kind: str, updates: list[dict[str, Any]]) -> None:
        bids = [(u["price_level"], u["new_quantity"]) for u in updates if u.get("side") == "bid"]
        asks = [(u["price_level"], u["new_quantity"]) for u in updates if u.get("side") == "offer"]
        if kind == "snapshot":
            self.book.load(bids, asks)
        elif kind == "update":
            self.book.apply(bids, asks)

    def snapshot(self, product: str, timestamp: str) -> bytes:
        def level(side: str, price: str, size: str) -> dict[str, str]:
            return {"side": side, "event_time": timestamp, "price_level": price, "new_quantity": size}

        updates = [level("bid", p, s) for p, s in self.book.raw_bids()]
        updates += [level("offer", p, s) for p, s in self.book.raw_asks()]
        event = {"type": "snapshot", "product_id": product, "updates": updates}
        return orjson.dumps(_envelope(BOOK_CHANNEL, timestamp, [event]))


def _envelope(channel: str, timestamp: str, events: list[Any]) -> dict[str, Any]:
    return {"channel": channel, "client_id": "", "timestamp": timestamp, "sequence_num": -1, "events": events}


def _shift_text(text: str, shift_ms: int) -> str:
    """The frame with every time moved by ``shift_ms`` (fractions keep their number of digits)."""

    def moved(m: re.Match[str]) -> str:
        value = m.group(2)
        ns = rfc3339_ns(value)
        if ns is None:
            return m.group(0)
        dot = value.find(".")
        digits = 0
        if dot >= 0:
            while dot + 1 + digits < len(value) and value[dot + 1 + digits].isdigit():
                digits += 1
        return f'"{m.group(1)}":"{format_rfc3339(ns + shift_ms * 1_000_000, digits)}"'

    text = _TIMES.sub(moved, text)
    return _CANDLE_START.sub(lambda m: f'"start":"{int(m.group(1)) + shift_ms // 1000}"', text)


class CoinbaseReplay(ReplayProtocol):
    server_pings = False  # the heartbeats channel keeps Coinbase connections open; no ping is documented

    def __init__(self, exchange: CoinbaseExchange) -> None:
        super().__init__(exchange.id)
        self._route = exchange.route
        self._books: dict[str, _ServerBook] = {}
        self._trades = TradeLogs()
        self._products: set[str] = set()
        self._clients: list[tuple[ReplayClient, _Numbering]] = []
        self._first_ts: str | None = None
        self._last_ts: str | None = None
        #: level2 snapshots made for (re)subscribers
        self.snapshots_sent = 0

    # --- the recording -----------------------------------------------------------------------------

    def scan(self, frame: CapturedFrame, *, times: bool) -> int | None:
        if frame.kind != "ws":
            return None
        channel, product = self._route(frame.frame)
        if channel == _CONTROL:
            return None
        if product:
            self._products.add(product)
        msg = orjson.loads(frame.frame)
        ts = msg.get("timestamp")
        if self._first_ts is None and isinstance(ts, str):
            self._first_ts = ts
        if channel == TRADES_CHANNEL:
            for event in msg.get("events") or ():
                for trade in event.get("trades") or ():
                    self._record(trade, frame.recv_ns)
        if not times or not isinstance(ts, str):
            return None
        ns = rfc3339_ns(ts)
        return None if ns is None else ns // 1_000_000

    def _record(self, trade: Any, recv_ns: int) -> None:
        try:
            trade_id = int(trade["trade_id"])
            t = rfc3339_ns(str(trade["time"]))
            product = str(trade["product_id"])
        except (KeyError, TypeError, ValueError):
            return  # not a trade in the documented layout: nothing the exchange would serve
        if t is None:
            return
        log = self._trades.log(product)
        log.add(trade_id, t // 1_000_000, recv_ns, dict(trade))

    def finish_scan(self) -> None:
        self._trades.finish()

    def prepare(self, frame: CapturedFrame) -> Prepared | None:
        if frame.kind != "ws":
            return None
        text = frame.frame
        channel, product = self._route(text)
        if channel == _CONTROL:
            # recorded acks are not replayed (the server acks its own clients), but they took a number
            return Prepared(frame.recv_ns, None, _CONTROL, None, _Passed(None))
        msg = orjson.loads(text)
        ts = msg.get("timestamp")
        passed = _Passed(ts if isinstance(ts, str) else None)
        if channel == BOOK_CHANNEL:
            for event in msg.get("events") or ():
                if isinstance(event, dict) and isinstance(event.get("product_id"), str):
                    passed.book.append((event["product_id"], str(event.get("type")), event.get("updates") or []))
        key = f"{channel}:{product}"
        data = (_shift_text(text, self.shift_ms) if self.shift_ms else text).encode()
        if passed.timestamp is not None and self.shift_ms:
            passed.timestamp = _shift_text(f'"timestamp":"{passed.timestamp}"', self.shift_ms)[13:-1]
        return Prepared(frame.recv_ns, key, key, data, passed)

    def advance(self, frame: Prepared) -> None:
        passed = frame.update
        if not isinstance(passed, _Passed):
            return
        if passed.timestamp is not None:
            self._last_ts = passed.timestamp
        for product, kind, updates in passed.book:
            book = self._books.get(product)
            if book is None:
                if kind != "snapshot":
                    continue
                book = self._books[product] = _ServerBook(product)
            book.apply(kind, updates)
        # a recorded frame a client does not get must not show as a jump in its numbers
        key = frame.key
        for client, numbering in self._clients:
            if numbering.offset is not None and (key is None or key not in client.keys):
                numbering.offset -= 1

    # --- clients -----------------------------------------------------------------------------------

    def accepts(self, path: str) -> bool:
        return path in ("", "/")

    def on_open(self, client: ReplayClient, path: str, query: Query) -> list[bytes]:
        numbering = _Numbering()
        client.outbox = _Outbox(numbering)
        self._clients = [(c, n) for c, n in self._clients if not c.dropped and c.ws.state.name == "OPEN"]
        self._clients.append((client, numbering))
        return []

    def _timestamp(self) -> str:
        ts = self._last_ts or self._first_ts
        if ts is None:
            return "1970-01-01T00:00:00Z"
        if self._last_ts is None and self.shift_ms:
            return _shift_text(f'"timestamp":"{ts}"', self.shift_ms)[13:-1]
        return ts

    def on_message(self, client: ReplayClient, text: str) -> list[bytes]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_error("Failed to parse message", text[:200])]
        if not isinstance(msg, dict) or msg.get("type") not in ("subscribe", "unsubscribe"):
            return [_error("Failed to subscribe", f"unknown message type in {text[:200]}")]
        channel = msg.get("channel")
        if not isinstance(channel, str) or channel not in FRAME_CHANNELS:
            return [_error("Failed to subscribe", f"channel {channel!r} is not supported")]
        products = [HEARTBEATS] if channel == HEARTBEATS else msg.get("product_ids")
        if not isinstance(products, list) or not products or not all(isinstance(p, str) for p in products):
            return [_error("Failed to subscribe", f"channel {channel} needs product_ids")]
        unknown = [p for p in products if channel != HEARTBEATS and p not in self._products]
        if unknown:
            return [_error("Failed to subscribe", f"{', '.join(unknown)} is not a valid product")]
        frame_channel = FRAME_CHANNELS[channel]
        snapshots: list[bytes] = []
        for product in products:
            name = f"{channel}:{product}"
            key = f"{frame_channel}:{'' if channel == HEARTBEATS else product}"
            if msg["type"] == "unsubscribe":
                client.unsubscribe(name)
                continue
            if client.subscribe(name, key) and frame_channel == BOOK_CHANNEL:
                book = self._books.get(product)
                # before the recorded snapshot the subscriber gets that one when the cursor reaches it
                if book is not None:
                    snapshots.append(book.snapshot(product, self._timestamp()))
                    self.snapshots_sent += 1
        return [self._subscriptions(client), *snapshots]

    def _subscriptions(self, client: ReplayClient) -> bytes:
        """The ``subscriptions`` frame: every channel the client is subscribed to, with its products."""
        subs: dict[str, list[str]] = {}
        for name in client.names:
            channel, _, product = name.partition(":")
            subs.setdefault(channel, []).append(product)
        return orjson.dumps(_envelope("subscriptions", self._timestamp(), [{"subscriptions": subs}]))

    # --- REST --------------------------------------------------------------------------------------

    @property
    def default_rest_limit(self) -> RateLimit:
        return COINBASE_PUBLIC_LIMIT

    def rest_weight(self, path: str, query: Query) -> int | None:
        return 1 if _TICKER_PATH.match(path) else None

    def rest_headers(self, used: int, limit: RateLimit) -> HttpHeaders:
        return {}

    def throttled(self, status: int, retry_after_s: int, used: int, limit: RateLimit) -> Throttled:
        body = b'{"error":"RATE_LIMIT_EXCEEDED","error_details":"Too many requests","message":"Too many requests"}'
        return 429, body, {}

    def http_get(self, path: str, query: Query) -> HttpReply | None:
        m = _TICKER_PATH.match(path)
        if m is None:
            return None
        product = m.group(1)
        if product not in self._products:
            return _rest_error(404, "NOT_FOUND", f"product {product} not found")
        params: dict[str, int | None] = {}
        for name in ("limit", "start", "end"):
            raw = (query.get(name) or [""])[0]
            if raw and not raw.isdigit():
                return _rest_error(400, "INVALID_ARGUMENT", f"{name} must be an integer")
            params[name] = int(raw) if raw else None
        limit = params["limit"]
        if limit is None or limit < 1:
            return _rest_error(400, "INVALID_ARGUMENT", "limit is required")
        log = self._trades.get(product)
        body: dict[str, Any] = {"trades": [], "best_bid": "", "best_ask": ""}
        if log is None:
            return 200, orjson.dumps(body)
        shift = self.shift_ms
        start, end = params["start"], params["end"]
        # [start, end) whole seconds of (shifted) trade time; the log keeps recorded ms
        lo = 0 if start is None else bisect_left(log.times, start * 1000 - shift)
        hi = len(log) if end is None else bisect_left(log.times, end * 1000 - shift)
        indexes = log.backward(hi, limit, self.visible, lo)
        trades = []
        for i in reversed(indexes):  # newest first
            record = log.records[i]
            trades.append(orjson.loads(_shift_text(orjson.dumps(record).decode(), shift)) if shift else record)
        body["trades"] = trades
        return 200, orjson.dumps(body)


def _error(message: str, reason: str) -> bytes:
    return orjson.dumps({"type": "error", "message": message, "reason": reason})


def _rest_error(status: int, error: str, message: str) -> HttpReply:
    return status, orjson.dumps({"error": error, "error_details": message, "message": message})
