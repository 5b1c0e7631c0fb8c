"""Binance REST trade history (spot, USD-M, COIN-M): what heals a gap in the ``trade`` and ``aggTrade`` channels.

Endpoints, weights and limits (developers.binance.com; spot rest-api "Market data endpoints", derivatives
"Old Trades Lookup" and "Compressed/Aggregate Trades List"):

=======  ==============================  ======  ==========  ====================  ======  =====================
market   historicalTrades                weight  limit max   aggTrades             weight  REQUEST_WEIGHT budget
=======  ==============================  ======  ==========  ====================  ======  =====================
spot     /api/v3/historicalTrades        25      1000        /api/v3/aggTrades     4       6000 per minute
USD-M    /fapi/v1/historicalTrades       20      500         /fapi/v1/aggTrades    20      2400 per minute
COIN-M   /dapi/v1/historicalTrades       20      500         /dapi/v1/aggTrades    20      2400 per minute
=======  ==============================  ======  ==========  ====================  ======  =====================

Both id sequences are contiguous per symbol (trade ``id``, aggTrade ``a``), so consecutive pages prove that no
trade was missed between them. ``historicalTrades`` has no time parameter: the first trade id at or after a time
is located with ``aggTrades?startTime=..&limit=1`` (its ``f``), or, where aggTrades cannot be had, by bisecting
``historicalTrades`` ids.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from ...contract import HistoryPage
from ...history import RateLimit, RestClient, RestError, RestReply
from .._rest_history import RestTradeHistory, ceil_ms, json_reply

__all__ = ["BINANCE_REST", "BinanceRestSpec", "BinanceTradeHistory", "binance_rest_spec"]

BinanceMarket = Literal["spot", "usdm", "coinm"]
BinanceHistoryChannel = Literal["trade", "aggTrade"]


def _spot_depth_weight(limit: int) -> int:
    # GET /api/v3/depth: 1-100 -> 5, 101-500 -> 25, 501-1000 -> 50, 1001-5000 -> 250
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def _futures_depth_weight(limit: int) -> int:
    # GET /fapi/v1/depth and /dapi/v1/depth: 5, 10, 20, 50 -> 2; 100 -> 5; 500 -> 10; 1000 -> 20
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20


@dataclass(frozen=True, slots=True)
class BinanceRestSpec:
    """One Binance market's REST host: paths, request weights, page limits and the host's weight budget."""

    exchange_id: str
    base_url: str
    prefix: str
    rate_limit: RateLimit
    trades_weight: int
    trades_default: int
    trades_max: int
    agg_weight: int
    agg_default: int
    agg_max: int
    depth_weight: Callable[[int], int]

    @property
    def trades_path(self) -> str:
        return f"{self.prefix}/historicalTrades"

    @property
    def agg_path(self) -> str:
        return f"{self.prefix}/aggTrades"

    @property
    def depth_path(self) -> str:
        return f"{self.prefix}/depth"


BINANCE_REST: Mapping[BinanceMarket, BinanceRestSpec] = {
    "spot": BinanceRestSpec(
        "binance",
        "https://api.binance.com",
        "/api/v3",
        RateLimit(6000, 60.0),
        trades_weight=25,
        trades_default=500,
        trades_max=1000,
        agg_weight=4,
        agg_default=500,
        agg_max=1000,
        depth_weight=_spot_depth_weight,
    ),
    "usdm": BinanceRestSpec(
        "binance-usdm",
        "https://fapi.binance.com",
        "/fapi/v1",
        RateLimit(2400, 60.0),
        trades_weight=20,
        trades_default=100,
        trades_max=500,
        agg_weight=20,
        agg_default=500,
        agg_max=1000,
        depth_weight=_futures_depth_weight,
    ),
    "coinm": BinanceRestSpec(
        "binance-coinm",
        "https://dapi.binance.com",
        "/dapi/v1",
        RateLimit(2400, 60.0),
        trades_weight=20,
        trades_default=100,
        trades_max=500,
        agg_weight=20,
        agg_default=500,
        agg_max=1000,
        depth_weight=_futures_depth_weight,
    ),
}


def binance_rest_spec(exchange_id: str) -> BinanceRestSpec:
    """The spec of a registry id ("binance", "binance-usdm", "binance-coinm")."""
    for spec in BINANCE_REST.values():
        if spec.exchange_id == exchange_id:
            return spec
    raise KeyError(f"not a Binance market: {exchange_id!r}")


@dataclass(frozen=True, slots=True)
class _Record:
    id: int
    time_ns: int
    raw: Mapping[str, Any]


class BinanceTradeHistory(RestTradeHistory):
    """``TradeHistory`` of one Binance market and channel ("trade": ``historicalTrades`` records; "aggTrade":
    ``aggTrades`` records). ``limit``: records per page (default and at most the endpoint's documented maximum)."""

    def __init__(self, market: BinanceMarket, channel: BinanceHistoryChannel, *, limit: int | None = None) -> None:
        if market not in BINANCE_REST:
            raise ValueError(f"unknown Binance market {market!r}")
        if channel not in ("trade", "aggTrade"):
            raise ValueError(f"Binance has no REST history for channel {channel!r}")
        spec = BINANCE_REST[market]
        self.market: BinanceMarket = market
        self.spec = spec
        self.channel: BinanceHistoryChannel = channel
        if channel == "trade":
            self._path, self._weight, max_limit = spec.trades_path, spec.trades_weight, spec.trades_max
            self._id_key, self._time_key = "id", "time"
        else:
            self._path, self._weight, max_limit = spec.agg_path, spec.agg_weight, spec.agg_max
            self._id_key, self._time_key = "a", "T"
        if limit is None:
            limit = max_limit
        if not 1 <= limit <= max_limit:
            raise ValueError(f"{self._path}: limit must be within 1..{max_limit}, got {limit}")
        self.limit = limit

    def __repr__(self) -> str:
        return f"BinanceTradeHistory({self.market!r}, {self.channel!r})"

    @property
    def base_url(self) -> str:
        return self.spec.base_url

    @property
    def rate_limit(self) -> RateLimit:
        return self.spec.rate_limit

    def encode(self, records: Sequence[Mapping[str, Any]]) -> str:
        """The records as a JSON array, the layout the endpoint answers with."""
        return orjson.dumps(list(records)).decode()

    # --- fetching ------------------------------------------------------------------------------------------

    async def _pages(
        self, client: RestClient, symbol: str, start_ns: int, end_ns: int, base_url: str | None, after_id: int | None
    ) -> AsyncIterator[HistoryPage]:
        """Pages of the trades with exchange time in [start_ns, end_ns), oldest first, paged by id.

        The first id is ``after_id + 1`` when given, else the first trade at/after ``start_ns``: located with
        ``aggTrades?startTime=..&limit=1`` (its ``f``, or ``a`` for channel aggTrade), or, when aggTrades answers
        400/404 for channel trade (a replayed capture without aggTrade frames), by bisecting ``historicalTrades``
        ids with ``limit=1`` probes. When the history does not reach back to the first id (the first record has a
        later id, or the bisection found no trade before start), the span is proven only from that record's time
        + 1 ns. Stops at the first record at/after ``end_ns`` (proven [start, end)), at a short page (the
        history ends: proven up to the last record's time + 1 ns) or at a missing id (proven only up to before
        it). Locating requests are pages too, without records, so every request made is reported.
        """
        base = (base_url or self.spec.base_url).rstrip("/")
        symbol = symbol.upper()
        first_id: int | None = None
        chained = True
        if after_id is not None:
            first_id = after_id + 1
        else:
            async for page, located in self._locate(client, base, symbol, start_ns):
                yield page
                if located is not None:
                    first_id, chained = located
        if first_id is None:
            return
        async for page in self._id_pages(client, base, symbol, start_ns, end_ns, first_id, chained):
            yield page

    async def _get(self, client: RestClient, url: str, params: Mapping[str, str | int], weight: int) -> RestReply:
        # historicalTrades is a MARKET_DATA endpoint: Binance may want an API key (no signature) for it, futures
        # especially; MDP_BINANCE_API_KEY is sent when set, read-only keys suffice
        key = os.environ.get("MDP_BINANCE_API_KEY")
        headers = {"X-MBX-APIKEY": key} if key else None
        return await client.get(url, params, weight=weight, limit=self.spec.rate_limit, headers=headers)

    def _records(self, reply: RestReply, path: str, id_key: str, time_key: str) -> list[_Record]:
        body = json_reply(reply.body, reply.status, path)
        if not isinstance(body, list):
            raise RestError(reply.status, f"reply is not a list of trades: {reply.body[:200]!r}", path)
        out: list[_Record] = []
        for item in body:
            rid = item.get(id_key) if isinstance(item, dict) else None
            t = item.get(time_key) if isinstance(item, dict) else None
            if not isinstance(rid, int) or isinstance(rid, bool) or not isinstance(t, int) or isinstance(t, bool):
                raise RestError(reply.status, f"record without integer {id_key!r}/{time_key!r}: {item!r:.200}", path)
            out.append(_Record(rid, t * 1_000_000, item))
        return out

    def _page(
        self, symbol: str, reply: RestReply, records: Sequence[_Record], proven: tuple[int, int] | None
    ) -> HistoryPage:
        return HistoryPage(
            channel=self.channel,
            symbol=symbol,
            request=reply.request,
            recv_ns=reply.recv_ns,
            records=tuple(r.raw for r in records),
            times_ns=tuple(r.time_ns for r in records),
            proven=proven,
        )

    async def _locate(
        self, client: RestClient, base: str, symbol: str, start_ns: int
    ) -> AsyncIterator[tuple[HistoryPage, tuple[int | None, bool] | None]]:
        """The first id of this channel at/after ``start_ns``: (page, None) per request made, the last with
        (first id or None when no trade is that recent, whether the trade before it is known to precede start)."""
        spec = self.spec
        url = base + spec.agg_path
        try:
            reply = await self._get(
                client, url, {"symbol": symbol, "startTime": ceil_ms(start_ns), "limit": 1}, spec.agg_weight
            )
        except RestError as exc:
            if self.channel != "trade" or exc.status not in (400, 404):
                raise
            # no aggregate trades to be had (a replayed capture without aggTrade frames): bisect the trade ids
            async for item in self._bisect(client, base, symbol, start_ns):
                yield item
            return
        records = self._records(reply, spec.agg_path, "a", "T")
        page = self._page(symbol, reply, (), None)
        if not records:
            yield page, (None, False)
            return
        first = records[0].raw
        located = first.get("f") if self.channel == "trade" else first.get("a")
        if not isinstance(located, int):
            raise RestError(reply.status, f"aggTrade without integer 'f': {first!r:.200}", spec.agg_path)
        # the exchange answers the first aggregate at/after startTime: every trade before it is older than start
        yield page, (located, True)

    async def _bisect(
        self, client: RestClient, base: str, symbol: str, start_ns: int
    ) -> AsyncIterator[tuple[HistoryPage, tuple[int | None, bool] | None]]:
        """Locate the first trade id at/after ``start_ns`` with ``historicalTrades?fromId=..&limit=1`` probes."""
        spec = self.spec
        url = base + spec.trades_path

        async def probe(from_id: int | None) -> tuple[HistoryPage, _Record | None]:
            params: dict[str, str | int] = {"symbol": symbol}
            if from_id is not None:
                params["fromId"] = from_id
            params["limit"] = 1
            reply = await self._get(client, url, params, spec.trades_weight)
            records = self._records(reply, spec.trades_path, "id", "time")
            return self._page(symbol, reply, (), None), (records[0] if records else None)

        page, newest = await probe(None)
        if newest is None or newest.time_ns < start_ns:
            yield page, (None, False)  # no trade at/after start (yet)
            return
        yield page, None
        page, oldest = await probe(0)
        if oldest is None:  # the history vanished between two requests
            yield page, (None, False)
            return
        if oldest.time_ns >= start_ns:
            # the history's first trade is already at/after start: what came before it is unknown
            yield page, (oldest.id, oldest.id == 0)
            return
        lo, hi, answer = oldest.id, newest.id, newest.id
        pending = page
        while lo + 1 < hi:
            yield pending, None
            mid = (lo + hi) // 2
            pending, rec = await probe(mid)
            if rec is None or rec.time_ns >= start_ns:
                hi = mid
                if rec is not None:
                    answer = min(answer, rec.id)
            else:
                lo = rec.id
        # ``lo`` precedes start; the ids between it and ``answer`` do not exist
        yield pending, (answer, answer == lo + 1)

    async def _id_pages(
        self,
        client: RestClient,
        base: str,
        symbol: str,
        start_ns: int,
        end_ns: int,
        first_id: int,
        chained: bool,
    ) -> AsyncIterator[HistoryPage]:
        url = base + self._path
        expected = first_id
        proven_start = start_ns
        last_ns: int | None = None
        first = True
        while True:
            params: dict[str, str | int] = {"symbol": symbol, "fromId": expected, "limit": self.limit}
            reply = await self._get(client, url, params, self._weight)
            records = self._records(reply, self._path, self._id_key, self._time_key)
            keep: list[_Record] = []
            done = False
            proven_end: int | None = None
            for i, rec in enumerate(records):
                if rec.id != expected:
                    if first and i == 0 and rec.id > expected:
                        chained = False  # the history does not reach back to the first id asked for
                    else:
                        done, proven_end = True, last_ns  # a missing id: complete only before the last one kept
                        break
                if first and i == 0 and not chained:
                    # trades before this one may be missing, and may share its millisecond
                    proven_start = max(start_ns, rec.time_ns + 1)
                if rec.time_ns >= end_ns:
                    done, proven_end = True, end_ns
                    break
                if rec.time_ns >= start_ns:
                    keep.append(rec)
                last_ns = rec.time_ns
                expected = rec.id + 1
            if first and not records:
                done = True  # nothing from the first id on
            first = False
            if not done:
                if len(records) < self.limit:
                    done = True  # the history ends here
                    proven_end = None if last_ns is None else last_ns + 1
                else:
                    proven_end = last_ns  # more trades may share the last record's millisecond
            proven = (proven_start, proven_end) if proven_end is not None and proven_end > proven_start else None
            yield self._page(symbol, reply, keep, proven)
            if done:
                return
