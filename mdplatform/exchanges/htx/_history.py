"""HTX REST trade history: the most recent trades only, so it heals a gap only while the gap is recent.

Followed (checked 2026-12 with the documentation search): HTX spot "GET /market/history/trade" (``symbol``, ``size``
1..2000): ``{"ch":"market.$symbol.trade.detail","status":"ok","ts":..,"data":[{"id":..,"ts":..,"data":[{"id":..,
"trade-id":..,"ts":..,"amount":..,"price":..,"direction":..}]}]}``, newest first; the USDT-margined swap
"GET /linear-swap-ex/market/history/trade" (``contract_code``, ``size`` 1..2000) alike, its values strings, the trade
id ``id``. An error is ``{"status":"error","err-code":..,"err-msg":..}``.

Neither endpoint pages or takes a time: one request returns the latest ``size`` trades. So a fetch proves the span
[start, end) complete only when the oldest trade returned is older than ``start`` (every later trade was returned);
when the gap lies further back than the last 2,000 trades it proves only what the reply covers (the last page's
``proven`` then starts after ``start``, or is None), and says so: the rest of that gap cannot be healed from HTX.
Budget: 10 requests per second per IP (the public-endpoint limit as HTX documented it for keyless requests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson

from ...contract import HistoryPage
from ...history import RateLimit, RestClient, RestError
from .._rest_history import RestTradeHistory, history_page, json_reply
from ._book import parse_exact

__all__ = [
    "HTX_COINM_HISTORY_PATH",
    "HTX_HISTORY_LIMIT",
    "HTX_HISTORY_MAX",
    "HTX_REST_BASE",
    "HTX_SPOT_HISTORY_PATH",
    "HTX_SWAP_HISTORY_PATH",
    "HTX_SWAP_REST_BASE",
    "HtxTradeHistory",
]

HTX_REST_BASE = "https://api.huobi.pro"
HTX_SWAP_REST_BASE = "https://api.hbdm.com"
HTX_SPOT_HISTORY_PATH = "/market/history/trade"
HTX_SWAP_HISTORY_PATH = "/linear-swap-ex/market/history/trade"
#: coin-margined swaps ("GET /swap-ex/market/history/trade", the same layout)
HTX_COINM_HISTORY_PATH = "/swap-ex/market/history/trade"
#: at most this many trades per request (and no way to ask for older ones)
HTX_HISTORY_MAX = 2000
HTX_HISTORY_LIMIT = RateLimit(10, 1.0)


def trade_id(record: Mapping[str, Any]) -> int:
    """A record's trade id: spot ``tradeId`` (WS) / ``trade-id`` (REST), swaps ``id``."""
    value = record.get("tradeId", record.get("trade-id", record.get("id")))
    return int(value)


class HtxTradeHistory(RestTradeHistory):
    """``TradeHistory`` of channel "trade.detail" (spot or USDT-margined swaps)."""

    channel = "trade.detail"

    def __init__(self, market: str = "spot", *, size: int = HTX_HISTORY_MAX) -> None:
        if not 1 <= size <= HTX_HISTORY_MAX:
            raise ValueError(f"HTX trade history: size must be within 1..{HTX_HISTORY_MAX}, got {size}")
        self.market = market
        self.size = size
        self.path = {"spot": HTX_SPOT_HISTORY_PATH, "linear": HTX_SWAP_HISTORY_PATH}.get(market, HTX_COINM_HISTORY_PATH)
        self._param = "symbol" if market == "spot" else "contract_code"

    def __repr__(self) -> str:
        return f"HtxTradeHistory({self.market!r})"

    @property
    def base_url(self) -> str:
        return HTX_REST_BASE if self.market == "spot" else HTX_SWAP_REST_BASE

    rate_limit = HTX_HISTORY_LIMIT

    def encode(self, records: Sequence[Mapping[str, Any]]) -> str:
        """The reply's layout holding just ``records`` (newest first, one tick each), which normalizes like a
        ``trade.detail`` push (the symbol comes from the row)."""
        ordered = sorted(records, key=lambda r: (int(r["ts"]), trade_id(r)), reverse=True)
        return orjson.dumps(
            {"status": "ok", "data": [{"id": trade_id(r), "ts": r["ts"], "data": [r]} for r in ordered]}
        ).decode()

    async def _pages(
        self, client: RestClient, symbol: str, start_ns: int, end_ns: int, base_url: str | None, after_id: int | None
    ) -> AsyncIterator[HistoryPage]:
        """One request (the latest ``size`` trades); its page holds those with exchange time in [start_ns, end_ns)
        and proves [start, end) only when the reply reaches back before ``start_ns``. ``after_id`` is not used: HTX
        serves no older page."""
        url = (base_url or self.base_url).rstrip("/") + self.path
        reply = await client.get(url, {self._param: symbol, "size": self.size}, weight=1, limit=HTX_HISTORY_LIMIT)
        records = self._records(reply.body, reply.status)
        parsed: list[tuple[int, int, Mapping[str, Any]]] = []
        for record in records:
            try:
                parsed.append((int(record["ts"]) * 1_000_000, trade_id(record), record))
            except (KeyError, TypeError, ValueError) as exc:
                raise RestError(reply.status, f"trade without integer ts/id: {record!r:.200}", self.path) from exc
        parsed.sort(key=lambda p: (p[0], p[1]))  # HTX answers newest first
        keep = [(t, r) for t, _, r in parsed if start_ns <= t < end_ns]
        proven: tuple[int, int] | None = None
        if parsed:
            oldest = parsed[0][0]
            if oldest < start_ns:
                proven = (start_ns, end_ns)
            elif oldest + 1_000_000 < end_ns:
                # the history does not reach back to start: trades sharing the oldest millisecond may be missing
                proven = (oldest + 1_000_000, end_ns)
        yield history_page(self.channel, symbol, reply, keep, proven)

    def _records(self, body: bytes, status: int) -> list[Mapping[str, Any]]:
        obj = json_reply(body, status, self.path, parse_exact)  # prices stay the exchange's text
        if not isinstance(obj, dict):
            raise RestError(status, f"reply is not an object: {body[:200]!r}", self.path)
        if obj.get("status") != "ok":
            code = str(obj.get("err-code", ""))
            raise RestError(status, f"{code} {obj.get('err-msg', '')}".strip(), self.path, code=code)
        ticks = obj.get("data")
        if not isinstance(ticks, list):
            raise RestError(status, f"reply has no list of trades in data: {body[:200]!r}", self.path)
        out: list[Mapping[str, Any]] = []
        for tick in ticks:
            items = tick.get("data") if isinstance(tick, dict) else None
            if not isinstance(items, list):
                raise RestError(status, f"a tick without its trades: {tick!r:.200}", self.path)
            out.extend(item for item in items if isinstance(item, dict))
        return out
