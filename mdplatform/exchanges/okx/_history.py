"""OKX REST trade history: ``GET /api/v5/market/history-trades`` (OKX v5 docs, "Get trades history").

Rate limit 20 requests per 2 seconds per IP; at most 100 records per request; the last 3 months. Pagination:
``type=2`` pages by timestamp (``after``: records earlier than that ts), ``type=1`` (the default) by trade id
(``after``: records earlier than that tradeId). Replies are ``{"code":"0","msg":"","data":[...]}`` with the newest
trade first. OKX does not promise contiguous trade ids, so completeness is proven by walking back in time: once a
record older than the span's start came back, every trade of the span was returned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson

from ...contract import HistoryPage
from ...history import RateLimit, RestClient, RestError
from .._rest_history import RestTradeHistory, ceil_ms, coded_reply, history_page, record_list

__all__ = ["OKX_HISTORY_LIMIT", "OKX_HISTORY_PATH", "OKX_REST_BASE", "OkxTradeHistory"]

OKX_REST_BASE = "https://www.okx.com"
OKX_HISTORY_PATH = "/api/v5/market/history-trades"
#: 20 requests per 2 seconds (rate limit rule: IP)
OKX_HISTORY_LIMIT = RateLimit(20, 2.0)
_MAX_LIMIT = 100


class OkxTradeHistory(RestTradeHistory):
    """``TradeHistory`` of OKX channel "trades". ``limit``: records per page (at most and by default 100)."""

    base_url = OKX_REST_BASE
    rate_limit = OKX_HISTORY_LIMIT

    channel = "trades"

    def __init__(self, *, limit: int = _MAX_LIMIT) -> None:
        if not 1 <= limit <= _MAX_LIMIT:
            raise ValueError(f"{OKX_HISTORY_PATH}: limit must be within 1..{_MAX_LIMIT}, got {limit}")
        self.limit = limit

    def __repr__(self) -> str:
        return "OkxTradeHistory()"

    def encode(self, records: Sequence[Mapping[str, Any]]) -> str:
        """``{"code":"0","msg":"","data":[...]}`` with the records newest first, as OKX sends them."""
        try:
            data = sorted(records, key=lambda r: (int(r["ts"]), int(r["tradeId"])), reverse=True)
        except (KeyError, TypeError, ValueError):
            data = list(reversed(records))  # page order (oldest first) reversed
        return orjson.dumps({"code": "0", "msg": "", "data": data}).decode()

    async def _pages(
        self, client: RestClient, symbol: str, start_ns: int, end_ns: int, base_url: str | None, after_id: int | None
    ) -> AsyncIterator[HistoryPage]:
        """Pages of the trades with exchange time in [start_ns, end_ns), each page oldest first, walking back
        from ``end_ns``: first by timestamp (``type=2&after=<ceil(end) ms>``), then by the oldest trade id seen
        (``type=1``). Stops at a record older than ``start_ns`` (proven [start, end)) or an empty page (the
        history ends: proven [oldest ts seen, end)). ``after_id`` is ignored (OKX ids are not contiguous)."""
        url = (base_url or OKX_REST_BASE).rstrip("/") + OKX_HISTORY_PATH
        params: dict[str, str | int] = {
            "instId": symbol,
            "type": "2",
            "after": str(ceil_ms(end_ns)),
            "limit": self.limit,
        }
        oldest_id: int | None = None
        oldest_ns: int | None = None
        while True:
            reply = await client.get(url, params, weight=1, limit=OKX_HISTORY_LIMIT)
            items = self._data(reply.body, reply.status)
            proven: tuple[int, int] | None
            if not items:
                proven = (oldest_ns, end_ns) if oldest_ns is not None and oldest_ns < end_ns else None
                yield HistoryPage(self.channel, symbol, reply.request, reply.recv_ns, (), (), proven)
                return
            parsed: list[tuple[int, int, Mapping[str, Any]]] = []
            for item in items:
                try:
                    parsed.append((int(item["ts"]) * 1_000_000, int(item["tradeId"]), item))
                except (KeyError, TypeError, ValueError) as exc:
                    raise RestError(
                        reply.status, f"trade without integer ts/tradeId: {item!r:.200}", OKX_HISTORY_PATH
                    ) from exc
            parsed.reverse()  # OKX answers newest first
            done = any(t < start_ns for t, _, _ in parsed)
            keep = [(t, item) for t, _, item in parsed if start_ns <= t < end_ns]
            page_oldest_id = min(i for _, i, _ in parsed)
            page_oldest_ns = min(t for t, _, _ in parsed)
            oldest_id = page_oldest_id if oldest_id is None else min(oldest_id, page_oldest_id)
            oldest_ns = page_oldest_ns if oldest_ns is None else min(oldest_ns, page_oldest_ns)
            if done:
                proven = (start_ns, end_ns)
            else:
                # older trades may still share the oldest record's millisecond
                proven = (oldest_ns + 1, end_ns) if oldest_ns + 1 < end_ns else None
            yield history_page(self.channel, symbol, reply, keep, proven)
            if done:
                return
            params = {"instId": symbol, "type": "1", "after": str(oldest_id), "limit": self.limit}

    @staticmethod
    def _data(body: bytes, status: int) -> list[Mapping[str, Any]]:
        obj = coded_reply(body, status, OKX_HISTORY_PATH, code_key="code", ok="0", msg_key="msg")
        problem = f"reply has no list of trades in data: {body[:200]!r}"
        return record_list(obj.get("data"), status, OKX_HISTORY_PATH, problem)
