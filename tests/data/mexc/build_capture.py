"""Writes ``mexc_spot.ws.gz`` (cryptofeed text format: ``<url> <-> <s>`` connect, ``<url> <- <s>: <sent>``,
``<s>: <received>`` with binary frames as Python bytes literals, ``<rest url> -> <s>: <reply>``) for
tests/e2e/test_mexc_live.py and tests/exchanges/test_mexc.py: run ``python tests/data/mexc/build_capture.py`` from the
repository root; the output is deterministic.

There is no recording of MEXC's protobuf WebSocket: **every frame is built from MEXC's spot v3 documentation** (2026:
"Websocket Market Streams" and its "Trade Streams", "Diff.Depth Stream", "Individual Symbol Book Ticker Streams", "How
to Properly Maintain a Local Copy of the Order Book" pages; market data "Order Book") and encoded with MEXC's published
``.proto`` definitions (``mdplatform.exchanges.mexc._proto``):
- ``spot@public.aggre.deals.v3.api.pb@100ms`` for BTCUSDT (a push every 3.1 s from 00:00:00.700, 1-3 trades each,
  taker buys and sells, ``tradeId`` as the docs' examples shape them) and ETHUSDT (every 4.3 s);
- ``spot@public.aggre.depth.v3.api.pb@100ms`` for both: a push every 0.5 s, ``fromVersion`` = previous ``toVersion``
  + 1, one version per changed level; **one BTCUSDT push (versions 10589632421..10589632422, sent 00:00:45.600) is
  left out** (a forced version gap); the push after it sets the same levels again, so the exchange's book and a book
  rebuilt from what was recorded agree from there on;
- ``spot@public.aggre.bookTicker.v3.api.pb@100ms`` for BTCUSDT every 2 s;
- ``spot@public.kline.v3.api.pb@BTCUSDT@Min1`` every second (at x.999) while its window has deals: the kline of the
  deals above (the "K-line Streams" page's fields; its ``symbolId`` example);
- REST ``/api/v3/depth?symbol=..&limit=5000`` replies: one per symbol after its first pushes, and one for BTCUSDT
  after the gap (what a recording client would have fetched);
- the subscribe answer, a ``{"method":"PING"}`` and its ``PONG``.
"""

from __future__ import annotations

import gzip
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parents[3]))
from mdplatform.exchanges.mexc import encode_push

HERE = Path(__file__).parent
OUT = HERE / "mexc_spot.ws.gz"
URL = "wss://wbs-api.mexc.com/ws"
REST = "https://api.mexc.com/api/v3/depth?symbol={}&limit=5000"
T0 = 1767571200000  # 2026-01-05 00:00:00 UTC, ms
END = T0 + 160_000
LATENCY_MS = 4
DEALS = "spot@public.aggre.deals.v3.api.pb@100ms"
DEPTH = "spot@public.aggre.depth.v3.api.pb@100ms"
TICKER = "spot@public.aggre.bookTicker.v3.api.pb@100ms"
KLINE = "spot@public.kline.v3.api.pb@BTCUSDT@Min1"
#: the BTCUSDT depth push left out (its index among BTCUSDT pushes)
DROPPED = 90


def dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


@dataclass
class Book:
    symbol: str
    version: int
    tick: Decimal
    mid: Decimal
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i in range(1, 11):
            self.bids[self.mid - i * self.tick] = Decimal(i) / 4
            self.asks[self.mid + i * self.tick] = Decimal(11 - i) / 4

    def snapshot(self, ts: int) -> str:
        def side(levels: dict[Decimal, Decimal], reverse: bool) -> list[list[str]]:
            return [[f"{p:.2f}", f"{q:.8f}"] for p, q in sorted(levels.items(), reverse=reverse)]

        body = {
            "lastUpdateId": self.version,
            "bids": side(self.bids, True),
            "asks": side(self.asks, False),
            "timestamp": ts,
        }
        return dumps(body)


def depth_pushes(book: Book, start: int, every: int, count: int) -> list[tuple[int, dict[str, object], str]]:
    """(sendTime, push, the book's snapshot right after it) of ``count`` pushes from ``start``."""
    out = []
    for k in range(count):
        ts = start + k * every
        changes: list[tuple[str, Decimal, Decimal]] = []
        if k == DROPPED + 1 and book.symbol == "BTCUSDT":
            # the push after the one left out: it sets the levels the lost one changed again (see the docstring)
            changes = [("bids", book.mid - 2 * book.tick, Decimal("3.50000000")), ("asks", book.mid + 3 * book.tick, 0)]
        else:
            side = "bids" if k % 2 == 0 else "asks"
            sign = -1 if side == "bids" else 1
            level = book.mid + sign * (1 + k % 6) * book.tick
            size = Decimal(0) if k % 7 == 3 else Decimal((k * 37) % 29 + 1) / 8
            changes.append((side, level, size))
            if k % 3 == 0:
                other = "asks" if side == "bids" else "bids"
                osign = 1 if other == "asks" else -1
                changes.append((other, book.mid + osign * (2 + k % 5) * book.tick, Decimal((k * 11) % 13 + 1) / 4))
            if k == DROPPED and book.symbol == "BTCUSDT":
                changes = [
                    ("bids", book.mid - 2 * book.tick, Decimal("9.25000000")),
                    ("asks", book.mid + 3 * book.tick, 1),
                ]
        first = book.version + 1
        for side, price, size in changes:
            levels = book.bids if side == "bids" else book.asks
            if size == 0:
                levels.pop(price, None)
            else:
                levels[price] = size
            book.version += 1
        bids = [{"price": f"{p:.2f}", "quantity": f"{q:.8f}"} for s, p, q in changes if s == "bids"]
        asks = [{"price": f"{p:.2f}", "quantity": f"{q:.8f}"} for s, p, q in changes if s == "asks"]
        body: dict[str, object] = {}
        if asks:
            body["asks"] = asks
        if bids:
            body["bids"] = bids
        body |= {"eventType": DEPTH, "fromVersion": str(first), "toVersion": str(book.version)}
        push = {
            "channel": f"{DEPTH}@{book.symbol}",
            "symbol": book.symbol,
            "sendTime": str(ts),
            "publicAggreDepths": body,
        }
        out.append((ts, push, book.snapshot(ts)))
    return out


def deal_pushes(
    symbol: str, start: int, every: int, base: Decimal, qty_scale: int
) -> list[tuple[int, dict[str, object]]]:
    out = []
    n = 0
    k = 0
    while start + k * every < END - 5_000:
        t = start + k * every
        deals = []
        for j in range(1 + k % 3):
            n += 1
            price = base + Decimal((n * 7) % 13 - 6) / 100
            order = 731579883561406466 + 2 * n
            deals.append(
                {
                    "price": f"{price:.2f}",
                    "quantity": f"{Decimal((n * 13) % 17 + 1) / qty_scale:.8f}",
                    "tradeType": 2 if n % 3 == 0 else 1,
                    "time": str(t + 3 * j),
                    "tradeId": f"{order}X{n % 2}_{order + 1}X{n % 2}",
                }
            )
        send = t + 3 * (len(deals) - 1) + 2
        push = {
            "channel": f"{DEALS}@{symbol}",
            "symbol": symbol,
            "sendTime": str(send),
            "publicAggreDeals": {"deals": deals, "eventType": DEALS},
        }
        out.append((send, push))
        k += 1
    return out


def ticker_pushes() -> list[tuple[int, dict[str, object]]]:
    out = []
    for k in range(75):
        t = T0 + 1_000 + 2_000 * k
        push = {
            "channel": f"{TICKER}@BTCUSDT",
            "symbol": "BTCUSDT",
            "sendTime": str(t),
            "publicAggreBookTicker": {
                "bidPrice": f"{Decimal('93219.99') - k % 3:.2f}",
                "bidQuantity": f"{Decimal(k % 5 + 1) / 10:.8f}",
                "askPrice": f"{Decimal('93220.01') + k % 2:.2f}",
                "askQuantity": f"{Decimal(k % 4 + 1) / 10:.8f}",
            },
        }
        out.append((t, push))
    return out


def kline_pushes(deals: list[tuple[int, dict[str, object]]]) -> list[tuple[int, dict[str, object]]]:
    """The current one-minute kline of BTCUSDT every second (at x.999), from the deals sent so far in its window."""
    trades = [d for _, push in deals for d in push["publicAggreDeals"]["deals"]]  # type: ignore[index]
    out = []
    for k in range(156):
        t = T0 + k * 1000 + 999
        start = t - (t - T0) % 60_000
        window = [d for d in trades if start <= int(d["time"]) <= t]
        if not window:
            continue
        prices = [Decimal(d["price"]) for d in window]
        push = {
            "channel": KLINE,
            "symbol": "BTCUSDT",
            "symbolId": "2fb942154ef44a4ab2ef98c8afb6a4a7",
            "createTime": str(t),
            "publicSpotKline": {
                "interval": "Min1",
                "windowStart": str(start // 1000),
                "openingPrice": str(prices[0]),
                "closingPrice": str(prices[-1]),
                "highestPrice": str(max(prices)),
                "lowestPrice": str(min(prices)),
                "volume": str(sum(Decimal(d["quantity"]) for d in window)),
                "amount": str(sum(Decimal(d["quantity"]) * Decimal(d["price"]) for d in window)),
                "windowEnd": str(start // 1000 + 60),
            },
        }
        out.append((t, push))
    return out


def frame_line(recv_ms: int, push: dict[str, object]) -> tuple[int, str]:
    return recv_ms, f"{recv_ms / 1000:.6f}: {encode_push(push)!r}"


def build() -> list[str]:
    lines: list[tuple[int, str]] = []
    btc = Book("BTCUSDT", 10589632300, Decimal("0.01"), Decimal("93220.00"))
    eth = Book("ETHUSDT", 4410772000, Decimal("0.01"), Decimal("3310.50"))
    btc_pushes = depth_pushes(btc, T0 + 600, 500, 310)
    eth_pushes = depth_pushes(eth, T0 + 650, 500, 310)
    for i, (ts, push, _) in enumerate(btc_pushes):
        if i != DROPPED:
            lines.append(frame_line(ts + LATENCY_MS, push))
    for ts, push, _ in eth_pushes:
        lines.append(frame_line(ts + LATENCY_MS, push))
    # the REST snapshots: after the second push of each symbol, and for BTCUSDT after the gap
    for pushes, symbol, i in (
        (btc_pushes, "BTCUSDT", 1),
        (eth_pushes, "ETHUSDT", 1),
        (btc_pushes, "BTCUSDT", DROPPED + 1),
    ):
        ts, _, snap = pushes[i]
        recv = ts + 150
        lines.append((recv, f"{REST.format(symbol)} -> {recv / 1000:.6f}: {snap}"))
    btc_deals = deal_pushes("BTCUSDT", T0 + 700, 3_100, Decimal("93220.00"), 10_000)
    for ts, push in btc_deals:
        lines.append(frame_line(ts + LATENCY_MS, push))
    for ts, push in kline_pushes(btc_deals):
        lines.append(frame_line(ts + LATENCY_MS, push))
    for ts, push in deal_pushes("ETHUSDT", T0 + 900, 4_300, Decimal("3310.50"), 1_000):
        lines.append(frame_line(ts + LATENCY_MS, push))
    for ts, push in ticker_pushes():
        lines.append(frame_line(ts + LATENCY_MS, push))
    params = [
        f"{ch}@{s}"
        for s in ("BTCUSDT", "ETHUSDT")
        for ch in (DEALS, DEPTH, TICKER)
        if not (ch == TICKER and s == "ETHUSDT")
    ] + [KLINE]
    lines.append((T0 + 500, f"{URL} <-> {(T0 + 500) / 1000:.6f}"))
    lines.append((T0 + 520, f"{URL} <- {(T0 + 520) / 1000:.6f}: {dumps({'method': 'SUBSCRIPTION', 'params': params})}"))
    lines.append((T0 + 560, f"{(T0 + 560) / 1000:.6f}: {dumps({'id': 0, 'code': 0, 'msg': ','.join(params)})}"))
    lines.append((T0 + 30_000, f"{URL} <- {(T0 + 30_000) / 1000:.6f}: {dumps({'method': 'PING'})}"))
    lines.append((T0 + 30_030, f"{(T0 + 30_030) / 1000:.6f}: {dumps({'id': 0, 'code': 0, 'msg': 'PONG'})}"))
    lines.sort(key=lambda x: x[0])
    return [line for _, line in lines]


def main() -> None:
    text = "\n".join(build()) + "\n"
    OUT.write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))
    print(f"wrote {OUT} ({len(text.splitlines())} lines)")


if __name__ == "__main__":
    main()
