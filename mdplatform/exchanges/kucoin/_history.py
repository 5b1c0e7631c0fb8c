"""KuCoin REST trade history: ``GET /api/v1/market/histories?symbol=..`` (KuCoin docs "Get Trade Histories",
https://www.kucoin.com/docs-new, checked 2026-12).

The reply holds the symbol's last 100 trades and nothing older: no paging, no time or id parameter. Records are
``{"sequence","price","size","side","time"}`` (``time`` ns as a JSON number, ``side`` the taker's), oldest first,
inside ``{"code":"200000","data":[...]}``. So a gap is healed only while it lies within the last 100 trades: a
fetch proves [start, end) complete only when the reply reaches back before ``start`` (one of its records is older);
otherwise it proves just the span its records cover, and says so (``proven``), and the rest of the gap stays a gap.
Public weight 3 in the public pool of 2000 per 30 s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson

from ...contract import HistoryPage
from ...history import RateLimit, RestClient, RestError
from .._rest_history import RestTradeHistory, coded_reply, history_page, record_list
from ._wire import HISTORY_PATH

__all__ = ["HISTORY_WEIGHT", "KUCOIN_PUBLIC_LIMIT", "KUCOIN_REST_BASE", "KucoinTradeHistory"]

KUCOIN_REST_BASE = "https://api.kucoin.com"
#: the public resource pool: 2000 weight per 30 s (KuCoin "Rate Limit")
KUCOIN_PUBLIC_LIMIT = RateLimit(2000, 30.0)
HISTORY_WEIGHT = 3


class KucoinTradeHistory(RestTradeHistory):
    """``TradeHistory`` of KuCoin channel "match" (one request: the last 100 trades)."""

    base_url = KUCOIN_REST_BASE
    rate_limit = KUCOIN_PUBLIC_LIMIT

    channel = "match"

    def __repr__(self) -> str:
        return "KucoinTradeHistory()"

    def encode(self, records: Sequence[Mapping[str, Any]]) -> str:
        """``{"code":"200000","data":[...]}`` with the records oldest first, as KuCoin answers."""
        try:
            data = sorted(records, key=lambda r: (int(r["time"]), int(r["sequence"])))
        except (KeyError, TypeError, ValueError):
            data = list(records)
        return orjson.dumps({"code": "200000", "data": data}).decode()

    async def _pages(
        self, client: RestClient, symbol: str, start_ns: int, end_ns: int, base_url: str | None, after_id: int | None
    ) -> AsyncIterator[HistoryPage]:
        """One page: the trades of [start_ns, end_ns) among the last 100. ``proven`` is [start, end) when a record
        older than ``start_ns`` came back; else [oldest record's time + 1 ns, end) (trades sharing the oldest
        record's time may be missing), None when nothing came back. ``after_id`` is ignored (no paging)."""
        url = (base_url or KUCOIN_REST_BASE).rstrip("/") + HISTORY_PATH
        reply = await client.get(url, {"symbol": symbol}, weight=HISTORY_WEIGHT, limit=KUCOIN_PUBLIC_LIMIT)
        items = self._data(reply.body, reply.status)
        parsed: list[tuple[int, int, Mapping[str, Any]]] = []
        for item in items:
            try:
                parsed.append((int(item["time"]), int(item["sequence"]), item))
            except (KeyError, TypeError, ValueError) as exc:
                raise RestError(
                    reply.status, f"trade without integer time/sequence: {item!r:.200}", HISTORY_PATH
                ) from exc
        parsed.sort(key=lambda p: (p[0], p[1]))
        proven: tuple[int, int] | None = None
        if parsed:
            oldest = parsed[0][0]
            if oldest < start_ns:
                proven = (start_ns, end_ns)
            elif oldest + 1 < end_ns:
                proven = (oldest + 1, end_ns)
        keep = [(t, item) for t, _, item in parsed if start_ns <= t < end_ns]
        yield history_page(self.channel, symbol, reply, keep, proven)

    @staticmethod
    def _data(body: bytes, status: int) -> list[Mapping[str, Any]]:
        obj = coded_reply(body, status, HISTORY_PATH, code_key="code", ok="200000", msg_key="msg")
        problem = f"reply has no list of trades in data: {body[:200]!r}"
        return record_list(obj.get("data"), status, HISTORY_PATH, problem)
