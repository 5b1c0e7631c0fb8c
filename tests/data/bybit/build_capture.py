"""Writes ``bybit_linear_xrpusdt.ws.gz`` (cryptofeed text format: ``<url> <-> <s>`` connect, ``<url> <- <s>: <sent>``,
``<s>: <received>``) for tests/e2e/test_bybit_live.py and the replay
tests: run ``python tests/data/bybit/build_capture.py`` from the repository root; the output is deterministic.

What is real and what is built:
- ``orderbook.500.XRPUSDT``: the real recording ``2024-12-01_XRPUSDT_ob500.data`` (nautilus_trader test data,
  LGPL-3.0, LICENSE alongside), frames unchanged, except that one delta (u=20254899) is left out to force a sequence
  gap. Receive times are each frame's ``ts`` + 4 ms.
- Everything else is built from the Bybit v5 docs (websocket/public/trade, ticker, kline, orderbook and ws/connect
  pages): ``publicTrade.XRPUSDT`` over 00:00:00-00:02:40 UTC (several trades per push, Buy and Sell takers, UUID ids,
  one block trade), ``publicTrade.BTCUSDT``, ``orderbook.500.BTCUSDT`` (a small snapshot and 9 deltas, u contiguous),
  ``tickers.XRPUSDT`` (snapshot then deltas), ``kline.1.XRPUSDT``, a subscribe ack and a pong.
"""

from __future__ import annotations

import gzip
import uuid
from decimal import Decimal
from pathlib import Path

import orjson

HERE = Path(__file__).parent
URL = "wss://stream.bybit.com/v5/public/linear"
OUT = HERE / "bybit_linear_xrpusdt.ws.gz"
#: the delta left out of the real recording (its successor reveals the gap)
DROPPED_U = 20254899
T0 = 1733011200000  # 2024-12-01 00:00:00 UTC, ms
LATENCY_MS = 4
NS = uuid.UUID("6f1c8a52-3f1e-4c38-9d2a-4b3e5a0c7d11")


def dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def xrp_trades() -> list[tuple[int, str]]:
    """(ts, push) of built XRPUSDT publicTrade pushes: one every 3.7 s from 00:00:00.700, 1-3 trades each."""
    out = []
    n = 0
    for k in range(44):
        base = T0 + 700 + k * 3700
        data = []
        for j in range(1 + k % 3):
            n += 1
            price = Decimal("1.9530") + Decimal((n * 7) % 13 - 6) / 10_000
            data.append(
                {
                    "T": base + 3 * j,
                    "s": "XRPUSDT",
                    "S": "Sell" if n % 3 == 0 else "Buy",
                    "v": str(10 * (1 + (n * 13) % 17)),
                    "p": f"{price:.4f}",
                    "L": "PlusTick" if n % 2 else "MinusTick",
                    "i": str(uuid.uuid5(NS, f"XRPUSDT-{n}")),
                    "BT": n == 10,
                }
            )
        ts = data[-1]["T"] + 2
        out.append((ts, dumps({"topic": "publicTrade.XRPUSDT", "type": "snapshot", "ts": ts, "data": data})))
    return out


def btc_trades() -> list[tuple[int, str]]:
    out = []
    for k in range(30):
        t = T0 + 1_200 + k * 5_000
        data = [
            {
                "T": t,
                "s": "BTCUSDT",
                "S": "Buy" if k % 2 == 0 else "Sell",
                "v": f"0.0{k + 1:02d}",
                "p": f"{96400 + k * 5}.{k % 10}0",
                "L": "ZeroPlusTick",
                "i": str(uuid.uuid5(NS, f"BTCUSDT-{k}")),
                "BT": False,
            }
        ]
        out.append((t + 1, dumps({"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": t + 1, "data": data})))
    return out


def btc_book() -> list[tuple[int, str]]:
    """orderbook.500.BTCUSDT: a 5-level snapshot, then 9 deltas (u 5001..5010 contiguous)."""
    out = []
    bids = [[f"{96400 - i}.00", f"{i + 1}.000"] for i in range(5)]
    asks = [[f"{96401 + i}.00", f"{i + 2}.000"] for i in range(5)]
    ts = T0 + 650
    snap = {"s": "BTCUSDT", "b": bids, "a": asks, "u": 5001, "seq": 90000001}
    out.append(
        (ts, dumps({"topic": "orderbook.500.BTCUSDT", "type": "snapshot", "ts": ts, "data": snap, "cts": ts - 2}))
    )
    for k in range(1, 10):
        ts = T0 + 650 + k * 450
        b = [[f"{96400 - k % 5}.00", f"{k}.500"]] if k % 2 else []
        a = [[f"{96401 + k % 5}.00", "0" if k == 4 else f"{k}.250"]]
        data = {"s": "BTCUSDT", "b": b, "a": a, "u": 5001 + k, "seq": 90000001 + 3 * k}
        msg = {"topic": "orderbook.500.BTCUSDT", "type": "delta", "ts": ts, "data": data, "cts": ts - 2}
        out.append((ts, dumps(msg)))
    return out


def xrp_book() -> list[tuple[int, str]]:
    out = []
    for line in (HERE / "2024-12-01_XRPUSDT_ob500.data").read_text().splitlines():
        msg = orjson.loads(line)
        if msg["data"]["u"] == DROPPED_U:
            continue
        out.append((msg["ts"], line))
    return out


def tickers() -> list[tuple[int, str]]:
    out = []
    ts = T0 + 900
    snap = {
        "symbol": "XRPUSDT",
        "tickDirection": "PlusTick",
        "price24hPcnt": "0.041233",
        "lastPrice": "1.9531",
        "prevPrice24h": "1.8757",
        "highPrice24h": "1.9800",
        "lowPrice24h": "1.8600",
        "prevPrice1h": "1.9400",
        "markPrice": "1.9532",
        "indexPrice": "1.9538",
        "openInterest": "212345678",
        "openInterestValue": "414746278.37",
        "turnover24h": "2345678901.1234",
        "volume24h": "1234567890",
        "nextFundingTime": "1733011200000",
        "fundingRate": "0.0001",
        "bid1Price": "1.9531",
        "bid1Size": "6203",
        "ask1Price": "1.9532",
        "ask1Size": "1877",
    }
    out.append(
        (ts, dumps({"topic": "tickers.XRPUSDT", "type": "snapshot", "data": snap, "cs": 130020239000, "ts": ts}))
    )
    for k in range(1, 16):
        ts = T0 + 900 + k * 10_000
        delta = {
            "symbol": "XRPUSDT",
            "markPrice": f"1.95{30 + k % 5}",
            "bid1Price": "1.9530",
            "bid1Size": str(1000 + k),
        }
        msg = {"topic": "tickers.XRPUSDT", "type": "delta", "data": delta, "cs": 130020239000 + k, "ts": ts}
        out.append((ts, dumps(msg)))
    return out


def klines() -> list[tuple[int, str]]:
    out = []
    for k in range(32):
        ts = T0 + 1_100 + k * 5_000
        start = ts - ts % 60_000
        item = {
            "start": start,
            "end": start + 59_999,
            "interval": "1",
            "open": "1.9531",
            "close": "1.9533",
            "high": "1.9535",
            "low": "1.9526",
            "volume": str(1000 * (k + 1)),
            "turnover": f"{1953.1 * (k + 1):.1f}",
            "confirm": False,
            "timestamp": ts,
        }
        out.append((ts, dumps({"topic": "kline.1.XRPUSDT", "data": [item], "ts": ts, "type": "snapshot"})))
    return out


def seconds(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}000"


def main() -> None:
    args = [f"{c}.{s}" for s in ("XRPUSDT", "BTCUSDT") for c in ("publicTrade", "orderbook.500", "tickers", "kline.1")]
    frames = xrp_book() + btc_book() + xrp_trades() + btc_trades() + tickers() + klines()
    recv = sorted((ts + LATENCY_MS, frame) for ts, frame in frames)
    ack = dumps({"success": True, "ret_msg": "", "conn_id": "cfe1a2b3c4d5-1a", "req_id": "", "op": "subscribe"})
    pong = dumps({"success": True, "ret_msg": "pong", "conn_id": "cfe1a2b3c4d5-1a", "req_id": "", "op": "ping"})
    lines = [
        f"{URL} <-> {seconds(T0 + 500)}",
        f"{URL} <- {seconds(T0 + 520)}: {dumps({'op': 'subscribe', 'args': args})}",
        f"{seconds(T0 + 560)}: {ack}",
    ]
    ponged = False
    for ms, frame in recv:
        if not ponged and ms > T0 + 60_000:
            lines.append(f"{URL} <- {seconds(T0 + 60_000)}: " + dumps({"op": "ping"}))
            lines.append(f"{seconds(T0 + 60_003)}: {pong}")
            ponged = True
        lines.append(f"{seconds(ms)}: {frame}")
    with gzip.GzipFile(OUT, "wb", mtime=0) as fh:
        fh.write(("\n".join(lines) + "\n").encode())


if __name__ == "__main__":
    main()
