"""Bitfinex REST trade history: ``GET /v2/trades/{symbol}/hist`` (docs.bitfinex.com, REST Public "Trades",
https://docs.bitfinex.com/reference/rest-public-trades; checked 2026-12).

Parameters: ``limit`` (at most 10,000 records), ``start``/``end`` (ms, both inclusive), ``sort`` (1: oldest first,
-1: newest first, the default). The reply is a JSON array of ``[ID, MTS, AMOUNT, PRICE]`` (numbers, read as their
text); an error is ``["error", CODE, "message"]``. Rate limit: 15 requests per minute per IP (REST public limits; a
ban of 60 s follows excess, answered ``["error", 11010, "ratelimit: error"]``).

Completeness: trade ids are exchange-wide, not contiguous per pair, so nothing can be proven from ids. It is
proven by time instead: with ``sort=1`` the endpoint returns the trades of [start, end] in time order, ``limit`` at a
time. A page shorter than ``limit`` returned every trade up to ``end``: the span is proven whole. A full page proves
everything before its last millisecond (trades of that millisecond may continue on the next page, which starts at
that millisecond again; ids already seen are dropped). A full page all in one millisecond cannot be paged past: the
fetch stops there, and what it proved is what the pages before it proved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from ...contract import HistoryPage
from ...history import RateLimit, RestClient, RestError
from .._rest_history import RestTradeHistory, ceil_ms, history_page, json_reply
from ._wire import exact

__all__ = ["BITFINEX_HISTORY_LIMIT", "BITFINEX_REST_BASE", "BitfinexTradeHistory", "history_path"]

BITFINEX_REST_BASE = "https://api-pub.bitfinex.com"
#: 15 requests per minute (per IP)
BITFINEX_HISTORY_LIMIT = RateLimit(15, 60.0)
_MAX_LIMIT = 10_000
_FIELDS = ("id", "mts", "amount", "price")


def history_path(symbol: str) -> str:
    return f"/v2/trades/{symbol}/hist"


class BitfinexTradeHistory(RestTradeHistory):
    """``TradeHistory`` of channel "trades". ``limit``: records per page (at most 10,000; 1,000 by default)."""

    base_url = BITFINEX_REST_BASE
    rate_limit = BITFINEX_HISTORY_LIMIT

    channel = "trades"

    def __init__(self, *, limit: int = 1_000) -> None:
        if not 1 <= limit <= _MAX_LIMIT:
            raise ValueError(f"bitfinex trades hist: limit must be within 1..{_MAX_LIMIT}, got {limit}")
        self.limit = limit

    def __repr__(self) -> str:
        return "BitfinexTradeHistory()"

    def encode(self, records: Sequence[Mapping[str, Any]]) -> str:
        """The records as a trades snapshot frame ``[0,[[ID,MTS,AMOUNT,PRICE],...]]`` (numbers as received), which
        normalizes like the live channel's."""
        items = ",".join("[" + ",".join(str(r[k]) for k in _FIELDS) + "]" for r in records)
        return f"[0,[{items}]]"

    async def _pages(
        self, client: RestClient, symbol: str, start_ns: int, end_ns: int, base_url: str | None, after_id: int | None
    ) -> AsyncIterator[HistoryPage]:
        """Pages of the trades with exchange time in [start_ns, end_ns), oldest first, walking forward in time (module
        doc). ``after_id`` is ignored: ids are not contiguous per pair."""
        url = (base_url or BITFINEX_REST_BASE).rstrip("/") + history_path(symbol)
        first_ms, last_ms = ceil_ms(start_ns), ceil_ms(end_ns) - 1
        since = first_ms
        seen: set[str] = set()
        proven_to: int | None = None
        while True:
            params: dict[str, str | int] = {"start": since, "end": last_ms, "limit": self.limit, "sort": 1}
            reply = await client.get(url, params, weight=1, limit=BITFINEX_HISTORY_LIMIT)
            items = self._records(reply.body, reply.status, history_path(symbol))
            full = len(items) >= self.limit
            fresh = [r for r in items if r["id"] not in seen]
            seen.update(r["id"] for r in fresh)
            times = tuple(int(r["mts"]) * 1_000_000 for r in fresh)
            keep = [(t, r) for t, r in zip(times, fresh, strict=True) if start_ns <= t < end_ns]
            page_last = int(items[-1]["mts"]) if items else None
            stuck = full and page_last == since
            if not full:
                proven_to = end_ns
            elif not stuck and page_last is not None:
                proven_to = page_last * 1_000_000
            proven = (start_ns, proven_to) if proven_to is not None and proven_to > start_ns else None
            yield history_page(self.channel, symbol, reply, keep, proven)
            if not full or stuck or page_last is None:
                return
            since = page_last

    @staticmethod
    def _records(body: bytes, status: int, path: str) -> list[dict[str, str]]:
        data = json_reply(body, status, path, exact)
        if isinstance(data, list) and data[:1] == ["error"]:
            code = str(data[1]) if len(data) > 1 else ""
            raise RestError(status, f"{code} {data[2] if len(data) > 2 else ''}".strip(), path, code=code)
        if not isinstance(data, list):
            raise RestError(status, f"reply is not a list of trades: {body[:200]!r}", path)
        out: list[dict[str, str]] = []
        for item in data:
            if not isinstance(item, list) or len(item) < 4 or not all(isinstance(v, str) for v in item[:4]):
                raise RestError(status, f"trade is not [ID, MTS, AMOUNT, PRICE]: {item!r:.200}", path)
            out.append(dict(zip(_FIELDS, item[:4], strict=True)))
        out.sort(key=lambda r: (int(r["mts"]), int(r["id"])))
        return out
