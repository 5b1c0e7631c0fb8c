"""Kraken REST trade history: ``GET /0/public/Trades?pair=..&since=..&count=..`` (docs.kraken.com
api-reference/market-data/get-recent-trades, "Get Recent Trades").

The reply is ``{"error":[],"result":{"<pair>":[[price, volume, time, "b"|"s", "m"|"l", misc, trade_id], ...],
"last":"<ns>"}}``, oldest first, at most ``count`` (1000) trades; ``since`` is a time cursor (the ``last`` of a
reply, in ns, continues after it). price and volume are strings; ``time`` is a JSON number of seconds with
microseconds, read from the text (never a float) and rounded to the microsecond the WebSocket's ``timestamp``
carries. ``trade_id`` is the same per-pair sequence number as the v2 ``trade`` channel's, so healed trades chain
with live ones and ids prove completeness. Public endpoints allow about one call per second per IP.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

import orjson

from ...contract import HistoryPage
from ...history import RateLimit, RestClient, RestError
from .._rest_history import RestTradeHistory, history_page, json_reply
from ._wire import rfc3339

__all__ = ["KRAKEN_REST", "KRAKEN_REST_LIMIT", "KRAKEN_TRADES_PATH", "KrakenTradeHistory", "rest_pair"]

KRAKEN_REST = "https://api.kraken.com"
KRAKEN_TRADES_PATH = "/0/public/Trades"
#: public REST calls: about 1 per second per IP
KRAKEN_REST_LIMIT = RateLimit(1, 1.0)
_MAX_COUNT = 1000
#: REST asset names that differ from v2's
_REST_ASSETS = {"BTC": "XBT", "DOGE": "XDG"}
_US = Decimal("0.000001")


def rest_pair(symbol: str) -> str:
    """v2 ``BTC/USD`` -> the REST pair name ``XBTUSD`` (REST keeps Kraken's XBT and XDG)."""
    base, _, quote = symbol.partition("/")
    return _REST_ASSETS.get(base, base) + _REST_ASSETS.get(quote, quote)


def seconds_text_ns(text: str) -> int:
    """``"1688669597.8277369"`` (seconds as the reply wrote them) -> ns, rounded to the microsecond."""
    try:
        us = Decimal(text).quantize(_US)
    except InvalidOperation as exc:
        raise ValueError(f"not a time in seconds: {text!r}") from exc
    return int(us * 1_000_000) * 1_000


class KrakenTradeHistory(RestTradeHistory):
    """``TradeHistory`` of Kraken channel "trade". ``count``: trades per page (at most and by default 1000)."""

    base_url = KRAKEN_REST
    rate_limit = KRAKEN_REST_LIMIT

    channel = "trade"

    def __init__(self, *, count: int = _MAX_COUNT) -> None:
        if not 1 <= count <= _MAX_COUNT:
            raise ValueError(f"{KRAKEN_TRADES_PATH}: count must be within 1..{_MAX_COUNT}, got {count}")
        self.count = count

    def __repr__(self) -> str:
        return "KrakenTradeHistory()"

    def encode(self, records: Sequence[Mapping[str, Any]]) -> str:
        """A v2 ``trade`` message holding the records (price and qty stay the reply's strings), which
        ``KrakenExchange.normalize_trades_with_rejects`` reads like a live one."""
        return orjson.dumps({"channel": "trade", "type": "update", "data": list(records)}).decode()

    async def _pages(
        self, client: RestClient, symbol: str, start_ns: int, end_ns: int, base_url: str | None, after_id: int | None
    ) -> AsyncIterator[HistoryPage]:
        """Pages of the trades of ``symbol`` (v2 name) with time in [start_ns, end_ns), oldest first, walking
        forward from ``since=start_ns - 1`` by each reply's ``last``. A record at or after ``end_ns`` proves the
        span whole; otherwise each page proves up to its newest trade's time (trades sharing that time may follow).
        ``after_id`` is not needed: Kraken pages by time, and ids chain the result anyway."""
        url = (base_url or KRAKEN_REST).rstrip("/") + KRAKEN_TRADES_PATH
        cursor = start_ns - 1
        newest: int | None = None
        while True:
            params: dict[str, str | int] = {"pair": rest_pair(symbol), "since": str(cursor), "count": self.count}
            reply = await client.get(url, params, weight=1, limit=KRAKEN_REST_LIMIT)
            rows, last = self._result(reply.body, reply.status)
            parsed = [self._record(symbol, row, reply.status) for row in rows]
            done = any(t >= end_ns for t, _ in parsed)
            keep = [(t, rec) for t, rec in parsed if start_ns <= t < end_ns]
            if parsed:
                newest = max(t for t, _ in parsed) if newest is None else max(newest, *(t for t, _ in parsed))
            proven: tuple[int, int] | None
            if done:
                proven = (start_ns, end_ns)
            else:
                proven = (start_ns, newest) if newest is not None and newest > start_ns else None
            yield history_page(self.channel, symbol, reply, keep, proven)
            if done or not parsed or last is None or last <= cursor:
                return
            cursor = last

    @staticmethod
    def _result(body: bytes, status: int) -> tuple[list[Any], int | None]:
        # floats (the times) stay their text: never a binary float
        obj = json_reply(body, status, KRAKEN_TRADES_PATH, partial(json.loads, parse_float=str))
        if not isinstance(obj, dict):
            raise RestError(status, f"reply is not an object: {body[:200]!r}", KRAKEN_TRADES_PATH)
        errors = obj.get("error")
        if errors:
            raise RestError(status, "; ".join(map(str, errors)), KRAKEN_TRADES_PATH)
        result = obj.get("result")
        if not isinstance(result, dict):
            raise RestError(status, f"reply has no result: {body[:200]!r}", KRAKEN_TRADES_PATH)
        lists = [v for k, v in result.items() if k != "last"]
        if len(lists) != 1 or not isinstance(lists[0], list):
            raise RestError(status, f"reply has no list of trades: {body[:200]!r}", KRAKEN_TRADES_PATH)
        last = result.get("last")
        return lists[0], int(last) if isinstance(last, str | int) and str(last).isdigit() else None

    @staticmethod
    def _record(symbol: str, row: Any, status: int) -> tuple[int, dict[str, Any]]:
        """``[price, volume, time, side, type, misc, trade_id]`` -> (ns, the v2 trade record)."""
        try:
            price, volume, seconds, side, kind, _misc, trade_id = row
            ns = seconds_text_ns(str(seconds))
            if not isinstance(price, str) or not isinstance(volume, str) or not isinstance(trade_id, int):
                raise ValueError("price and volume must be strings, trade_id an integer")
            record = {
                "symbol": symbol,
                "side": {"b": "buy", "s": "sell"}[side],
                "price": price,
                "qty": volume,
                "ord_type": {"m": "market", "l": "limit"}.get(kind, str(kind)),
                "trade_id": trade_id,
                "timestamp": rfc3339(ns),
            }
        except (TypeError, ValueError, KeyError) as exc:
            raise RestError(
                status, f"trade not in the documented layout ({exc}): {row!r:.200}", KRAKEN_TRADES_PATH
            ) from exc
        return ns, record
