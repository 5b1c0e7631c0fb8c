"""What the exchanges' REST trade histories (``TradeHistory``) share: reading a reply, building a page, time text.

Each exchange keeps its own paging rules (which parameters walk the history, what a page proves); these helpers
only hold the steps that are the same everywhere, so a reply that is not JSON or carries an error code is refused
with the same ``RestError`` by every exchange.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import orjson

from .._time import from_ns
from ..contract import HistoryHorizon, HistoryPage
from ..history import RestClient, RestError, RestReply

__all__ = [
    "HistoryHorizon",
    "RestTradeHistory",
    "ceil_ms",
    "coded_reply",
    "history_page",
    "json_reply",
    "ms_text",
    "record_list",
]


class RestTradeHistory:
    """``TradeHistory.fetch`` as every exchange's history has it: an empty span fetches nothing, anything else is
    paged by the exchange's ``_pages`` (``base_url``: the caller's host, None for the exchange's own)."""

    async def fetch(
        self,
        client: RestClient,
        symbol: str,
        start_ns: int,
        end_ns: int,
        *,
        base_url: str | None = None,
        after_id: int | None = None,
    ) -> AsyncIterator[HistoryPage]:
        if end_ns <= start_ns:
            return
        async for page in self._pages(client, symbol, start_ns, end_ns, base_url, after_id):
            yield page

    def _pages(
        self, client: RestClient, symbol: str, start_ns: int, end_ns: int, base_url: str | None, after_id: int | None
    ) -> AsyncIterator[HistoryPage]:
        raise NotImplementedError


def ceil_ms(ns: int) -> int:
    """``ns`` rounded up to whole milliseconds (the first millisecond not before it)."""
    return -(-ns // 1_000_000)


def ms_text(ns: int) -> str:
    """A time for messages: "2024-05-01 12:00:00.123 UTC"."""
    return f"{from_ns(ns):%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC"


def json_reply(body: bytes, status: int, path: str, loads: Callable[[bytes], Any] = orjson.loads) -> Any:
    """The decoded reply; ``RestError`` when it is not JSON (``loads``: a decoder keeping numbers as text)."""
    try:
        return loads(body)
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
        raise RestError(status, f"reply is not JSON: {exc}", path) from exc


def coded_reply(body: bytes, status: int, path: str, *, code_key: str, ok: object, msg_key: str) -> dict[str, Any]:
    """A reply object whose ``code_key`` says success when it equals ``ok`` (OKX ``"code":"0"``, KuCoin
    ``"code":"200000"``, Bybit ``"retCode":0``); ``RestError`` with its code and ``msg_key`` message otherwise."""
    obj = json_reply(body, status, path)
    if not isinstance(obj, dict):
        raise RestError(status, f"reply is not an object: {body[:200]!r}", path)
    code = obj.get(code_key)
    if code != ok:
        raise RestError(status, f"{code} {obj.get(msg_key, '')}".strip(), path, code=str(code))
    return obj


def record_list(value: object, status: int, path: str, problem: str) -> list[Mapping[str, Any]]:
    """``value`` when it is a list of JSON objects (the trade records); ``RestError(problem)`` otherwise."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise RestError(status, problem, path)
    return value


def history_page(
    channel: str,
    symbol: str,
    reply: RestReply,
    keep: Sequence[tuple[int, Mapping[str, Any]]],
    proven: tuple[int, int] | None,
) -> HistoryPage:
    """The page of ``reply`` holding the records ``keep`` ((exchange time ns, record), oldest first)."""
    return HistoryPage(
        channel,
        symbol,
        reply.request,
        reply.recv_ns,
        tuple(record for _, record in keep),
        tuple(t for t, _ in keep),
        proven,
    )
