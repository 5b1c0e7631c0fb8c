"""An independent reference for the demo's checks: trades and 1m candles straight from a recording.

Deliberately plain Python over the capture lines, sharing no code with mdplatform's transforms, so that agreement
between the two means something. Exact: prices and sizes are ``decimal.Decimal`` from the frames' strings.

The rules restated: the collector observed the market from the first exchange time it received (the first frame
carrying ``E``) to the last (the largest ``E`` less 1 s of grace, or the last trade's own time if later); a 1m
candle is published once its minute ended within that, ``complete`` when the whole minute was observed; a minute
without trades is a flat candle only when wholly observed after a complete minute with trades.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

MINUTE_NS = 60 * 10**9
GRACE_NS = 10**9
P12 = Decimal("1e-12")

#: (trade ts ns shifted, trade id, price, qty, taker is buyer)
Trade = tuple[int, int, Decimal, Decimal, bool]


def recorded(paths: Iterable[Path], shift_ns: int = 0) -> tuple[dict[str, list[Trade]], int, int]:
    """(symbol -> trades sorted, first exchange time, largest exchange time) of Binance captures, all shifted."""
    out: dict[str, list[Trade]] = {}
    first = last = None
    lines: list[tuple[int, str]] = []
    for path in paths:
        with gzip.open(path, "rt") as fh:
            lines += [(int(r), m) for r, m in (line.rstrip("\n").split(" ", 1) for line in fh)]
    for _, msg in sorted(lines, key=lambda x: x[0]):  # the order the replay sends them in
        obj = json.loads(msg)
        d = obj.get("data") or {}
        if "E" in d:
            e = d["E"] * 1_000_000 + shift_ns
            first = e if first is None else first
            last = e if last is None else max(last, e)
        if str(obj.get("stream", "")).endswith("@trade"):
            row = (d["T"] * 1_000_000 + shift_ns, d["t"], Decimal(d["p"]), Decimal(d["q"]), not d["m"])
            out.setdefault(d["s"], []).append(row)
    for rows in out.values():
        rows.sort(key=lambda r: (r[0], r[1]))
    assert first is not None and last is not None
    return out, first, last


def reference_candles_1m(trades: list[Trade], observed_from: int, observed_to: int) -> dict[int, dict[str, object]]:
    """open_time ns -> candle for the minutes that ended by ``observed_to``, from the first minute observed."""
    buckets: dict[int, list[Trade]] = {}
    for t in trades:
        buckets.setdefault(t[0] - t[0] % MINUTE_NS, []).append(t)
    candles: dict[int, dict[str, object]] = {}
    price: Decimal | None = None
    minute = min(observed_from - observed_from % MINUTE_NS, min(buckets, default=observed_from))
    while minute + MINUTE_NS <= observed_to:
        complete = observed_from <= minute and minute + MINUTE_NS <= observed_to
        got = buckets.get(minute) if minute + MINUTE_NS > observed_from else None
        if got:
            quote = [p * q for _, _, p, q, _ in got]
            volume = sum((q for _, _, _, q, _ in got), Decimal(0))
            candles[minute] = {
                "open": got[0][2],
                "high": max(t[2] for t in got),
                "low": min(t[2] for t in got),
                "close": got[-1][2],
                "volume": volume,
                "quote_volume": sum(quote, Decimal(0)),
                "trade_count": len(got),
                "taker_buy_volume": sum((t[3] for t in got if t[4]), Decimal(0)),
                "taker_buy_quote_volume": sum((x for x, t in zip(quote, got, strict=True) if t[4]), Decimal(0)),
                "vwap": (sum(quote, Decimal(0)) / volume).quantize(P12, rounding=ROUND_HALF_UP),
                "complete": complete,
            }
            price = got[-1][2] if complete else None
        elif complete and price is not None:
            zero = Decimal(0)
            candles[minute] = dict.fromkeys(("open", "high", "low", "close", "vwap"), price) | {
                "volume": zero,
                "quote_volume": zero,
                "trade_count": 0,
                "taker_buy_volume": zero,
                "taker_buy_quote_volume": zero,
                "complete": True,
            }
        else:
            price = None
        minute += MINUTE_NS
    return candles


def observed_span(trades: list[Trade], first_e: int, last_e: int) -> tuple[int, int]:
    """[from, to] of exchange time one symbol's trade stream was observed by a single live connection."""
    return first_e, max(trades[-1][0], last_e - GRACE_NS)


def compare_candles(ours: dict[int, dict[str, object]], reference: dict[int, dict[str, object]]) -> list[str]:
    """Human-readable differences (empty when equal field by field, exactly)."""
    problems = []
    if set(ours) != set(reference):
        missing = sorted(set(reference) - set(ours))
        extra = sorted(set(ours) - set(reference))
        problems.append(f"candle sets differ: {len(missing)} missing, {len(extra)} extra")
    for minute in sorted(set(ours) & set(reference)):
        for field, want in reference[minute].items():
            got = ours[minute][field]
            if got != want:
                problems.append(f"{minute}: {field} {got!r} != {want!r}")
    return problems
