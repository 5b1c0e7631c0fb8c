"""A single-pass reference for ``mdp materialize`` with books off: trades and 1m..1d candles of an hour range.

It reads what the platform reads (the lake's raw trade frames received in [from - lateness, to + lateness), and the
collector's events of that window) and writes what the platform writes for trades and candles: one trades Parquet
file per exchange-time hour (``trades/date=/hour=/data.parquet``, the platform's TRADES types: Decimal(38, 12) prices
and sizes), one candles file per close hour (``candles/...``, the CANDLES columns and types: Decimal(38, 18) quote
amounts), and with ``--duckdb`` the same rows inserted into a DuckDB file (the platform's DDL types). ``--float``
makes the same outputs with Float64 numbers (what exact decimals cost). It does not compute ``coverage`` rows,
quarantine, checks or Dagster bookkeeping.

Independent of ``mdplatform.transforms`` (it imports nothing from mdplatform): the rules are restated here from
lake/README.md and mdplatform/transforms/_candles.py:

- a trade is a Binance ``trade`` frame (``T`` trade time, ``t`` id, ``p``/``q`` strings, ``m`` buyer is maker: the
  taker sold); each id is kept once (its first receipt); the symbol is BASE-QUOTE;
- a 1m candle covers [open, open + 1 min); open/close the first/last trade by (time, id), volume and taker-buy
  volume sums of sizes, quote volumes sums of price x size (exact), trade_count the fills, vwap quote / volume
  rounded half up to 12 places (the close when nothing traded);
- observation, for an uninterrupted capture (one connection, contiguous trade ids, no gap events: checked, the
  reference refuses anything else): from the connection's first exchange time (its ``start`` event, or its first
  trade's own time when earlier) to its end (the last trade's time, or the furthest its ``alive`` and ``close``
  events show the exchange clock to have passed less the 1 s grace, whichever is later); a
  minute is published when it ended by then, ``complete`` when wholly observed, ``coverage`` the observed share;
  a minute without trades gets a flat candle (previous close, zero volumes) only when complete and preceded by an
  unbroken run of complete minutes back to a complete minute with trades (within the range: the platform has no
  earlier candles in a fresh lake);
- 5m..1d candles aggregate the range's 1m candles whose close lies in (from, to] and by the end of observation;
  ``complete`` when every minute has a complete 1m candle.

    .venv/bin/python bench/reference_materialize.py --lake L --from 2024-08-09T00 --to 2024-08-10T00 --out DIR
        [--float] [--duckdb]

Prints one summary line and a ``REFERENCE {...}`` JSON line (variant, trades, candles, seconds).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import polars as pl

SECOND_NS = 10**9
MINUTE_NS = 60 * SECOND_NS
HOUR_NS = 60 * MINUTE_NS
#: the platform's defaults (assets/_settings.py): raw minutes read on each side of the range, coverage grace,
#: the longest silence a connection may keep and still be observed
LATENESS_NS = 15 * MINUTE_NS
GRACE_NS = SECOND_NS
MAX_SILENCE_NS = 15 * SECOND_NS
TIMEFRAMES = {"1m": MINUTE_NS, "5m": 5 * MINUTE_NS, "15m": 15 * MINUTE_NS, "1h": HOUR_NS, "4h": 4 * HOUR_NS}
TIMEFRAMES["1d"] = 24 * HOUR_NS
#: quote assets a Binance symbol may end with, longest first (BTCUSDT -> BTC-USDT)
_QUOTE_TEXT = (
    "USDT USDC FDUSD TUSD BUSD USDP DAI BTC ETH BNB EUR TRY BRL GBP AUD JPY RUB UAH ZAR IDR PLN RON ARS MXN USD"
)
QUOTES = sorted(_QUOTE_TEXT.split(" "), key=len, reverse=True)
#: events that mean the capture was not uninterrupted (the reference models none of them)
BREAKS = ("gap", "checksum", "frame_error", "sub_error", "unsubscribed")

TS = pl.Datetime("ns", "UTC")
P12 = Decimal("1e-12")
Q12 = pl.Decimal(38, 12)
Q18 = pl.Decimal(38, 18)

_TRADE_JSON = pl.Struct(
    {"data": pl.Struct({"s": pl.String, "t": pl.Int64, "p": pl.String, "q": pl.String, "T": pl.Int64, "m": pl.Boolean})}
)
#: the platform's column types (mdplatform.schemas TRADES, CANDLES), restated
TRADES: dict[str, Any] = {
    "exchange": pl.String,
    "symbol": pl.String,
    "ts": TS,
    "recv_ts": TS,
    "trade_id": pl.String,
    "price": Q12,
    "size": Q12,
    "side": pl.String,
    "fills": pl.Int64,
}
CANDLES: dict[str, Any] = {
    "exchange": pl.String,
    "symbol": pl.String,
    "timeframe": pl.String,
    "open_time": TS,
    "close_time": TS,
    "open": Q12,
    "high": Q12,
    "low": Q12,
    "close": Q12,
    "volume": Q12,
    "quote_volume": Q18,
    "trade_count": pl.Int64,
    "taker_buy_volume": Q12,
    "taker_buy_quote_volume": Q18,
    "vwap": Q12,
    "complete": pl.Boolean,
    "coverage": pl.Float64,
}
_DDL = {
    "trades": "exchange VARCHAR, symbol VARCHAR, ts TIMESTAMPTZ, recv_ts TIMESTAMPTZ, trade_id VARCHAR, "
    "price DECIMAL(38,12), size DECIMAL(38,12), side VARCHAR, fills BIGINT",
    "candles": "exchange VARCHAR, symbol VARCHAR, timeframe VARCHAR, open_time TIMESTAMPTZ, close_time TIMESTAMPTZ, "
    "open DECIMAL(38,12), high DECIMAL(38,12), low DECIMAL(38,12), close DECIMAL(38,12), volume DECIMAL(38,12), "
    "quote_volume DECIMAL(38,18), trade_count BIGINT, taker_buy_volume DECIMAL(38,12), "
    "taker_buy_quote_volume DECIMAL(38,18), vwap DECIMAL(38,12), complete BOOLEAN, coverage DOUBLE",
}

__all__ = ["Result", "compare_frames", "floats", "materialize", "read_hourly", "unified_symbol"]


def unified_symbol(symbol: str) -> str:
    for quote in QUOTES:
        if len(symbol) > len(quote) and symbol.endswith(quote):
            return f"{symbol[: -len(quote)]}-{quote}"
    return symbol


def floats(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with Float64 for its decimals (``--float``)."""
    return {c: pl.Float64() if isinstance(t, pl.Decimal) else t for c, t in schema.items()}


@dataclass(frozen=True, slots=True)
class Result:
    trades: pl.DataFrame
    candles: pl.DataFrame
    read_rows: int
    seconds: float


def _observation(lake: Path, lo: int, hi: int) -> tuple[int, int | None]:
    """(first exchange time observed, last one or None when the capture goes on past the window) from the events
    received in [lo, hi); refuses anything but one uninterrupted connection. The last is the furthest the exchange
    clock is known to have passed, less the grace: the newest exchange time at ``close``, or at an ``alive`` that
    time plus the local time since its frame arrived (everything sent before the ping had arrived)."""
    events = (
        pl.scan_parquet(f"{lake}/events/**/*.parquet", hive_partitioning=False)
        .filter(pl.col("recv_ts").cast(pl.Int64).is_between(lo, hi, closed="left"))
        .select("recv_ts", "conn_id", "kind", "exchange_ts", "frame_recv_ts")
        .collect()
    )
    conns = events.get_column("conn_id").unique().to_list()
    if len(conns) != 1:
        raise SystemExit(f"reference: {len(conns)} connections in the window; it models one uninterrupted capture")
    broken = events.filter(pl.col("kind").is_in(BREAKS))
    if broken.height:
        raise SystemExit(f"reference: {broken.height} break events ({broken.row(0)}); it models none")
    r, e, f = (pl.col(c).cast(pl.Int64) for c in ("recv_ts", "exchange_ts", "frame_recv_ts"))
    points = (
        events.filter(pl.col("kind").is_in(["start", "alive", "close"]) & e.is_not_null())
        .sort("recv_ts", maintain_order=True)
        .select(kind=pl.col("kind"), r=r, est=e + pl.when(pl.col("kind") == "alive").then(r - f).otherwise(0))
    )
    silence = points.select(pl.col("r").diff().max()).item()
    if silence is not None and silence > MAX_SILENCE_NS:
        raise SystemExit(f"reference: {silence / 1e9:.1f} s between liveness points; it models no silence")
    start = points.filter(pl.col("kind") == "start").select(pl.col("est").first()).item()
    ended = events.filter(pl.col("kind") == "close").height > 0
    # a window that begins after the connection's start sees it observed from before the window
    first: int = start if start is not None else lo - 1
    last: int | None = points.select(pl.col("est").max()).item() - GRACE_NS if ended and points.height else None
    return first, last


def _trades(lake: Path, lo: int, hi: int, exact: bool) -> tuple[pl.DataFrame, int]:
    """Every trade frame received in [lo, hi), decoded, each id once (first receipt), with ``_id`` (the numeric
    id)."""
    recv = pl.col("recv_ts").cast(pl.Int64)
    frames = (
        pl.scan_parquet(f"{lake}/raw/**/*.parquet", hive_partitioning=False)
        .filter((pl.col("channel") == "trade") & recv.is_between(lo, hi, closed="left"))
        .select("recv_ts", "exchange", "payload")
        .collect()
    )
    number = Q12 if exact else pl.Float64()
    data = frames.select(
        "recv_ts", "exchange", d=pl.col("payload").str.json_decode(_TRADE_JSON).struct.field("data")
    ).unnest("d")
    symbols = {s: unified_symbol(s) for s in data.get_column("s").unique().to_list()}
    if not data.get_column("recv_ts").is_sorted():
        data = data.sort("recv_ts", maintain_order=True)
    trades = (
        data.lazy()
        .select(
            exchange=pl.col("exchange"),
            symbol=pl.col("s").replace_strict(symbols, return_dtype=pl.String),
            ts=(pl.col("T") * 1_000_000).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC"),
            recv_ts=pl.col("recv_ts"),
            trade_id=pl.col("t").cast(pl.String),
            price=pl.col("p").cast(number),
            size=pl.col("q").cast(number),
            side=pl.when(pl.col("m")).then(pl.lit("sell")).otherwise(pl.lit("buy")),
            fills=pl.lit(1, pl.Int64),
            _id=pl.col("t"),
        )
        .collect()
    )
    # each id once, its first receipt (the full test only when some id repeats: ids are per symbol)
    if trades.get_column("_id").n_unique() < trades.height:
        trades = trades.unique(subset=["exchange", "symbol", "_id"], keep="first", maintain_order=True)
    return trades, frames.height


def _check_contiguous(trades: pl.DataFrame) -> None:
    ids = trades.select(pl.col("_id").sort()).to_series()
    if len(ids) and not (ids.diff().drop_nulls() == 1).all():
        raise SystemExit("reference: trade ids are not contiguous; it models an uninterrupted capture only")


def _vwap(quote: Any, volume: Any, close: Any, exact: bool) -> Any:
    if not volume:
        return close
    if exact:
        return (quote / volume).quantize(P12, rounding=ROUND_HALF_UP)
    return quote / volume


def _candles(trades: pl.DataFrame, start: int, end: int, first: int, horizon: int, exact: bool) -> pl.DataFrame:
    """1m candles of [start, end) and the longer ones closing in (start, end], observed over [first, horizon]."""
    t = pl.col("ts").cast(pl.Int64)
    quote = pl.col("price").cast(Q18) * pl.col("size") if exact else pl.col("price") * pl.col("size")
    buy = pl.col("side") == "buy"
    per_minute = (
        trades.group_by("exchange", "symbol", (t - t % MINUTE_NS).alias("minute"), maintain_order=True)
        .agg(
            open=pl.col("price").first(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            close=pl.col("price").last(),
            volume=pl.col("size").sum(),
            quote_volume=quote.sum(),
            trade_count=pl.col("fills").sum(),
            taker_buy_volume=pl.col("size").filter(buy).sum(),
            taker_buy_quote_volume=quote.filter(buy).sum(),
        )
        .sort("exchange", "symbol", "minute")
    )
    zero = Decimal(0) if exact else 0.0
    rows: list[dict[str, Any]] = []
    for (exchange, symbol), group in per_minute.group_by("exchange", "symbol", maintain_order=True):
        traded = {r["minute"]: r for r in group.iter_rows(named=True)}
        minutes: list[dict[str, Any]] = []
        price = None  # the price carried into a minute: known only along complete minutes from a traded one
        for m in range(start, end, MINUTE_NS):
            if m + MINUTE_NS > horizon:
                break
            covered = max(0, min(horizon, m + MINUTE_NS) - max(first, m))
            complete = covered >= MINUTE_NS
            r = traded.get(m)
            if r is not None and covered > 0:
                row = dict(r)
                price = r["close"] if complete else None
            elif complete and price is not None:
                row = dict.fromkeys(("open", "high", "low", "close"), price)
                row |= dict.fromkeys(("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume"), zero)
                row["trade_count"] = 0
            else:
                price = None
                continue
            row |= {"minute": m, "complete": complete, "coverage": min(1.0, covered / MINUTE_NS)}
            minutes.append(row)
        for tf, length in TIMEFRAMES.items():
            spans: dict[int, list[dict[str, Any]]] = {}
            for r in minutes:
                m = int(r["minute"])
                spans.setdefault(m - m % length, []).append(r)
            n = length // MINUTE_NS
            for open_time, span in spans.items():
                close_time = open_time + length
                if not (start < close_time <= end and close_time <= horizon):
                    continue
                volume = sum((r["volume"] for r in span), zero)
                quote_volume = sum((r["quote_volume"] for r in span), zero)
                close = span[-1]["close"]
                rows.append(
                    {
                        "exchange": exchange,
                        "symbol": symbol,
                        "timeframe": tf,
                        "open_time": open_time,
                        "close_time": close_time,
                        "open": span[0]["open"],
                        "high": max(r["high"] for r in span),
                        "low": min(r["low"] for r in span),
                        "close": close,
                        "volume": volume,
                        "quote_volume": quote_volume,
                        "trade_count": sum(int(r["trade_count"]) for r in span),
                        "taker_buy_volume": sum((r["taker_buy_volume"] for r in span), zero),
                        "taker_buy_quote_volume": sum((r["taker_buy_quote_volume"] for r in span), zero),
                        "vwap": _vwap(quote_volume, volume, close, exact),
                        "complete": len(span) == n and all(bool(r["complete"]) for r in span),
                        "coverage": min(1.0, sum(float(r["coverage"]) for r in span) / n),
                    }
                )
    schema = CANDLES if exact else floats(CANDLES)
    ns = {"open_time": pl.Int64, "close_time": pl.Int64}
    out = pl.DataFrame(rows, schema={**schema, **ns}, orient="row") if rows else pl.DataFrame(schema={**schema, **ns})
    return out.with_columns(pl.col("open_time", "close_time").cast(pl.Datetime("ns")).dt.replace_time_zone("UTC"))


def _hour_dir(root: Path, table: str, hour: int) -> Path:
    t = datetime.fromtimestamp(hour // SECOND_NS, UTC)
    return root / table / f"date={t:%Y-%m-%d}" / f"hour={t:%H}"


def _write_hourly(df: pl.DataFrame, root: Path, table: str, key: pl.Expr) -> None:
    for (hour,), part in df.with_columns(_hour=key).partition_by("_hour", as_dict=True, maintain_order=True).items():
        folder = _hour_dir(root, table, int(hour))
        folder.mkdir(parents=True, exist_ok=True)
        part.drop("_hour").write_parquet(folder / "data.parquet")


def materialize(
    lake: Path, start: int, end: int, out: Path | None = None, *, exact: bool = True, duckdb_path: Path | None = None
) -> Result:
    """Trades and candles of the hours [start, end) from the lake at ``lake``; written under ``out`` (and into
    ``duckdb_path``) when given."""
    t0 = time.perf_counter()
    lo, hi = start - LATENESS_NS, end + LATENESS_NS
    first, last = _observation(lake, lo, hi)
    seen, read_rows = _trades(lake, lo, hi, exact)
    _check_contiguous(seen)
    t = pl.col("ts").cast(pl.Int64)
    # observed up to the end of the capture (its last trade, or how far its events show the exchange clock went,
    # less the grace) or, when it goes on past the window, at least to the range's end
    horizon = end if last is None else max(last, seen.select(t.max()).item() or last)
    # and from the connection's first exchange time, or its first trade's own time when that is earlier (a Binance
    # trade frame's T precedes its E)
    if first >= lo and seen.height:
        first = min(first, seen.select(t.min()).item())
    trades = (
        seen.filter(t.is_between(start, end, closed="left"))
        .sort("exchange", "symbol", "ts", "_id", "recv_ts")
        .drop("_id")
    )
    candles = _candles(trades, start, end, first, horizon, exact)
    if out is not None:
        _write_hourly(trades, out, "trades", t - t % HOUR_NS)
        close = pl.col("close_time").cast(pl.Int64)
        _write_hourly(candles, out, "candles", (close - 1) - (close - 1) % HOUR_NS)
    if duckdb_path is not None:
        import duckdb

        with duckdb.connect(str(duckdb_path)) as con:
            for name, df in (("trades", trades), ("candles", candles)):
                ddl = _DDL[name] if exact else re.sub(r"DECIMAL\(38,\d+\)", "DOUBLE", _DDL[name])
                con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({ddl})")
                con.register("rows", df.to_arrow())
                con.execute(f"INSERT INTO {name} SELECT * FROM rows")
                con.unregister("rows")
    return Result(trades, candles, read_rows, time.perf_counter() - t0)


def read_hourly(out: Path, table: str) -> pl.DataFrame:
    """What ``materialize`` wrote for ``table`` under ``out``, all hours, in order."""
    files = sorted((out / table).glob("date=*/hour=*/data.parquet"))
    schema = TRADES if table == "trades" else CANDLES
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame(schema=schema)


def compare_frames(got: pl.DataFrame, want: pl.DataFrame, key: list[str] | None) -> list[str]:
    """What differs between two tables, column by column (sorted by ``key`` first, else in their order): exact
    equality, except Float64 columns within 1e-9 (a sum of shares may be added up in another order)."""
    if got.schema != want.schema:
        return [f"schemas differ: {dict(got.schema)} vs {dict(want.schema)}"]
    if got.height != want.height:
        return [f"{got.height} rows vs {want.height}"]
    if key:
        got, want = got.sort(key), want.sort(key)
    problems = []
    for col in got.columns:
        g, w = got.get_column(col), want.get_column(col)
        if g.dtype == pl.Float64:
            bad = ((g - w).abs() > 1e-9) | (g.is_null() != w.is_null())
        else:
            bad = (g != w) | (g.is_null() != w.is_null())
        bad = bad.fill_null(False)
        if bad.any():
            i = int(bad.arg_true()[0])
            where = {k: got.get_column(k)[i] for k in key or []}
            problems.append(f"{col}: {int(bad.sum())} rows differ, first {where or i}: {g[i]!r} vs {w[i]!r}")
    return problems


def _parse_hour(text: str) -> int:
    value = datetime.fromisoformat(text if len(text) > 10 else text + "T00")
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    ns = int(value.timestamp()) * SECOND_NS
    if ns % HOUR_NS:
        raise SystemExit(f"{text}: not the start of an hour")
    return ns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--from", dest="start", required=True, help="first hour (UTC), e.g. 2024-08-09T00")
    parser.add_argument("--to", dest="end", required=True, help="end hour (exclusive)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (replaced)")
    parser.add_argument("--float", action="store_true", help="Float64 numbers instead of exact decimals")
    parser.add_argument("--duckdb", action="store_true", help="also insert the rows into <out>/reference.duckdb")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    db = args.out / "reference.duckdb" if args.duckdb else None
    r = materialize(
        args.lake, _parse_hour(args.start), _parse_hour(args.end), args.out, exact=not args.float, duckdb_path=db
    )
    variant = ("float" if args.float else "decimal") + ("+duckdb" if args.duckdb else "")
    per_tf = r.candles.group_by("timeframe").len().to_dict(as_series=False)
    counts = dict(zip(per_tf["timeframe"], per_tf["len"], strict=True))
    by_tf = ", ".join(f"{tf} {counts.get(tf, 0)}" for tf in TIMEFRAMES)
    print(
        f"reference ({variant}): {r.read_rows:,} trade frames read, {r.trades.height:,} trades, "
        f"{r.candles.height:,} candles ({by_tf}) in {r.seconds:.2f} s"
    )
    figures = {"variant": variant, "trades": r.trades.height, "candles": r.candles.height, "seconds": r.seconds}
    print("REFERENCE " + json.dumps(figures))


if __name__ == "__main__":
    main()
