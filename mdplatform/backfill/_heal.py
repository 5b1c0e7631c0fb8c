"""Fetch what the lake is missing from the exchanges' REST history and land it, with what the fetch proved.

Each page is landed as the exchange sent it, split by exchange-time minute into the ``backfill/`` table (so the
hour a trade belongs to reads it, however late it was fetched); what the fetch proved complete becomes
``backfilled`` events in ``backfill_events/``, one per exchange-time hour it spans. Both go through ``RawWriter``,
so the landing log announces them to the sensors.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .._time import HOUR_NS, MINUTE_NS, floor_ns, from_ns
from ..exchanges import BACKFILLED, HistoryPage, get_exchange
from ..history import RestClient, RestError
from ..lake import BACKFILL_EVENTS_TABLE, BACKFILL_TABLE, RawWriter, lake_root
from ..schemas import BACKFILL_CONN_PREFIX
from ._plan import Gap

__all__ = ["BackfillReport", "Healed", "heal_gaps"]


@dataclass(slots=True)
class Healed:
    """What became of one gap: the trades fetched, the span proven complete (None: nothing), or why it failed."""

    gap: Gap
    pages: int = 0
    trades: int = 0
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
            return f"{head}; failed: {self.error}"
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
) -> BackfillReport:
    """Fetch every gap's trades (``rest_url``: the REST host to ask instead of the exchange's own, e.g. a replay)
    and land them; a gap that fails (no history for the channel, an error reply) is reported, never fatal."""
    root = lake_root(root)
    run = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    conn_id = f"{BACKFILL_CONN_PREFIX}{run}"
    report = BackfillReport()
    own_client = client is None
    rest = client or RestClient()
    seq = 0
    try:
        with RawWriter(root, writer_id=conn_id, tables=(BACKFILL_TABLE, BACKFILL_EVENTS_TABLE)) as writer:
            for gap in gaps:
                healed = Healed(gap)
                report.healed.append(healed)
                history = get_exchange(gap.exchange).trade_history(gap.channel)
                if history is None:
                    healed.error = f"{gap.exchange} keeps no REST history for {gap.channel}"
                    continue
                requests = []
                try:
                    async for page in history.fetch(
                        rest, gap.exchange_symbol, gap.start_ns, gap.end_ns, base_url=rest_url, after_id=gap.after_id
                    ):
                        healed.pages += 1
                        healed.trades += len(page.records)
                        healed.proven = page.proven
                        requests.append(page.request)
                        for minute, chunk in _by_minute(page):
                            seq += 1
                            writer.append_at(
                                minute,
                                page.recv_ns,
                                gap.exchange,
                                page.channel,
                                gap.exchange_symbol,
                                conn_id,
                                seq,
                                history.encode(chunk),
                            )
                        if on_page is not None:
                            on_page(gap, page)
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


def _by_minute(page: HistoryPage) -> list[tuple[int, list[Mapping[str, Any]]]]:
    """The page's records grouped by the exchange-time minute they fall in (records are oldest first)."""
    groups: dict[int, list[Mapping[str, Any]]] = {}
    for record, t in zip(page.records, page.times_ns, strict=True):
        groups.setdefault(t - t % MINUTE_NS, []).append(record)
    return sorted(groups.items())


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
