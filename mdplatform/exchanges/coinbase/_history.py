"""Coinbase Advanced Trade public market trades: ``GET /api/v3/brokerage/market/products/{product_id}/ticker``.

Followed: the Advanced Trade REST reference "Get Public Market Trades" (and "Get Market Trades", its
authenticated twin at ``/api/v3/brokerage/products/{product_id}/ticker``): query ``limit`` (required), ``start`` and
``end`` (UNIX seconds, as strings); the reply is ``{"trades":[{trade_id, product_id, price, size, time, side, ..}],
"best_bid":..,"best_ask":..}`` with the latest trades of the interval first. Public endpoints take 10 requests per
second per IP ("REST API Rate Limits").

The reference names no largest ``limit`` and does not say whether ``start``/``end`` are inclusive, nor how far
back the history reaches. So completeness is proven from the trade ids (contiguous per product), never from a
page's length: the trades returned are chained from the newest down; once the chain reaches a trade older than
the span's start (or the trade ``after_id`` the caller last received) without a missing id, every trade of the span
was returned. A chain that stops short (the history ends, or more trades share one second than a page holds, since
``end`` pages by whole seconds) proves only from its oldest trade on, and ``proven`` says exactly that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson

from ...contract import HistoryPage
from ...history import RateLimit, RestClient, RestError
from .._rest_history import RestTradeHistory, json_reply
from ._times import rfc3339_ns

__all__ = [
    "COINBASE_HISTORY_PATH",
    "COINBASE_PUBLIC_LIMIT",
    "COINBASE_REST_BASE",
    "CoinbaseTradeHistory",
    "history_path",
]

COINBASE_REST_BASE = "https://api.coinbase.com"
#: the path with the product id in it (``history_path``)
COINBASE_HISTORY_PATH = "/api/v3/brokerage/market/products/{product_id}/ticker"
#: public endpoints: 10 requests per second per IP
COINBASE_PUBLIC_LIMIT = RateLimit(10, 1.0)
_SECOND_NS = 1_000_000_000
#: trades asked per page: the reference names no maximum, so a modest one (completeness does not depend on it)
_LIMIT = 100
#: pages a fetch makes at most (a fetch that cannot move back stops earlier)
_MAX_PAGES = 10_000


def history_path(product_id: str) -> str:
    return COINBASE_HISTORY_PATH.format(product_id=product_id)


class CoinbaseTradeHistory(RestTradeHistory):
    """``TradeHistory`` of channel market_trades."""

    base_url = COINBASE_REST_BASE
    rate_limit = COINBASE_PUBLIC_LIMIT

    channel = "market_trades"

    def __init__(self, *, limit: int = _LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"coinbase market trades: limit must be >= 1, got {limit}")
        self.limit = limit

    def __repr__(self) -> str:
        return "CoinbaseTradeHistory()"

    def encode(self, records: Sequence[Mapping[str, Any]]) -> str:
        """``{"trades":[...]}`` newest first, as the endpoint answers (normalized like a market_trades frame)."""
        try:
            trades = sorted(records, key=lambda r: int(r["trade_id"]), reverse=True)
        except (KeyError, TypeError, ValueError):
            trades = list(reversed(records))
        return orjson.dumps({"trades": trades}).decode()

    async def _pages(
        self, client: RestClient, symbol: str, start_ns: int, end_ns: int, base_url: str | None, after_id: int | None
    ) -> AsyncIterator[HistoryPage]:
        """Pages of the trades of ``symbol`` with time in [start_ns, end_ns), oldest first within each page, walking
        back from ``end_ns`` by whole seconds (``end`` = the oldest trade's second + 1: trades of that second come
        again and are kept once). ``proven``: from the oldest trade of the unbroken id chain that ends at the newest
        trade returned (its time + 1 ns: a trade of the same nanosecond with a lower id may be missing), or the whole
        span once the chain reaches a trade before ``start_ns`` or the id ``after_id``."""
        url = (base_url or COINBASE_REST_BASE).rstrip("/") + history_path(symbol)
        # a second either side: whatever the endpoint's boundaries, the span's trades are inside the interval asked
        start_s = start_ns // _SECOND_NS - 1
        end_s = -(-end_ns // _SECOND_NS) + 1
        seen: dict[int, int] = {}  # trade id -> time ns
        newest: int | None = None
        for _ in range(_MAX_PAGES):
            params: dict[str, str | int] = {"limit": self.limit, "start": str(start_s), "end": str(end_s)}
            reply = await client.get(url, params, weight=1, limit=COINBASE_PUBLIC_LIMIT)
            parsed = self._trades(reply.body, reply.status, symbol)
            fresh = [(t, i, item) for t, i, item in parsed if i not in seen]
            for t, i, _item in fresh:
                seen[i] = t
            if newest is None and seen:
                newest = max(seen)
            proven, done = self._proven(seen, newest, start_ns, end_ns, after_id)
            keep = sorted((i, t, item) for t, i, item in fresh if start_ns <= t < end_ns)
            yield HistoryPage(
                self.channel,
                symbol,
                reply.request,
                reply.recv_ns,
                tuple(item for _, _, item in keep),
                tuple(t for _, t, _ in keep),
                proven,
            )
            if done or not fresh:
                return
            oldest_s = min(t for t, _, _ in parsed) // _SECOND_NS + 1
            if oldest_s >= end_s:
                return  # a page of one second only: ``end`` cannot move back past it
            end_s = oldest_s

    @staticmethod
    def _proven(
        seen: Mapping[int, int], newest: int | None, start_ns: int, end_ns: int, after_id: int | None
    ) -> tuple[tuple[int, int] | None, bool]:
        """(proven span, whether the whole span is proven) from the id chain ending at ``newest``."""
        if newest is None:
            return None, False
        i = newest
        while i - 1 in seen:
            i -= 1
        oldest_t = seen[i]
        if oldest_t < start_ns or (after_id is not None and i <= after_id + 1):
            return (start_ns, end_ns), True
        lo = max(start_ns, oldest_t + 1)
        return ((lo, end_ns) if lo < end_ns else None), False

    @staticmethod
    def _trades(body: bytes, status: int, symbol: str) -> list[tuple[int, int, Mapping[str, Any]]]:
        path = history_path(symbol)
        obj = json_reply(body, status, path)
        trades = obj.get("trades") if isinstance(obj, dict) else None
        if not isinstance(trades, list):
            raise RestError(status, f"reply has no list of trades: {body[:200]!r}", path)
        out: list[tuple[int, int, Mapping[str, Any]]] = []
        for item in trades:
            if not isinstance(item, dict):
                raise RestError(status, f"trade is not an object: {item!r:.200}", path)
            try:
                trade_id = int(item["trade_id"])
                t = rfc3339_ns(str(item["time"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise RestError(status, f"trade without an integer trade_id or a time: {item!r:.200}", path) from exc
            if t is None:
                raise RestError(status, f"trade time is not RFC 3339: {item!r:.200}", path)
            out.append((t, trade_id, item))
        return out
