"""MEXC spot v3 end to end: the real ingestor collects from `mdp replay` speaking MEXC's protocol (``SUBSCRIPTION``
requests, ``{"method":"PING"}`` keep-alive, protobuf pushes, REST ``/api/v3/depth`` snapshots from the book the replay
keeps) over a socket into a lake; the same capture imported into another lake gives the same trades and candles.

There is no recording of MEXC: the capture ``tests/data/mexc/mexc_spot.ws.gz`` is **built from MEXC's spot v3
documentation** by ``build_capture.py`` alongside (deals, depth diffs, book ticker of BTCUSDT and ETHUSDT encoded
with MEXC's published ``.proto`` definitions; one BTCUSDT depth push left out to force a version gap).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl
import pytest
from _exchange_live import lake_candles, live_candles, until

from mdplatform.book import book_samples
from mdplatform.capture import import_capture, read_capture
from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.contract import CapturedFrame
from mdplatform.exchanges.mexc import DEALS, DEPTH, KLINE, MexcExchange, decode_push, encode_push
from mdplatform.exchanges.mexc._replay import _bytes
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events, read_raw
from mdplatform.replay import ReplayServer
from mdplatform.schemas import TRADES
from mdplatform.transforms import (
    HOUR_NS,
    MINUTE_NS,
)

CAPTURE = Path(__file__).parents[1] / "data" / "mexc" / "mexc_spot.ws.gz"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
TRADE = DEALS["100ms"]
BOOK = DEPTH["100ms"]
TICKER = "spot@public.aggre.bookTicker.v3.api.pb@100ms"
ALL_TIME = (0, 2**62)
MS = 1_000_000
T0 = 1767571200 * 10**9  # 2026-01-05 00:00:00 UTC, the capture's hour
MEXC = MexcExchange()


def _recorded() -> tuple[dict[tuple[str, str], list[bytes]], dict[str, list[str]]]:
    """(recorded pushes by route, as their bytes; recorded REST depth replies by symbol)."""
    pushes: dict[tuple[str, str], list[bytes]] = {}
    rest: dict[str, list[str]] = {}
    for f in read_capture(CAPTURE):
        data = _bytes(f.frame) if f.kind == "ws" else None
        if data is not None:
            pushes.setdefault(MEXC.route(decode_push(data)), []).append(data)
        elif f.kind == "rest":
            rest.setdefault(f.symbol, []).append(f.frame)
    return pushes, rest


def _versions(frame: str) -> tuple[int, int]:
    body = orjson.loads(frame)["publicAggreDepths"]
    return int(body["fromVersion"]), int(body["toVersion"])


def _collect(lake: str) -> tuple[dict[str, object], int, int]:
    async def scenario() -> tuple[dict[str, object], int, int]:
        # rebase: exchange times moved to just before now (whole minutes); speed 30: the 156 s capture in about 5 s,
        # so the REST snapshots the collector asks for are answered while the pushes are still coming
        async with ReplayServer([CAPTURE], speed=30, rebase=True, verbose=False) as server:
            config = ExchangeCollectorConfig(
                exchange="mexc",
                symbols=SYMBOLS,
                channels=(TRADE, BOOK, TICKER, KLINE),
                ws_url=server.ws_url,
                rest_url=server.rest_url,
                ping_interval_s=0.3,  # {"method":"PING"} on a silent connection (MEXC: within a minute)
            )
            ingestor = Ingestor(IngestConfig((config,)), lake=lake)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            await server.wait_finished(timeout=60)
            status = ingestor.manager.get_status
            # every pushed frame, the subscribe answer and two PONGs (pings start once the pushes stop)
            await until(lambda: status()["messages_received"] >= server.sent + 3, 30, "every frame and two pongs")
            stop.set()
            await task
            return status()["collectors"][0], server.sent, server.shift_ns

    return asyncio.run(scenario())


def _reference_book(snapshot: str, frames: list[str], until_ms: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """(best bid, best ask) of the recorded snapshot plus every recorded push beyond its version sent at or before
    ``until_ms``, applied as they come (a plain dict: the reference the synced book must equal)."""
    snap = orjson.loads(snapshot)
    bids = {p: q for p, q in snap["bids"]}
    asks = {p: q for p, q in snap["asks"]}
    version = snap["lastUpdateId"]
    for frame in frames:
        msg = orjson.loads(frame)
        if int(msg["sendTime"]) > until_ms:
            break
        body = msg["publicAggreDepths"]
        if int(body["toVersion"]) <= version:
            continue
        for side, levels in ((bids, body.get("bids", [])), (asks, body.get("asks", []))):
            for level in levels:
                if Decimal(level["quantity"]) == 0:
                    side.pop(level["price"], None)
                else:
                    side[level["price"]] = level["quantity"]
    bid = max(bids, key=Decimal)
    ask = min(asks, key=Decimal)
    return (bid, bids[bid]), (ask, asks[ask])


@pytest.mark.timeout(120)
def test_mexc_live_collection_equals_import(tmp_path: Path) -> None:
    live, imported = str(tmp_path / "live"), str(tmp_path / "import")
    pushes, rest = _recorded()
    collector, sent, shift_ns = _collect(live)
    assert shift_ns % MINUTE_NS == 0 and shift_ns > 0
    stats = import_capture([CAPTURE], "mexc", imported)
    assert stats is not None and not stats.read.bad

    # -- every frame landed as the JSON of the protobuf the replay sent; the gap found and healed for BTCUSDT only ---
    raw = read_raw(live, *ALL_TIME).sort("conn_id", "seq")
    # one connection (its REST snapshots land under "<conn_id>/rest")
    assert raw["conn_id"].str.replace("/rest$", "").n_unique() == 1 and collector["reconnects"] == 0
    assert not raw.filter(pl.col("channel") == "binary").height  # no push left undecoded
    unshift = MexcExchange().replay_protocol()
    unshift.shift_ms = shift_ns // MS

    def landed(channel: str, symbol: str) -> list[str]:
        return raw.filter((pl.col("channel") == channel) & (pl.col("symbol") == symbol))["payload"].to_list()

    def as_sent(frames: list[bytes]) -> list[str]:
        # the replay rebased every time field by shift_ns and re-encoded the push: its JSON, field for field
        out = []
        for data in frames:
            prepared = unshift.prepare(_frame(data))
            assert prepared is not None and prepared.data is not None
            out.append(decode_push(prepared.data))
        return out

    for route in pushes:
        assert landed(*route) == as_sent(pushes[route]), route
    assert sent == sum(len(v) for v in pushes.values()) == 50 + 36 + 309 + 310 + 75 + 153
    assert len(landed(TRADE, "BTCUSDT")) == 50 and len(landed(BOOK, "BTCUSDT")) == 309
    # the landed JSON is the protobuf sent, byte for byte (nothing lost in the text the lake keeps)
    first = landed(TRADE, "BTCUSDT")[0]
    assert MEXC.decode_binary(encode_push(first)) == first
    control = [orjson.loads(c) for c in landed("control", "")]
    kline = "spot@public.kline.v3.api.pb@{}@Min1"
    streams = [f"{ch}@{s}" if ch != KLINE else kline.format(s) for s in SYMBOLS for ch in (TRADE, BOOK, TICKER, KLINE)]
    assert control[0] == {"id": 0, "code": 0, "msg": ",".join(streams)}  # one request, the ack echoes it
    assert sum(c["msg"] == "PONG" for c in control) >= 2
    snapshots = raw.filter(pl.col("channel") == "depthSnapshot")
    assert sorted(snapshots["symbol"].to_list()) == ["BTCUSDT", "BTCUSDT", "ETHUSDT"]
    assert collector["book_sync"] == dict.fromkeys(SYMBOLS, "synced")
    assert collector["sync_errors"] == 1 and collector["errors"] == 1  # the gap, nothing else

    events = read_events(live, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "synced", "sub_error"]))
    got = {s: events.filter(pl.col("symbol") == s).sort("recv_ts")["kind"].to_list() for s in SYMBOLS}
    assert got == {"BTCUSDT": ["synced", "gap", "synced"], "ETHUSDT": ["synced"]}
    gap = "fromVersion=10589632423 > previous toVersion+1=10589632421 (toVersion=10589632424)"
    assert events.filter(pl.col("kind") == "gap").select("channel", "detail").rows() == [(BOOK, gap)]
    # the second BTCUSDT snapshot was asked for after the gap and bridges it: its version is at least the push's
    # that showed the gap, and the pushes after it continue it
    second = orjson.loads(snapshots.filter(pl.col("symbol") == "BTCUSDT").sort("recv_ts")["payload"][1])
    btc = landed(BOOK, "BTCUSDT")
    assert second["lastUpdateId"] >= 10589632424
    after = [_versions(f) for f in btc if _versions(f)[1] > second["lastUpdateId"]]
    assert after and after[0][0] == second["lastUpdateId"] + 1
    # the import sees the same gap and heals it with the snapshot the recording holds
    imported_events = read_events(imported, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "synced"]))
    assert imported_events.sort("recv_ts").select("kind", "symbol").rows() == [
        ("synced", "BTCUSDT"), ("synced", "ETHUSDT"), ("gap", "BTCUSDT"), ("synced", "BTCUSDT")]  # fmt: skip

    # -- trades: taker side, exchange time, exact numbers; live == import ----------------------------------------
    norm_live = MEXC.normalize_trades(raw).sort("ts", "symbol", "trade_id")
    norm_import = MEXC.normalize_trades(read_raw(imported, *ALL_TIME)).sort("ts", "symbol", "trade_id")
    same = [c for c in TRADES if c != "recv_ts"]
    unshifted = norm_live.with_columns(pl.col("ts") - pl.duration(nanoseconds=shift_ns))
    assert unshifted.select(same).equals(norm_import.select(same))
    items = {
        s: [d for f in pushes[(TRADE, s)] for d in orjson.loads(decode_push(f))["publicAggreDeals"]["deals"]]
        for s in SYMBOLS
    }
    assert norm_import.height == len(items["BTCUSDT"]) + len(items["ETHUSDT"]) == 99 + 72
    assert set(norm_import["symbol"]) == {"BTC-USDT", "ETH-USDT"}
    first_trade = norm_import.row(0, named=True)
    assert (first_trade["symbol"], first_trade["side"], first_trade["price"], first_trade["size"]) == (
        "BTC-USDT", "buy", Decimal("93220.01"), Decimal("0.0014"))  # fmt: skip
    assert first_trade["ts"].timestamp() * 10**9 == T0 + 700 * MS
    assert first_trade["trade_id"] == "731579883561406468X1_731579883561406469X1"
    side = {1: "buy", 2: "sell"}
    expected = {
        (d["tradeId"], int(d["time"]) * MS, Decimal(d["price"]), Decimal(d["quantity"]), side[d["tradeType"]])
        for d in items["BTCUSDT"]
    }
    btc_trades = norm_import.filter(pl.col("symbol") == "BTC-USDT")
    rows = btc_trades.select("trade_id", pl.col("ts").dt.epoch("ns"), "price", "size", "side").rows()
    assert set(rows) == expected and len(rows) == 99
    assert (
        btc_trades.filter(pl.col("side") == "sell").height == sum(d["tradeType"] == 2 for d in items["BTCUSDT"]) == 33
    )

    # -- candles: live == import (times unshifted), values from the recorded deals -------------------------------
    c_import = lake_candles(imported, T0, "1m")
    c_live = live_candles(live, T0 + shift_ns - (T0 + shift_ns) % HOUR_NS, "1m")
    c_live = c_live.with_columns(pl.col("open_time", "close_time") - pl.duration(nanoseconds=shift_ns))
    values = ["symbol", "open_time", "open", "high", "low", "close", "volume", "trade_count", "taker_buy_volume"]
    # minute 0 starts with the connection (partial), minute 1 is whole, minute 2 not closed when the data ends
    assert c_import.select("symbol", pl.col("open_time").dt.minute(), "complete").rows() == [
        ("BTC-USDT", 0, False), ("BTC-USDT", 1, True), ("ETH-USDT", 0, False), ("ETH-USDT", 1, True)
    ]  # fmt: skip
    assert c_live.select(values).equals(c_import.select(values))
    minute = c_import.filter((pl.col("symbol") == "BTC-USDT") & (pl.col("open_time").dt.minute() == 1)).row(
        0, named=True
    )
    in_minute = [d for d in items["BTCUSDT"] if T0 + MINUTE_NS <= int(d["time"]) * MS < T0 + 2 * MINUTE_NS]
    prices = [Decimal(d["price"]) for d in in_minute]
    assert (minute["open"], minute["close"], minute["high"], minute["low"]) == (
        prices[0], prices[-1], max(prices), min(prices))  # fmt: skip
    assert minute["volume"] == sum(Decimal(d["quantity"]) for d in in_minute)
    assert minute["trade_count"] == len(in_minute) == 39
    assert minute["taker_buy_volume"] == sum(Decimal(d["quantity"]) for d in in_minute if d["tradeType"] == 1)
    # the exchange's own kline of that whole minute (its last push) agrees with the candle built from the deals
    klines = [orjson.loads(f)["publicSpotKline"] for f in landed(KLINE, "BTCUSDT")]
    shifted_start = (T0 + MINUTE_NS + shift_ns) // 10**9
    last = [k for k in klines if int(k["windowStart"]) == shifted_start][-1]
    own = tuple(Decimal(last[f]) for f in ("openingPrice", "highestPrice", "lowestPrice", "closingPrice", "volume"))
    assert own == (minute["open"], minute["high"], minute["low"], minute["close"], minute["volume"])

    # -- book snapshots: the books rebuilt from the live lake equal the recorded snapshot plus the recorded pushes --
    raw = raw.sort("recv_ts", maintain_order=True)  # the REST snapshots among the pushes, as they arrived
    for symbol in SYMBOLS:
        frames = [decode_push(f) for f in pushes[(BOOK, symbol)]]
        out = book_samples(raw.filter(pl.col("symbol") == symbol), MEXC, symbol)
        samples = out.samples.with_columns(pl.col("ts").dt.epoch("ns") - shift_ns)
        assert samples.height >= 100, symbol
        for row in samples.iter_rows(named=True):
            (bid, bid_size), (ask, ask_size) = _reference_book(rest[symbol][0], frames, row["ts"] // MS)
            got_top = (row["bid_price"], row["bid_size"], row["ask_price"], row["ask_size"])
            assert got_top == (float(bid), float(bid_size), float(ask), float(ask_size)), (symbol, row["ts"])
    btc_out = book_samples(raw.filter(pl.col("symbol") == "BTCUSDT"), MEXC, "BTCUSDT")
    reasons = btc_out.invalid["reason"].to_list()
    assert any(r.startswith("gap: fromVersion=10589632423") for r in reasons), reasons


def _frame(data: bytes) -> CapturedFrame:
    """A pushed frame as a recording keeps it (a bytes literal)."""
    return CapturedFrame(0, repr(data), "ws")
