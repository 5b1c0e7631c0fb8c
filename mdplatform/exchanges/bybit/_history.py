"""Bybit REST trade history: ``GET /v5/market/recent-trade`` (v5 docs, "Get Public Recent Trading History",
https://bybit-exchange.github.io/docs/v5/market/recent-trade; limits: "rate-limit", HTTP IP limit).

``category`` (spot, linear, inverse) and ``symbol``; ``limit`` spot [1, 60] (default 60), others [1, 1000] (default
500). There is no pagination and no time or id parameter: the reply is the most recent ``limit`` trades, newest
first, ``{"retCode":0,"retMsg":"OK","result":{"category":..,"list":[{"execId","symbol","price","size","side","time",
"isBlockTrade"},...]},"retExtInfo":{},"time":<server ms>}``. So a gap can only be healed while it lies within the
last 60 (spot) or 1,000 trades: a fetch proves only the span its one reply covers, and says when the history does
not reach back to the gap's start (``HistoryHorizon``) instead of pretending to heal it. Older trades are only in
Bybit's downloadable archives (public.bybit.com), which this client does not read.

HTTP IP limit: 600 requests in any 5-second window per IP; beyond it Bybit answers HTTP 403 "access too frequent"
and the IP must wait at least 10 minutes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson

from ...contract import HistoryPage
from ...history import RateLimit, RestClient, RestError
from .._rest_history import HistoryHorizon, RestTradeHistory, coded_reply, history_page, ms_text, record_list

__all__ = [
    "BYBIT_HISTORY_PATH",
    "BYBIT_REST_BASE",
    "HISTORY_DEPTH",
    "BybitTradeHistory",
    "HistoryHorizon",
    "bybit_rest_limit",
]

BYBIT_REST_BASE = "https://api.bybit.com"
BYBIT_HISTORY_PATH = "/v5/market/recent-trade"
#: the most trades one reply holds, per category: all the history there is
HISTORY_DEPTH = {"spot": 60, "linear": 1000, "inverse": 1000}
_LIMIT = RateLimit(600, 5.0)


def bybit_rest_limit() -> RateLimit:
    """600 requests per 5 s per IP (every api.bybit.com endpoint)."""
    return _LIMIT


class BybitTradeHistory(RestTradeHistory):
    """``TradeHistory`` of Bybit channel publicTrade for one category (market). ``limit``: trades asked for (at
    most and by default the category's whole history, 60 or 1,000)."""

    base_url = BYBIT_REST_BASE
    rate_limit = _LIMIT

    channel = "publicTrade"

    def __init__(self, category: str, *, limit: int | None = None) -> None:
        if category not in HISTORY_DEPTH:
            raise ValueError(f"{BYBIT_HISTORY_PATH}: unknown category {category!r}")
        depth = HISTORY_DEPTH[category]
        if limit is not None and not 1 <= limit <= depth:
            raise ValueError(f"{BYBIT_HISTORY_PATH}: limit must be within 1..{depth} for {category}, got {limit}")
        self.category = category
        self.limit = depth if limit is None else limit

    def __repr__(self) -> str:
        return f"BybitTradeHistory({self.category!r})"

    def encode(self, records: Sequence[Mapping[str, Any]]) -> str:
        """The reply's own layout holding ``records``, newest first as Bybit sends them."""
        try:
            data = sorted(records, key=lambda r: int(r["time"]), reverse=True)
        except (KeyError, TypeError, ValueError):
            data = list(reversed(records))  # page order (oldest first) reversed
        return orjson.dumps(
            {"retCode": 0, "retMsg": "OK", "result": {"category": self.category, "list": data}}
        ).decode()

    async def _pages(
        self, client: RestClient, symbol: str, start_ns: int, end_ns: int, base_url: str | None, after_id: int | None
    ) -> AsyncIterator[HistoryPage]:
        """One page: the trades of the one reply with time in [start_ns, end_ns), oldest first.

        ``proven``: the part of [start_ns, end_ns) the reply covers. It holds every trade from its oldest record up
        to the server's ``time``; trades sharing the oldest record's millisecond may have been cut off, so that
        millisecond is not claimed, unless the reply held fewer than ``limit`` trades (the whole history of the
        symbol). When the reply does not reach back to ``start_ns`` the page is yielded, then ``HistoryHorizon``
        says how far back the history goes. ``after_id`` is ignored (no paging exists)."""
        url = (base_url or BYBIT_REST_BASE).rstrip("/") + BYBIT_HISTORY_PATH
        params: dict[str, str | int] = {"category": self.category, "symbol": symbol, "limit": self.limit}
        reply = await client.get(url, params, weight=1, limit=_LIMIT)
        items, server_ms = self._list(reply.body, reply.status)
        parsed: list[tuple[int, Mapping[str, Any]]] = []
        for item in items:
            try:
                parsed.append((int(item["time"]) * 1_000_000, item))
            except (KeyError, TypeError, ValueError) as exc:
                problem = f"trade without an integer time: {item!r:.200}"
                raise RestError(reply.status, problem, BYBIT_HISTORY_PATH) from exc
        parsed.sort(key=lambda p: p[0])  # Bybit answers newest first
        # the reply reaches up to the server's time (or, without one, its newest trade's millisecond, excluded)
        reach = server_ms * 1_000_000 if server_ms is not None else (parsed[-1][0] if parsed else None)
        whole_history = len(parsed) < self.limit
        proven: tuple[int, int] | None = None
        if parsed and reach is not None:
            oldest = parsed[0][0]
            lo = start_ns if whole_history or oldest < start_ns else oldest + 1_000_000
            hi = min(end_ns, reach)
            proven = (max(lo, start_ns), hi) if max(lo, start_ns) < hi else None
        keep = [(t, item) for t, item in parsed if start_ns <= t < end_ns]
        yield history_page(self.channel, symbol, reply, keep, proven)
        if proven is None or proven[0] > start_ns:
            oldest_text = ms_text(parsed[0][0]) if parsed else "none returned"
            raise HistoryHorizon(
                f"no history beyond the last {self.limit} trades: Bybit's {BYBIT_HISTORY_PATH} ({self.category}) "
                f"reaches back to {oldest_text}, the gap starts {ms_text(start_ns)}"
            )

    @staticmethod
    def _list(body: bytes, status: int) -> tuple[list[Mapping[str, Any]], int | None]:
        obj = coded_reply(body, status, BYBIT_HISTORY_PATH, code_key="retCode", ok=0, msg_key="retMsg")
        result = obj.get("result")
        problem = f"reply has no list of trades in result: {body[:200]!r}"
        data = record_list(
            result.get("list") if isinstance(result, dict) else None, status, BYBIT_HISTORY_PATH, problem
        )
        server = obj.get("time")
        return data, server if isinstance(server, int) else None
