"""An independent, plain-Python reading of the Binance recordings and of the candle rules, to check the polars
transforms and the Dagster assets against (deliberately shares no code with mdplatform.transforms).

Exact: prices and sizes are ``decimal.Decimal`` from the frames' strings.

The rules, as documented in mdplatform.transforms._candles/_coverage, restated here independently:
- a capture is observed from its first exchange time (the first frame's ``E``) to its end (its last trade's time,
  or the last frame's ``E`` less 1 s of grace, whichever is later); files of one recording are bridged by
  consecutive trade ids; a stretch where ids jump is not observed;
- a 1m candle is published when its minute ended by the end of observation and some of it was observed;
  ``complete`` when the minute was wholly observed; a minute without trades gets a flat candle only when wholly
  observed and preceded by an unbroken run of complete minutes back to a complete minute with trades;
- longer candles aggregate the published 1m candles of their span; complete when all their minutes are.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl

MIN = 60 * 10**9
HOUR = 60 * MIN
GRACE = 10**9
TF = {"1m": MIN, "5m": 5 * MIN, "15m": 15 * MIN, "1h": HOUR, "4h": 4 * HOUR, "1d": 24 * HOUR}
P12 = Decimal("1e-12")

H23 = 1723158000 * 10**9  # 2024-08-08 23:00 UTC
H00 = H23 + HOUR  # 2024-08-09 00:00 UTC


@dataclass(frozen=True)
class Trade:
    ts: int
    trade_id: int
    price: Decimal
    size: Decimal
    buy: bool
    recv: int
    fills: int = 1


@dataclass(frozen=True)
class Recording:
    lines: list[tuple[int, str]]  # (recv ns, frame) of every file, in order
    trades: list[Trade]
    #: per file: (first exchange time seen, last frame's E) ns
    sessions: list[tuple[int, int]]

    @property
    def observed(self) -> tuple[int, int]:
        """[start, end] of exchange time the recording observed (no cuts: one stretch)."""
        last_trade = max(t.ts for t in self.trades)
        return self.sessions[0][0], max(last_trade, self.sessions[-1][1] - GRACE)


def spot_files(shared_data: Path) -> list[Path]:
    base = shared_data / "binance-hftbacktest" / "spot"
    return [base / "btcusdt_20240808.gz", base / "btcusdt_20240809.gz"]


def usdm_file(shared_data: Path) -> Path:
    return shared_data / "binance-hftbacktest" / "usdm" / "btcusdt_20240808.gz"


def read_lines(path: Path) -> list[tuple[int, str]]:
    with gzip.open(path, "rt") as fh:
        return [(int(r), f) for r, f in (line.rstrip("\n").split(" ", 1) for line in fh)]


def read_recording(paths: Iterable[Path], min_size: Decimal | None = None) -> Recording:
    """All frames; with ``min_size``, trade frames below it are left out (sparse trades)."""
    lines: list[tuple[int, str]] = []
    trades: list[Trade] = []
    sessions: list[tuple[int, int]] = []
    for path in paths:
        first_e = last_e = None
        for recv, frame in read_lines(path):
            obj = json.loads(frame)
            d = obj.get("data") or {}
            if "E" in d:
                first_e = d["E"] * 10**6 if first_e is None else first_e
                last_e = d["E"] * 10**6
            if obj.get("stream", "").endswith("@trade"):
                size = Decimal(d["q"])
                if min_size is not None and size < min_size:
                    continue
                trades.append(Trade(d["T"] * 10**6, d["t"], Decimal(d["p"]), size, not d["m"], recv))
            lines.append((recv, frame))
        assert first_e is not None and last_e is not None
        sessions.append((first_e, last_e))
    return Recording(lines, trades, sessions)


def write_lines(lines: Iterable[tuple[int, str]], path: Path) -> Path:
    with gzip.open(path, "wt") as fh:
        for recv, frame in lines:
            fh.write(f"{recv} {frame}\n")
    return path


def quiet_files(shared_data: Path, tmp: Path) -> list[Path]:
    """A quiet market made from the real spot recording: only the trades of >= 0.8 BTC, renumbered so their ids
    stay contiguous (nothing was missed, the others simply did not happen); depth and bookTicker flow as
    recorded. Minutes without a trade follow, one of them at 00:00."""
    sparse = read_recording(spot_files(shared_data), min_size=Decimal("0.8"))
    files = []
    next_id = 1
    for n, path in enumerate(spot_files(shared_data)):
        lines = []
        for recv, frame in (x for x in sparse.lines if (x[0] < H00) == (n == 0)):
            if '@trade"' in frame[:40]:
                obj = json.loads(frame)
                obj["data"]["t"] = next_id
                next_id += 1
                frame = json.dumps(obj, separators=(",", ":"))
            lines.append((recv, frame))
        files.append(write_lines(lines, tmp / path.name))
    return files


def as_agg_trades(files: list[list[tuple[int, str]]], *, keep_trades: bool = False) -> list[list[tuple[int, str]]]:
    """The recording (one list of lines per file) with its ``@trade`` frames turned into ``@aggTrade`` frames,
    built from Binance's documented aggTrade layout (https://developers.binance.com/docs/binance-spot-api-docs/
    web-socket-streams, "Aggregate Trade Streams": ``a`` aggregate id, ``p``/``q`` price and summed quantity,
    ``f``/``l`` first and last trade id, ``T`` trade time, ``m`` buyer is maker). Consecutive trades with the same
    time, price and side (one taker order filling at one price) become one aggregate, sent when its last trade was
    received; aggregate ids run on across files. No aggTrade recording of this market exists, hence the
    construction; the fills themselves are the real ones."""
    agg_id = 900_000_000
    result: list[list[tuple[int, str]]] = []
    for lines in files:
        out: list[tuple[int, str]] = []
        group: list[tuple[int, dict[str, object], str]] = []

        def flush(group: list[tuple[int, dict[str, object], str]], out: list[tuple[int, str]]) -> None:
            nonlocal agg_id
            if not group:
                return
            recv, last, stream = group[-1]
            qty = sum((Decimal(str(d["q"])) for _, d, _ in group), Decimal(0))
            agg = {
                "e": "aggTrade",
                "E": last["E"],
                "s": last["s"],
                "a": agg_id,
                "p": last["p"],
                "q": format(qty, "f"),
                "f": group[0][1]["t"],
                "l": last["t"],
                "T": last["T"],
                "m": last["m"],
                "M": True,
            }
            data = json.dumps({"stream": stream.replace("@trade", "@aggTrade"), "data": agg}, separators=(",", ":"))
            out.append((recv, data))
            agg_id += 1
            group.clear()

        for recv, frame in lines:
            if '@trade"' not in frame[:40]:
                out.append((recv, frame))
                continue
            if keep_trades:
                out.append((recv, frame))
            obj = json.loads(frame)
            d = obj["data"]
            if group and (group[-1][1]["T"], group[-1][1]["p"], group[-1][1]["m"]) != (d["T"], d["p"], d["m"]):
                flush(group, out)
            group.append((recv, d, obj["stream"]))
        flush(group, out)
        result.append(out)
    return result


def _quantize(x: Decimal) -> Decimal:
    return x.quantize(P12, rounding=ROUND_HALF_UP)


def reference_candles(
    trades: list[Trade], observed: list[tuple[int, int]], horizon: int, first_minute: int
) -> list[dict[str, object]]:
    """Every candle the rules publish for one symbol, given the stretches of exchange time observed (closed
    intervals, ns) and how far observation reached (``horizon``): 1m candles of the minutes from
    ``first_minute`` that ended by the horizon, and longer candles over them."""
    ordered = sorted(trades, key=lambda t: (t.ts, t.trade_id))
    buckets: dict[int, list[Trade]] = {}
    for t in ordered:
        buckets.setdefault(t.ts - t.ts % MIN, []).append(t)

    def covered(m: int) -> int:
        return sum(max(0, min(e, m + MIN) - max(s, m)) for s, e in observed)

    minutes: dict[int, dict[str, object]] = {}
    price: Decimal | None = None  # known price carried forward, None after anything not wholly observed
    m = first_minute
    while m + MIN <= horizon:
        cov = covered(m)
        complete = cov >= MIN
        got = buckets.get(m)
        if got and cov > 0:
            quote = [t.price * t.size for t in got]
            row: dict[str, object] = {
                "open": got[0].price,
                "high": max(t.price for t in got),
                "low": min(t.price for t in got),
                "close": got[-1].price,
                "volume": sum((t.size for t in got), Decimal(0)),
                "quote_volume": sum(quote, Decimal(0)),
                "trade_count": sum(t.fills for t in got),
                "taker_buy_volume": sum((t.size for t in got if t.buy), Decimal(0)),
                "taker_buy_quote_volume": sum((q for q, t in zip(quote, got, strict=True) if t.buy), Decimal(0)),
            }
            price = got[-1].price if complete else None
        elif complete and price is not None:
            row = dict.fromkeys(("open", "high", "low", "close"), price)
            row |= dict.fromkeys(("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume"), Decimal(0))
            row["trade_count"] = 0
        else:
            price = None
            m += MIN
            continue
        row |= {"complete": complete, "coverage": cov / MIN}
        minutes[m] = row
        m += MIN

    out: list[dict[str, object]] = []
    for tf, length in TF.items():
        groups: dict[int, list[tuple[int, dict[str, object]]]] = {}
        for open_time, row in sorted(minutes.items()):
            groups.setdefault(open_time - open_time % length, []).append((open_time, row))
        for open_time, rows in sorted(groups.items()):
            if open_time + length > horizon:
                continue
            vals = [r for _, r in rows]
            volume = sum((r["volume"] for r in vals), Decimal(0))  # type: ignore[misc]
            quote = sum((r["quote_volume"] for r in vals), Decimal(0))  # type: ignore[misc]
            close = vals[-1]["close"]
            out.append(
                {
                    "timeframe": tf,
                    "open_time": open_time,
                    "close_time": open_time + length,
                    "open": vals[0]["open"],
                    "high": max(r["high"] for r in vals),  # type: ignore[type-var]
                    "low": min(r["low"] for r in vals),  # type: ignore[type-var]
                    "close": close,
                    "volume": volume,
                    "quote_volume": quote,
                    "trade_count": sum(int(r["trade_count"]) for r in vals),  # type: ignore[call-overload]
                    "taker_buy_volume": sum((r["taker_buy_volume"] for r in vals), Decimal(0)),  # type: ignore[misc]
                    "taker_buy_quote_volume": sum((r["taker_buy_quote_volume"] for r in vals), Decimal(0)),  # type: ignore[misc]
                    "vwap": _quantize(quote / volume) if volume > 0 else close,
                    "complete": len(vals) == length // MIN and all(bool(r["complete"]) for r in vals),
                    "coverage": round(sum(float(r["coverage"]) for r in vals) / (length // MIN), 6),  # type: ignore[arg-type]
                }
            )
    return out


def candle_rows(df: pl.DataFrame) -> list[dict[str, object]]:
    """CANDLES rows as dicts with ns int times (DuckDB's are microseconds), for comparison with
    ``reference_candles``."""
    times = pl.col("open_time", "close_time").cast(pl.Datetime("ns", "UTC")).cast(pl.Int64)
    return df.with_columns(times).to_dicts()


def assert_candles_match(rows: list[dict[str, object]], expected: list[dict[str, object]]) -> None:
    """Field by field, exactly (coverage to 1e-6)."""
    key = lambda r: (list(TF).index(str(r["timeframe"])), r["open_time"])  # noqa: E731
    got, want = sorted(rows, key=key), sorted(expected, key=key)
    assert [key(r) for r in got] == [key(r) for r in want]
    for g, w in zip(got, want, strict=True):
        for field, value in w.items():
            if field == "coverage":
                assert abs(float(g[field]) - float(value)) < 1e-6, (w["timeframe"], w["open_time"], field)  # type: ignore[arg-type]
            else:
                assert g[field] == value, (w["timeframe"], w["open_time"], field, g[field], value)


def raw_frame(
    lines: list[tuple[int, str]], conn_id: str = "capture:btcusdt", exchange: str = "binance"
) -> pl.DataFrame:
    """Frames as raw lake rows (channel/symbol from the exchange module's router)."""
    from mdplatform.exchanges import get_exchange
    from mdplatform.schemas import RAW

    route = get_exchange(exchange).route
    channels, symbols = zip(*(route(frame) for _, frame in lines), strict=True)
    return pl.DataFrame(
        {
            "recv_ts": [r for r, _ in lines],
            "exchange": exchange,
            "channel": list(channels),
            "symbol": list(symbols),
            "conn_id": conn_id,
            "seq": list(range(1, len(lines) + 1)),
            "payload": [f for _, f in lines],
        }
    ).cast(RAW)  # type: ignore[arg-type]
