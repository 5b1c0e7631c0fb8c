"""Fetch what the lake is missing from the exchanges' REST history and land it, with what the fetch proved.

Each page is landed as the exchange sent it, split by exchange-time minute into the ``backfill/`` table (so the
hour a trade belongs to reads it, however late it was fetched); what the fetch proved complete becomes
``backfilled`` events in ``backfill_events/``, one per exchange-time hour it spans. Both go through ``RawWriter``,
so the landing log announces them to the sensors.

Every gap's fetch is bounded (``HealLimits``: pages, reply bytes, total time; each request has its own deadline in
the ``RestClient``), and every page is checked before it lands (``_plausible``): a host that never passes the gap,
trickles, or answers implausible prices fails that gap with the reason, and the others go on.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .._time import HOUR_NS, MINUTE_NS, floor_ns, from_ns
from ..exchanges import BACKFILLED, UNREACHABLE, Exchange, HistoryHorizon, HistoryPage, TradeHistory, get_exchange
from ..history import RestClient, RestError
from ..lake import BACKFILL_EVENTS_TABLE, BACKFILL_TABLE, RawWriter, lake_root
from ..schemas import BACKFILL_CONN_PREFIX
from ._plan import Gap
from ._plausible import PriceBand, page_problem

__all__ = ["BackfillReport", "HealLimits", "Healed", "heal_gaps"]


@dataclass(frozen=True, slots=True)
class HealLimits:
    """How much one gap's fetch may take before it is given up as failed: ``max_pages`` replies, ``max_bytes`` of
    reply bodies, ``max_seconds`` in all (waits for the rate limit included); ``request_s``: the deadline of one
    request, body included (a host trickling bytes never holds one longer); ``retries``: how often a failed request
    is sent again; ``price_band``: how far (a share, 0.25 = 25%) a fetched price may lie beyond the prices of the
    trades stored either side of the gap. A 2,000-id Binance gap takes 2 to 5 pages."""

    max_pages: int = 1000
    max_bytes: int = 256 << 20
    max_seconds: float = 300.0
    request_s: float = 30.0
    retries: int = 5
    price_band: float = 0.25

    def __post_init__(self) -> None:
        if self.max_pages < 1 or self.max_bytes < 1 or not self.max_seconds > 0 or not self.request_s > 0:
            raise ValueError(f"backfill limits must be positive: {self}")
        if self.retries < 0 or not self.price_band > 0:
            raise ValueError(f"retries must be >= 0 and price_band > 0: {self}")


@dataclass(slots=True)
class Healed:
    """What became of one gap: the trades fetched, the span proven complete (None: nothing), or why it failed."""

    gap: Gap
    pages: int = 0
    trades: int = 0
    bytes: int = 0
    proven: tuple[int, int] | None = None
    error: str | None = None

    @property
    def whole(self) -> bool:
        return self.proven is not None and self.proven[0] <= self.gap.start_ns and self.proven[1] >= self.gap.end_ns

    def describe(self) -> str:
        g = self.gap
        span = f"{from_ns(g.start_ns):%Y-%m-%d %H:%M:%S}..{from_ns(g.end_ns):%H:%M:%S} UTC"
        head = f"{g.exchange} {g.symbol} {g.channel} {span}: {self.trades} trades in {self.pages} pages"
        if self.error:
            # one line whatever the server put in its message
            return f"{head}; failed: {' '.join(self.error.split())}"
        if self.whole:
            return f"{head}; filled"
        if self.proven is None:
            return f"{head}; nothing proven"
        a, b = self.proven
        return f"{head}; proven only {from_ns(a):%H:%M:%S}..{from_ns(b):%H:%M:%S}"


@dataclass(slots=True)
class BackfillReport:
    healed: list[Healed] = field(default_factory=list)
    requests: int = 0
    throttled: int = 0
    waited_s: float = 0.0

    def hours(self) -> list[int]:
        """Exchange-time hours whose trades or coverage the landed data changes (the proven spans)."""
        out: set[int] = set()
        for h in self.healed:
            if h.proven is not None:
                a, b = h.proven
                out.update(range(floor_ns(a, HOUR_NS), b, HOUR_NS))
        return sorted(out)


async def heal_gaps(
    root: str | None,
    gaps: Sequence[Gap],
    *,
    rest_url: str | None = None,
    client: RestClient | None = None,
    on_page: Callable[[Gap, HistoryPage], None] | None = None,
    limits: HealLimits | None = None,
) -> BackfillReport:
    """Fetch every gap's trades (``rest_url``: the REST host to ask instead of the exchange's own, e.g. a replay)
    and land them; a gap that fails (no history for the channel, an error reply, a limit reached, an implausible
    page) is reported with the reason, never fatal to the others. ``limits``: each gap's bounds; a ``client``
    passed in keeps its own retries and request deadline."""
    root = lake_root(root)
    limits = limits or HealLimits()
    run = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    conn_id = f"{BACKFILL_CONN_PREFIX}{run}"
    report = BackfillReport()
    own_client = client is None
    rest = client or RestClient(max_retries=limits.retries, deadline_s=limits.request_s)
    try:
        with RawWriter(root, writer_id=conn_id, tables=(BACKFILL_TABLE, BACKFILL_EVENTS_TABLE)) as writer:
            fetch = _GapFetch(writer, conn_id, rest, rest_url, limits, on_page)
            for gap in gaps:
                healed = Healed(gap)
                report.healed.append(healed)
                exchange = get_exchange(gap.exchange)
                history = exchange.trade_history(gap.channel)
                if history is None:
                    healed.error = f"{gap.exchange} keeps no REST history for {gap.channel}"
                    continue
                requests: list[str] = []
                try:
                    async with asyncio.timeout(limits.max_seconds):
                        await fetch.run(exchange, history, healed, requests)
                except TimeoutError:
                    healed.error = f"not done within {limits.max_seconds:g} s (the gap's time limit)"
                except HistoryHorizon as exc:
                    healed.error = str(exc)
                    # what lies before the proven span (all of the gap when nothing was) cannot be fetched: said
                    # in coverage, which keeps it a gap
                    reach = healed.proven[0] if healed.proven is not None else gap.end_ns
                    _unreachable(writer, conn_id, gap, min(reach, gap.end_ns), healed.error)
                except (RestError, OSError, ValueError) as exc:
                    healed.error = str(exc) or type(exc).__name__
                if healed.proven is not None:
                    _claim(writer, conn_id, gap, healed, requests)
    finally:
        stats = rest.stats
        report.requests, report.throttled, report.waited_s = stats.requests, stats.throttled, stats.waited_s
        if own_client:
            await rest.aclose()
    return report


class _GapFetch:
    """The fetch of one gap after another into one writer (its ``seq`` counts on across gaps)."""

    def __init__(
        self,
        writer: RawWriter,
        conn_id: str,
        rest: RestClient,
        rest_url: str | None,
        limits: HealLimits,
        on_page: Callable[[Gap, HistoryPage], None] | None,
    ) -> None:
        self.writer = writer
        self.conn_id = conn_id
        self.rest = rest
        self.rest_url = rest_url
        self.limits = limits
        self.on_page = on_page
        self.seq = 0

    async def run(self, exchange: Exchange, history: TradeHistory, healed: Healed, requests: list[str]) -> None:
        """Fetch and land ``healed.gap`` page by page, until the fetch ends, a limit is reached (``healed.error``)
        or a page is implausible (``healed.error``; that page and the rest are not landed)."""
        gap, limits = healed.gap, self.limits
        band = PriceBand.around(gap.neighbours, limits.price_band)
        bytes_before = self.rest.stats.bytes
        pages: AsyncIterator[HistoryPage] = history.fetch(
            self.rest, gap.exchange_symbol, gap.start_ns, gap.end_ns, base_url=self.rest_url, after_id=gap.after_id
        )
        try:
            async for page in pages:
                healed.pages += 1
                healed.bytes = self.rest.stats.bytes - bytes_before
                problem = page_problem(exchange, history, page, band)
                if problem is not None:
                    healed.error = f"page {healed.pages} rejected ({page.request}): {problem}"
                    return
                healed.trades += len(page.records)
                healed.proven = page.proven
                requests.append(page.request)
                self._land(gap, history, page)
                if self.on_page is not None:
                    self.on_page(gap, page)
                if healed.whole:
                    continue  # the last page: nothing more is asked for
                if healed.pages >= limits.max_pages:
                    healed.error = f"gave up after {healed.pages} pages (the gap's page limit)"
                    return
                if healed.bytes > limits.max_bytes:
                    healed.error = f"gave up after {healed.bytes} bytes of replies (the gap's byte limit)"
                    return
        finally:
            if isinstance(pages, AsyncGenerator):
                await pages.aclose()  # no request of an abandoned fetch stays pending

    def _land(self, gap: Gap, history: TradeHistory, page: HistoryPage) -> None:
        for minute, chunk in _by_minute(page):
            self.seq += 1
            self.writer.append_at(
                minute,
                page.recv_ns,
                gap.exchange,
                page.channel,
                gap.exchange_symbol,
                self.conn_id,
                self.seq,
                history.encode(chunk),
            )


def _by_minute(page: HistoryPage) -> list[tuple[int, list[Mapping[str, Any]]]]:
    """The page's records grouped by the exchange-time minute they fall in (records are oldest first)."""
    groups: dict[int, list[Mapping[str, Any]]] = {}
    for record, t in zip(page.records, page.times_ns, strict=True):
        groups.setdefault(t - t % MINUTE_NS, []).append(record)
    return sorted(groups.items())


def _unreachable(writer: RawWriter, conn_id: str, gap: Gap, end: int, reason: str) -> None:
    """``unreachable`` events for [gap start, end), one per exchange-time hour (each hour reads its own)."""
    now = time.time_ns()
    at = gap.start_ns
    while at < end:
        stop = min(end, floor_ns(at, HOUR_NS) + HOUR_NS)
        detail = orjson.dumps({"end": stop, "reason": reason}).decode()
        writer.event(
            now, gap.exchange, conn_id, UNREACHABLE, gap.channel, gap.exchange_symbol, 0, at, now, detail, at_ns=at
        )
        at = stop


def _claim(writer: RawWriter, conn_id: str, gap: Gap, healed: Healed, requests: list[str]) -> None:
    """``backfilled`` events for the proven span, one per exchange-time hour (each hour reads its own)."""
    assert healed.proven is not None
    lo, hi = healed.proven
    now = time.time_ns()
    at = lo
    while at < hi:
        end = min(hi, floor_ns(at, HOUR_NS) + HOUR_NS)
        detail = orjson.dumps(
            {
                "end": end,
                "trades": healed.trades,
                "first_request": requests[0] if requests else "",
                "requests": len(requests),
            }
        ).decode()
        writer.event(
            now, gap.exchange, conn_id, BACKFILLED, gap.channel, gap.exchange_symbol, 0, at, now, detail, at_ns=at
        )
        at = end
