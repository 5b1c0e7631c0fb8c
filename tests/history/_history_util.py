"""Helpers for the REST history tests: the recorded trades a replay serves, raw lake rows, an event loop runner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import orjson
import polars as pl

from mdplatform.capture import merge_captures
from mdplatform.exchanges import Exchange, HistoryPage, TradeHistory
from mdplatform.history import RestClient
from mdplatform.schemas import RAW

T = TypeVar("T")

SPOT = ("binance-hftbacktest/spot/btcusdt_20240808.gz", "binance-hftbacktest/spot/btcusdt_20240809.gz")
SPOT_ETH = ("binance-hftbacktest/spot/ethusdt_20240808.gz", "binance-hftbacktest/spot/ethusdt_20240809.gz")
USDM = ("binance-hftbacktest/usdm/btcusdt_20240808.gz",)
COINM = ("binance-hftbacktest/cm/btcusd_perp_20240808.gz", "binance-hftbacktest/cm/btcusd_perp_20240809.gz")
FUTURES_AGG = ("cryptofeed-samples/BINANCE_FUTURES.ws.1.0.gz",)
OKX = ("cryptofeed-samples/OKX.ws.1.0.gz",)

#: the columns a REST record and the live frame of the same trade must agree on
SAME = ["symbol", "ts", "trade_id", "price", "size", "side", "fills", "seq_id", "fill_first", "fill_last"]
MS = 1_000_000


def run(factory: Callable[[], Coroutine[Any, Any, T]], timeout: float = 60.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(factory(), timeout)

    return asyncio.run(bounded())


def paths(root: Path, names: Sequence[str]) -> list[Path]:
    return [root / name for name in names]


@dataclass(frozen=True, slots=True)
class Recorded:
    """One recorded trade: its id (Binance t/a, OKX tradeId), exchange time (ms), receive time, the frame it came
    in and the trade's own object."""

    id: int
    time_ms: int
    recv_ns: int
    frame: str
    data: dict[str, Any]


@cache
def _recorded(files: tuple[str, ...], channel: str) -> dict[str, tuple[Recorded, ...]]:
    out: dict[str, dict[int, Recorded]] = {}
    for frame in merge_captures(list(files)):
        text = frame.frame
        if frame.kind != "ws":
            continue
        if text.startswith('{"stream":"') and f"@{channel}" in text[:60]:
            data = orjson.loads(text)["data"]
            rid = data["t"] if channel == "trade" else data["a"]
            out.setdefault(data["s"], {}).setdefault(rid, Recorded(rid, data["T"], frame.recv_ns, text, data))
        elif text.startswith('{"arg":{"channel":"trades"') and '"data"' in text:
            for item in orjson.loads(text)["data"]:
                rid = int(item["tradeId"])
                rec = Recorded(rid, int(item["ts"]), frame.recv_ns, text, item)
                out.setdefault(item["instId"], {}).setdefault(rid, rec)
    return {symbol: tuple(sorted(by_id.values(), key=lambda r: r.id)) for symbol, by_id in out.items()}


def recorded(root: Path, names: Sequence[str], channel: str) -> dict[str, tuple[Recorded, ...]]:
    """symbol -> the recording's trades of ``channel`` ("trade", "aggTrade", "trades"), by id, each once."""
    return _recorded(tuple(str(p) for p in paths(root, names)), channel)


def id_before(trades: Sequence[Recorded], time_ms: int) -> int:
    """The id of the last trade older than ``time_ms``: an ``after_id`` that lies before a span starting there."""
    return [t for t in trades if t.time_ms < time_ms][-1].id


async def fetch_all(
    history: TradeHistory,
    client: RestClient,
    symbol: str,
    start_ns: int,
    end_ns: int,
    *,
    base_url: str,
    after_id: int | None = None,
) -> list[HistoryPage]:
    pages: list[HistoryPage] = []
    stream: AsyncIterator[HistoryPage] = history.fetch(
        client, symbol, start_ns, end_ns, base_url=base_url, after_id=after_id
    )
    async for page in stream:
        pages.append(page)
    return pages


def raw_rows(
    exchange: Exchange, channel: str, symbol: str, payloads: Sequence[str], conn_id: str = "c"
) -> pl.DataFrame:
    """Raw lake rows (``mdplatform.schemas.RAW``) holding ``payloads`` of one channel and symbol."""
    n = len(payloads)
    return pl.DataFrame(
        {
            "recv_ts": list(range(1, n + 1)),
            "exchange": [exchange.id] * n,
            "channel": [channel] * n,
            "symbol": [symbol] * n,
            "conn_id": [conn_id] * n,
            "seq": list(range(1, n + 1)),
            "payload": list(payloads),
        },
        schema=RAW,
    )
