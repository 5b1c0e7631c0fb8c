"""MEXC spot REST trade history: ``GET /api/v3/trades`` ("Recent Trades List", MEXC spot v3 docs, Market Data
Endpoints, 2026; limits: "General Info / Limits").

``symbol`` and ``limit`` (default 500, at most 1000); weight(IP) 5. No time or id parameter and no paging: the reply is
the most recent ``limit`` trades, newest first, ``[{"id": null, "price", "qty", "quoteQty", "time", "isBuyerMaker",
"isBestMatch", "tradeType": "BID"|"ASK"}, ...]``: ``id`` is always null, ``time`` a JSON number of ms, ``isBuyerMaker``
true when the taker sold.

What this history cannot do, said rather than pretended: it never proves a span complete (``HistoryPage.proven`` is
always None). Its records carry no trade id, so they cannot be chained with the live deals nor with one another; the
reply names no server time, so how far up to "now" it reaches is unknown; and nothing documents that the list holds
every trade (RPI and other special matches are not mentioned). A fetch lands the trades it finds within the gap,
claims nothing, and says (``HistoryHorizon``) when the last 1000 trades do not even reach back to the gap's start.

``GET /api/v3/aggTrades`` (startTime/endTime, both inclusive, at most 1000) was considered and left: it aggregates
the fills of one taker order at one price into one record (ids null too), so its records are not the live deals' and
would count trades differently from the stream they are to heal.

Limits ("General Info / Limits"): every endpoint limited by IP has its own 500 per 10 seconds; beyond it HTTP 429 with
``Retry-After``, repeated violations an IP ban (418). The platform keeps one limiter per host, so the budget is spent
across endpoints (the safe side).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson

from ...contract import HistoryPage
from ...history import RateLimit, RestClient, RestError
from .._rest_history import HistoryHorizon, RestTradeHistory, history_page, json_reply, ms_text, record_list

__all__ = [
    "HISTORY_DEPTH",
    "MEXC_REST_BASE",
    "MEXC_TRADES_PATH",
    "HistoryHorizon",
    "MexcTradeHistory",
    "mexc_rest_limit",
]

MEXC_REST_BASE = "https://api.mexc.com"
MEXC_TRADES_PATH = "/api/v3/trades"
#: the most trades one reply holds: all the history there is
HISTORY_DEPTH = 1000
#: the documented weight of one ``/api/v3/trades`` request
TRADES_WEIGHT = 5
_LIMIT = RateLimit(500, 10.0)


def mexc_rest_limit() -> RateLimit:
    """500 weight per 10 s per IP (per endpoint at MEXC; spent across endpoints here)."""
    return _LIMIT


class MexcTradeHistory(RestTradeHistory):
    """``TradeHistory`` of one MEXC deals channel (its records are normalized like that channel's pushes)."""

    base_url = MEXC_REST_BASE
    rate_limit = _LIMIT

    def __init__(self, channel: str, *, limit: int = HISTORY_DEPTH) -> None:
        if not 1 <= limit <= HISTORY_DEPTH:
            raise ValueError(f"{MEXC_TRADES_PATH}: limit must be within 1..{HISTORY_DEPTH}, got {limit}")
        self.channel = channel
        self.limit = limit

    def __repr__(self) -> str:
        return f"MexcTradeHistory({self.channel!r})"

    def encode(self, records: Sequence[Mapping[str, Any]]) -> str:
        """The reply's own layout (a JSON list, newest first as MEXC sends it) holding ``records``."""
        try:
            data = sorted(records, key=lambda r: int(r["time"]), reverse=True)
        except (KeyError, TypeError, ValueError):
            data = list(reversed(records))
        return orjson.dumps(data).decode()

    async def _pages(
        self, client: RestClient, symbol: str, start_ns: int, end_ns: int, base_url: str | None, after_id: int | None
    ) -> AsyncIterator[HistoryPage]:
        """One page: the trades of the one reply with time in [start_ns, end_ns), oldest first, ``proven`` None (see
        the module docstring). When the reply's oldest trade is younger than ``start_ns`` and the reply is full
        (``limit`` trades: older ones exist), the page is yielded, then ``HistoryHorizon`` says how far back the
        history goes. ``after_id`` is ignored (MEXC gives no ids)."""
        url = (base_url or MEXC_REST_BASE).rstrip("/") + MEXC_TRADES_PATH
        reply = await client.get(url, {"symbol": symbol, "limit": self.limit}, weight=TRADES_WEIGHT, limit=_LIMIT)
        items = self._list(reply.body, reply.status)
        parsed: list[tuple[int, Mapping[str, Any]]] = []
        for item in items:
            t = item.get("time")
            if type(t) is not int:
                raise RestError(reply.status, f"trade without an integer time: {item!r:.200}", MEXC_TRADES_PATH)
            parsed.append((t * 1_000_000, item))
        parsed.sort(key=lambda p: p[0])  # MEXC answers newest first
        keep = [(t, item) for t, item in parsed if start_ns <= t < end_ns]
        yield history_page(self.channel, symbol, reply, keep, None)
        if len(parsed) >= self.limit and parsed[0][0] > start_ns:
            raise HistoryHorizon(
                f"no history beyond the last {self.limit} trades: MEXC's {MEXC_TRADES_PATH} reaches back to "
                f"{ms_text(parsed[0][0])}, the gap starts {ms_text(start_ns)}"
            )

    @staticmethod
    def _list(body: bytes, status: int) -> list[Mapping[str, Any]]:
        obj = json_reply(body, status, MEXC_TRADES_PATH)
        if isinstance(obj, dict):  # an error: {"code": -1121, "msg": "Invalid symbol."}
            code = obj.get("code")
            raise RestError(status, f"{code} {obj.get('msg', '')}".strip(), MEXC_TRADES_PATH, code=str(code))
        return record_list(obj, status, MEXC_TRADES_PATH, f"reply is not a list of trades: {body[:200]!r}")
