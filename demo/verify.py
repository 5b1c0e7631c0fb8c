"""An independent reference for the demo's checks: trades and 1m candles straight from a recording.

Deliberately plain Python over the capture lines, sharing no code with mdplatform's polars transforms, so that
agreement between the two means something.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path

MINUTE_NS = 60 * 10**9


def recorded_trades(paths: Iterable[Path], shift_ns: int = 0) -> dict[str, list[tuple[int, int, float, float, bool]]]:
    """symbol -> [(trade ts ns shifted, trade id, price, qty, taker is buyer)] from Binance `@trade` frames."""
    out: dict[str, list[tuple[int, int, float, float, bool]]] = {}
    for path in paths:
        with gzip.open(path, "rt") as fh:
            for line in fh:
                _, msg = line.split(" ", 1)
                if '@trade"' not in msg[:40]:
                    continue
                d = json.loads(msg)["data"]
                row = (d["T"] * 1_000_000 + shift_ns, d["t"], float(d["p"]), float(d["q"]), not d["m"])
                out.setdefault(d["s"], []).append(row)
    for rows in out.values():
        rows.sort(key=lambda r: (r[0], r[1]))
    return out


def reference_candles_1m(
    trades: list[tuple[int, int, float, float, bool]], until_ns: int
) -> dict[int, dict[str, float]]:
    """open_time ns -> candle, Binance style: flat candles at the previous close for minutes without trades;
    only candles that close at or before ``until_ns``."""
    candles: dict[int, dict[str, float]] = {}
    for ts, _tid, price, qty, taker_buy in trades:
        minute = ts - ts % MINUTE_NS
        c = candles.get(minute)
        if c is None:
            c = candles[minute] = {
                "open": price,
                "high": price,
                "low": price,
                "close": price,
                "volume": 0.0,
                "quote_volume": 0.0,
                "trade_count": 0,
                "taker_buy_volume": 0.0,
                "taker_buy_quote_volume": 0.0,
            }
        c["high"] = max(c["high"], price)
        c["low"] = min(c["low"], price)
        c["close"] = price
        c["volume"] += qty
        c["quote_volume"] += price * qty
        c["trade_count"] += 1
        if taker_buy:
            c["taker_buy_volume"] += qty
            c["taker_buy_quote_volume"] += price * qty
    if not candles:
        return {}
    minute = min(candles)
    last_close = candles[minute]["close"]
    while minute + MINUTE_NS <= until_ns:
        if minute in candles:
            last_close = candles[minute]["close"]
        else:
            candles[minute] = {
                "open": last_close,
                "high": last_close,
                "low": last_close,
                "close": last_close,
                "volume": 0.0,
                "quote_volume": 0.0,
                "trade_count": 0,
                "taker_buy_volume": 0.0,
                "taker_buy_quote_volume": 0.0,
            }
        minute += MINUTE_NS
    for c in candles.values():
        c["vwap"] = c["quote_volume"] / c["volume"] if c["volume"] else c["close"]
    return {m: c for m, c in candles.items() if m + MINUTE_NS <= until_ns}


def compare_candles(
    ours: dict[int, dict[str, float]], reference: dict[int, dict[str, float]], rel: float = 1e-9
) -> list[str]:
    """Human-readable differences (empty when equal field by field)."""
    problems = []
    if set(ours) != set(reference):
        missing = sorted(set(reference) - set(ours))
        extra = sorted(set(ours) - set(reference))
        problems.append(f"candle sets differ: {len(missing)} missing, {len(extra)} extra")
    for minute in sorted(set(ours) & set(reference)):
        for field, want in reference[minute].items():
            got = ours[minute][field]
            if abs(got - want) > rel * max(1.0, abs(want)):
                problems.append(f"{minute}: {field} {got!r} != {want!r}")
    return problems
