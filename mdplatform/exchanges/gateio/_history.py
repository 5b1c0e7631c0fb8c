"""Gate.io v4 REST trade history: ``GET /api/v4/spot/trades`` and ``GET /api/v4/futures/usdt/trades``.

Gate.io "API v4" docs (gate.io/docs/developers/apiv4/en/, "Retrieve market trades" for spot and futures): spot takes
``currency_pair``, ``limit`` (at most 1000), ``last_id``/``reverse``, ``from``/``to`` (Unix seconds) and ``page``;
futures takes ``contract``, ``limit`` (at most 1000), ``offset``, ``from``/``to`` (``last_id`` is deprecated there in
favour of the time range). Both answer a JSON array, newest first: spot records ``{"id":"..","create_time_ms":
"ms.frac","side","amount","price",...}``, futures ``{"id":N,"create_time_ms":ms.frac,"contract","size":signed,
"price"}``. Public endpoints allow 200 requests per 10 s each (per IP).

The walk asks the span's whole seconds ``from``..``to`` and pages through it (spot ``page``, futures ``offset``) until a
page comes back shorter than ``limit``: every trade of the span was then returned, which proves [start, end). Gate.io
keeps a bounded history (spot: recent trades by page; "from/to" limited to the last days): a span older than what it
keeps comes back empty, and then nothing is proven.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson

from ...contract import HistoryPage
from ...history import RateLimit, RestClient, RestError
from .._rest_history import RestTradeHistory, json_reply, record_list

__all__ = [
    "GATEIO_FUTURES_TRADES_PATH",
    "GATEIO_REST_BASE",
    "GATEIO_REST_LIMIT",
    "GATEIO_SPOT_TRADES_PATH",
    "GateioTradeHistory",
    "record_time_ns",
]

GATEIO_REST_BASE = "https://api.gateio.ws"
GATEIO_SPOT_TRADES_PATH = "/api/v4/spot/trades"
GATEIO_FUTURES_TRADES_PATH = "/api/v4/futures/usdt/trades"
#: public endpoints: 200 requests per 10 s (per endpoint, per IP): the collector and backfill share one budget
GATEIO_REST_LIMIT = RateLimit(200, 10.0)
_MAX_LIMIT = 1000


def record_time_ns(record: Mapping[str, Any]) -> int:
    """A REST or WS trade record's ``create_time_ms`` (text or number of ms with a fraction) in ns, exactly as far
    as the text goes."""
    whole, _, frac = str(record["create_time_ms"]).partition(".")
    return int(whole) * 1_000_000 + int((frac + "000000")[:6])


class GateioTradeHistory(RestTradeHistory):
    """``TradeHistory`` of one Gate.io market's trade channel. ``limit``: records per page (at most 1000)."""

    base_url = GATEIO_REST_BASE
    rate_limit = GATEIO_REST_LIMIT

    def __init__(self, market: str, channel: str, *, limit: int = _MAX_LIMIT) -> None:
        if not 1 <= limit <= _MAX_LIMIT:
            raise ValueError(f"gateio trades: limit must be within 1..{_MAX_LIMIT}, got {limit}")
        self.market = market
        self.channel = channel
        self.limit = limit
        self.path = GATEIO_FUTURES_TRADES_PATH if market == "futures" else GATEIO_SPOT_TRADES_PATH

    def __repr__(self) -> str:
        return f"GateioTradeHistory({self.market!r})"

    def encode(self, records: Sequence[Mapping[str, Any]]) -> str:
        """The reply's layout: a JSON array of the records, newest first."""
        try:
            ordered = sorted(records, key=lambda r: int(r["id"]), reverse=True)
        except (KeyError, TypeError, ValueError):
            ordered = list(reversed(records))
        return orjson.dumps(ordered).decode()

    async def _pages(
        self, client: RestClient, symbol: str, start_ns: int, end_ns: int, base_url: str | None, after_id: int | None
    ) -> AsyncIterator[HistoryPage]:
        """Pages of the trades with exchange time in [start_ns, end_ns), each oldest first. ``after_id`` is
        ignored: Gate.io ids are not contiguous per instrument, the time range is what proves completeness."""
        url = (base_url or GATEIO_REST_BASE).rstrip("/") + self.path
        futures = self.market == "futures"
        base: dict[str, str | int] = {
            ("contract" if futures else "currency_pair"): symbol,
            "from": start_ns // 1_000_000_000,
            "to": -(-end_ns // 1_000_000_000),
            "limit": self.limit,
        }
        n = 0
        seen: set[str] = set()
        while True:
            params = dict(base)
            if futures:
                params["offset"] = n * self.limit
            else:
                params["page"] = n + 1
            reply = await client.get(url, params, weight=1, limit=GATEIO_REST_LIMIT)
            items = self._records(reply.body, reply.status)
            parsed: list[tuple[int, Mapping[str, Any]]] = []
            for item in reversed(items):  # newest first on the wire
                try:
                    t, key = record_time_ns(item), str(item["id"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise RestError(reply.status, f"trade without id/create_time_ms: {item!r:.200}", self.path) from exc
                if key in seen or not start_ns <= t < end_ns:
                    continue
                seen.add(key)
                parsed.append((t, item))
            done = len(items) < self.limit
            yield HistoryPage(
                self.channel,
                symbol,
                reply.request,
                reply.recv_ns,
                tuple(item for _, item in parsed),
                tuple(t for t, _ in parsed),
                # a short page ends the span: everything in it was returned (an empty first page proves nothing:
                # the history may not reach back that far)
                (start_ns, end_ns) if done and (n > 0 or items) else None,
            )
            if done:
                return
            n += 1

    def _records(self, body: bytes, status: int) -> list[Mapping[str, Any]]:
        obj = json_reply(body, status, self.path)
        if isinstance(obj, dict):  # {"label":"INVALID_PARAM_VALUE","message":"..."}
            raise RestError(status, f"{obj.get('label', '')} {obj.get('message', '')}".strip(), self.path)
        return record_list(obj, status, self.path, f"reply is not a list of trades: {body[:200]!r}")
