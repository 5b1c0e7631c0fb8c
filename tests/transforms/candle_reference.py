"""An independent, plain-Python reading of the Binance spot recording and of the candle rules, to check the
polars transforms and the Dagster assets against (deliberately shares no code with mdplatform.transforms)."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

MIN = 60 * 10**9
HOUR = 60 * MIN
TF = {"1m": MIN, "5m": 5 * MIN, "15m": 15 * MIN, "1h": HOUR, "4h": 4 * HOUR, "1d": 24 * HOUR}

H23 = 1723158000 * 10**9  # 2024-08-08 23:00 UTC
H00 = H23 + HOUR  # 2024-08-09 00:00 UTC


@dataclass(frozen=True)
class Trade:
    ts: int
    trade_id: int
    price: float
    size: float
    buy: bool
    recv: int


@dataclass(frozen=True)
class Recording:
    lines: list[tuple[int, str]]  # (recv ns, frame)
    trades: list[Trade]

    @property
    def trade_end(self) -> int:
        return max(t.ts for t in self.trades)


def spot_files(shared_data: Path) -> list[Path]:
    base = shared_data / "binance-hftbacktest" / "spot"
    return [base / "btcusdt_20240808.gz", base / "btcusdt_20240809.gz"]


def read_recording(paths: list[Path], min_size: float | None = None) -> Recording:
    """All frames; with ``min_size``, trade frames below it are left out (sparse trades -> flat minutes)."""
    lines: list[tuple[int, str]] = []
    trades: list[Trade] = []
    for path in paths:
        with gzip.open(path, "rt") as fh:
            for line in fh:
                recv_text, frame = line.rstrip("\n").split(" ", 1)
                recv = int(recv_text)
                obj = json.loads(frame)
                if obj.get("stream", "").endswith("@trade"):
                    d = obj["data"]
                    size = float(d["q"])
                    if min_size is not None and size < min_size:
                        continue
                    trades.append(Trade(d["T"] * 10**6, d["t"], float(d["p"]), size, not d["m"], recv))
                lines.append((recv, frame))
    return Recording(lines, trades)


def write_recording(rec: Recording, path: Path) -> Path:
    with gzip.open(path, "wt") as fh:
        for recv, frame in rec.lines:
            fh.write(f"{recv} {frame}\n")
    return path


def _agg(rows: list[dict[str, float]], open_time: int, tf: str) -> dict[str, object]:
    volume = sum(r["volume"] for r in rows)
    quote = sum(r["quote_volume"] for r in rows)
    close = rows[-1]["close"]
    return {
        "timeframe": tf,
        "open_time": open_time,
        "close_time": open_time + TF[tf],
        "open": rows[0]["open"],
        "high": max(r["high"] for r in rows),
        "low": min(r["low"] for r in rows),
        "close": close,
        "volume": volume,
        "quote_volume": quote,
        "trade_count": sum(int(r["trade_count"]) for r in rows),
        "taker_buy_volume": sum(r["taker_buy_volume"] for r in rows),
        "taker_buy_quote_volume": sum(r["taker_buy_quote_volume"] for r in rows),
        "vwap": quote / volume if volume > 0 else close,
    }


def reference_candles(
    trades: list[Trade], hour: int, watermark: int, lookback: int = 24 * HOUR
) -> list[dict[str, object]]:
    """The candles partition ``hour`` publishes: close_time in (hour, hour + 1h], close_time <= watermark,
    1m flat-filled from the symbol's first trade (or from the range start when an earlier trade exists within
    the lookback), higher timeframes only when all their minutes exist."""
    end = hour + HOUR
    start = hour
    for length in TF.values():
        first_open = hour - hour % length
        if first_open + length <= end:
            start = min(start, first_open)
    ordered = sorted(trades, key=lambda t: (t.ts, t.trade_id))
    prev = None
    for t in ordered:
        if start - lookback <= t.ts < start:
            prev = t.price
    buckets: dict[int, list[Trade]] = {}
    for t in ordered:
        if start <= t.ts < end:
            buckets.setdefault(t.ts - t.ts % MIN, []).append(t)
    limit = min(end, watermark)
    stop = limit - limit % MIN
    first = start if prev is not None else (min(buckets) if buckets else stop)
    minutes: list[tuple[int, dict[str, float]]] = []
    last = prev
    m = first
    while m < stop:
        got = buckets.get(m)
        if got:
            volume = sum(t.size for t in got)
            quote = sum(t.price * t.size for t in got)
            row = {
                "open": got[0].price,
                "high": max(t.price for t in got),
                "low": min(t.price for t in got),
                "close": got[-1].price,
                "volume": volume,
                "quote_volume": quote,
                "trade_count": float(len(got)),
                "taker_buy_volume": sum(t.size for t in got if t.buy),
                "taker_buy_quote_volume": sum(t.price * t.size for t in got if t.buy),
            }
        else:
            assert last is not None
            row = dict.fromkeys(("open", "high", "low", "close"), last)
            row |= dict.fromkeys(
                ("volume", "quote_volume", "trade_count", "taker_buy_volume", "taker_buy_quote_volume"), 0.0
            )
        last = row["close"]
        minutes.append((m, row))
        m += MIN
    out: list[dict[str, object]] = []
    for tf, length in TF.items():
        groups: dict[int, list[dict[str, float]]] = {}
        for open_time, row in minutes:
            groups.setdefault(open_time - open_time % length, []).append(row)
        for open_time, rows in sorted(groups.items()):
            close_time = open_time + length
            if len(rows) == length // MIN and hour < close_time <= end:
                out.append(_agg(rows, open_time, tf))
    return out


def assert_candles_match(rows: list[dict[str, object]], expected: list[dict[str, object]]) -> None:
    """Field by field; floats to 1e-9 relative. ``rows``: candles as dicts with ns int times."""
    import math

    key = lambda r: (list(TF).index(str(r["timeframe"])), r["open_time"])  # noqa: E731
    got, want = sorted(rows, key=key), sorted(expected, key=key)
    assert [key(r) for r in got] == [key(r) for r in want]
    for g, w in zip(got, want, strict=True):
        for field, value in w.items():
            if isinstance(value, float):
                assert math.isclose(float(g[field]), value, rel_tol=1e-9, abs_tol=1e-12), (
                    w["open_time"],
                    field,
                )
            else:
                assert g[field] == value, (w["timeframe"], w["open_time"], field, g[field], value)


def raw_frame(rec: Recording, conn_id: str = "capture:btcusdt") -> pl.DataFrame:
    """The recording as raw lake rows (channel/symbol from the Binance module's router)."""
    from mdplatform.exchanges import get_exchange
    from mdplatform.schemas import RAW

    route = get_exchange("binance").route
    channels, symbols = zip(*(route(frame) for _, frame in rec.lines), strict=True)
    return pl.DataFrame(
        {
            "recv_ts": [r for r, _ in rec.lines],
            "exchange": "binance",
            "channel": list(channels),
            "symbol": list(symbols),
            "conn_id": conn_id,
            "seq": list(range(1, len(rec.lines) + 1)),
            "payload": [f for _, f in rec.lines],
        }
    ).cast(RAW)  # type: ignore[arg-type]
