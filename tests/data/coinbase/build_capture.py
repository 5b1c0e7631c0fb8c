"""Builds ``advanced-trade.ws.gz``: a Coinbase Advanced Trade session in cryptofeed's text format, made from the
documented message layouts (docs.cdp.coinbase.com, "Advanced Trade WebSocket Channels" and the per-channel
reference pages: subscriptions, heartbeats, l2_data, market_trades, ticker, candles). NOT a real recording: no
Advanced Trade recording exists in ../shared/data (its COINBASE.ws.28.0.gz is the retired Coinbase Exchange feed).

One connection subscribes market_trades, level2, ticker, candles (BTC-USD, ETH-USD) and heartbeats; then 170 s of
frames, one ``sequence_num`` per frame across all channels. Trade ids are contiguous per product; the trades
snapshot on subscribe repeats trades from before the session. One BTC-USD l2_data update (the one that would carry
``GAP_AT``) is left out, its number skipped: the forced sequence gap. Run ``python build_capture.py`` to rebuild.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

URL = "wss://advanced-trade-ws.coinbase.com"
#: exchange time of the first data frame: 2026-03-02T09:59:58Z
T0_NS = 1_772_445_598_000_000_000
SECOND = 1_000_000_000
#: receive lag of every frame behind its exchange timestamp
LAG = 30_000_000
DURATION_S = 170
#: seconds after T0 of the l2_data update left out (its sequence number is skipped)
GAP_AT = 61.5
PRODUCTS = ("BTC-USD", "ETH-USD")


def rfc3339(ns: int, digits: int = 9) -> str:
    import datetime as dt

    seconds, frac = divmod(ns, SECOND)
    text = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + ("." + f"{frac:09d}"[:digits] if digits else "") + "Z"


class Session:
    def __init__(self) -> None:
        self.lines: list[str] = [f"{URL} <-> {(T0_NS - 2 * SECOND) / SECOND:.6f}"]
        self.seq = 0

    def sent(self, ns: int, msg: dict[str, object]) -> None:
        self.lines.append(f"{URL} <- {ns / SECOND:.6f}: {json.dumps(msg, separators=(',', ':'))}")

    def frame(self, ns: int, channel: str, events: list[object], *, skip: bool = False) -> None:
        """One server frame stamped ``ns``, numbered next; ``skip``: numbered but left out of the recording."""
        msg = {
            "channel": channel,
            "client_id": "",
            "timestamp": rfc3339(ns),
            "sequence_num": self.seq,
            "events": events,
        }
        self.seq += 1
        if not skip:
            recv = ns + LAG
            self.lines.append(f"{recv // SECOND}.{recv % SECOND:09d}: {json.dumps(msg, separators=(',', ':'))}")


def level(side: str, price: str, qty: str, ns: int) -> dict[str, str]:
    return {"side": side, "event_time": rfc3339(ns, 6), "price_level": price, "new_quantity": qty}


BASE = {"BTC-USD": (60000, 2), "ETH-USD": (3000, 2)}


def book_snapshot(product: str, ns: int) -> dict[str, object]:
    mid, _ = BASE[product]
    updates = [level("bid", f"{mid - 1 - i}.{50 - i:02d}", f"{1 + i}.{i:02d}000000", ns) for i in range(5)]
    updates += [level("offer", f"{mid + i}.{51 + i:02d}", f"{2 + i}.{10 + i:02d}000000", ns) for i in range(5)]
    return {"type": "snapshot", "product_id": product, "updates": updates}


def book_update(product: str, k: int, ns: int) -> dict[str, object]:
    """Step ``k``: resize a bid and an offer; every 4th step empties the fifth bid level and every 6th fills it."""
    mid, _ = BASE[product]
    i = k % 4
    updates = [
        level("bid", f"{mid - 1 - i}.{50 - i:02d}", f"{1 + i}.{k % 97:02d}{k % 7}", ns),
        level("offer", f"{mid + i}.{51 + i:02d}", f"{3 + i}.{k % 89:02d}1", ns),
    ]
    if k % 4 == 0:
        updates.append(level("bid", f"{mid - 5}.46", "0", ns))
    if k % 6 == 0:
        updates.append(level("bid", f"{mid - 5}.46", f"0.{k:04d}", ns))
    return {"type": "update", "product_id": product, "updates": updates}


def trade(product: str, trade_id: int, ns: int, k: int) -> dict[str, str]:
    mid, _ = BASE[product]
    return {
        "trade_id": str(trade_id),
        "product_id": product,
        "price": f"{mid + (k % 13) - 6}.{(k * 37) % 100:02d}",
        "size": f"0.{(k * 7919 + 1234) % 100_000_000:08d}",
        # the maker's side (see the exchange module): alternating, BUY on even ids
        "side": "BUY" if trade_id % 2 == 0 else "SELL",
        "time": rfc3339(ns, 6),
    }


def build() -> list[str]:
    s = Session()
    t = T0_NS - SECOND
    for channel in ("market_trades", "level2", "ticker", "candles"):
        s.sent(t, {"type": "subscribe", "product_ids": list(PRODUCTS), "channel": channel})
    s.sent(t, {"type": "subscribe", "channel": "heartbeats"})
    subs: dict[str, list[str]] = {}
    for channel in ("market_trades", "level2", "ticker", "candles", "heartbeats"):
        subs[channel] = ["heartbeats"] if channel == "heartbeats" else list(PRODUCTS)
        s.frame(t + 100_000, "subscriptions", [{"subscriptions": dict(subs)}])
    t = T0_NS
    for product in PRODUCTS:
        s.frame(t, "l2_data", [book_snapshot(product, t)])
    next_id = {"BTC-USD": 1000, "ETH-USD": 7000}
    for product in PRODUCTS:
        # recent trades from before the session, newest first (ids next_id-5 .. next_id-1)
        recent = [trade(product, next_id[product] - 1 - j, t - (j + 1) * SECOND, j) for j in range(5)]
        s.frame(t, "market_trades", [{"type": "snapshot", "trades": recent}])
    s.frame(t, "ticker", [{"type": "snapshot", "tickers": [ticker(p, 0) for p in PRODUCTS]}])
    s.frame(t, "candles", [{"type": "snapshot", "candles": [candle(p, t) for p in PRODUCTS]}])
    steps = DURATION_S * 4
    for n in range(1, steps + 1):
        ns = T0_NS + n * SECOND // 4
        if n % 4 == 0:
            s.frame(ns, "heartbeats", [{"current_time": rfc3339(ns), "heartbeat_counter": str(n // 4)}])
        if n % 2 == 0:
            s.frame(ns, "l2_data", [book_update("BTC-USD", n // 2, ns)], skip=(n == GAP_AT * 4))
        if n % 4 == 2:
            s.frame(ns, "l2_data", [book_update("ETH-USD", n // 4, ns)])
        for product, every in (("BTC-USD", 3), ("ETH-USD", 7)):
            if n % every == 1:
                count = 1 + n % 2 if product == "BTC-USD" else 1
                trades = []
                for j in range(count):
                    trades.append(trade(product, next_id[product], ns - (count - 1 - j) * 1000, n + j))
                    next_id[product] += 1
                s.frame(ns, "market_trades", [{"type": "update", "trades": trades[::-1]}])
        if n % 20 == 5:
            s.frame(ns, "ticker", [{"type": "update", "tickers": [ticker("BTC-USD", n)]}])
        if n % 40 == 7:
            s.frame(ns, "candles", [{"type": "update", "candles": [candle("BTC-USD", ns)]}])
    return s.lines


def ticker(product: str, n: int) -> dict[str, str]:
    mid, _ = BASE[product]
    return {
        "type": "ticker",
        "product_id": product,
        "price": f"{mid}.{n % 100:02d}",
        "volume_24_h": "1234.5678",
        "low_24_h": f"{mid - 100}",
        "high_24_h": f"{mid + 100}",
        "low_52_w": f"{mid - 1000}",
        "high_52_w": f"{mid + 1000}",
        "price_percent_chg_24_h": "0.5",
        "best_bid": f"{mid - 1}.50",
        "best_bid_quantity": "1.00000000",
        "best_ask": f"{mid}.51",
        "best_ask_quantity": "2.10000000",
    }


def candle(product: str, ns: int) -> dict[str, str]:
    mid, _ = BASE[product]
    start = ns // SECOND // 300 * 300
    return {
        "start": str(start),
        "high": f"{mid + 6}",
        "low": f"{mid - 6}",
        "open": f"{mid}",
        "close": f"{mid + 1}",
        "volume": "3.5",
        "product_id": product,
    }


def main() -> None:
    target = Path(__file__).with_name("advanced-trade.ws.gz")
    with gzip.GzipFile(target, "wb", mtime=0) as raw:
        raw.write(("\n".join(build()) + "\n").encode())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
