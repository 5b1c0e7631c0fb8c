"""Bybit v5 (linear) end to end: the real ingestor collects from `mdp replay` speaking Bybit's WebSocket protocol
(``op`` subscribe/unsubscribe, ``{"op":"ping"}`` heartbeats, fresh book snapshots on resubscribe) over a socket into a
lake; the same capture imported into another lake gives the same trades and candles.

The capture ``tests/data/bybit/bybit_linear_xrpusdt.ws.gz`` (``build_capture.py`` alongside): ``orderbook.500.XRPUSDT``
is a real recording (nautilus_trader test data, LGPL-3.0) with one delta (u=20254899) left out to force a sequence
gap; ``orderbook.500.BTCUSDT``, ``publicTrade``, ``tickers`` and ``kline.1`` are built from Bybit's v5 docs.
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
from mdplatform.exchanges.bybit import BybitExchange
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events, read_raw
from mdplatform.replay import ReplayServer
from mdplatform.schemas import TRADES
from mdplatform.transforms import (
    HOUR_NS,
    MINUTE_NS,
)

CAPTURE = Path(__file__).parents[1] / "data" / "bybit" / "bybit_linear_xrpusdt.ws.gz"
SYMBOLS = ("XRPUSDT", "BTCUSDT")
CHANNELS = ("publicTrade", "orderbook.500", "tickers", "kline.1")
BOOK = "orderbook.500"
ALL_TIME = (0, 2**62)
MS = 1_000_000
T0 = 1733011200 * 10**9  # 2024-12-01 00:00:00 UTC, the capture's hour
BYBIT = BybitExchange("linear")


def _recorded() -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for f in read_capture(CAPTURE):
        if f.kind == "ws":
            out.setdefault(BYBIT.route(f.frame), []).append(f.frame)
    return out


def read_one(frame: str) -> CapturedFrame:
    return CapturedFrame(0, frame, "ws")


def _u(frame: str) -> int:
    return int(orjson.loads(frame)["data"]["u"])


def _collect(lake: str) -> tuple[dict[str, object], int, int, int]:
    async def scenario() -> tuple[dict[str, object], int, int, int]:
        # rebase: exchange times moved to just before now (whole minutes), so the windows take the frames
        async with ReplayServer([CAPTURE], speed=0, rebase=True, verbose=False) as server:
            config = ExchangeCollectorConfig(
                exchange="bybit-linear",
                symbols=SYMBOLS,
                channels=CHANNELS,
                ws_url=server.ws_url,
                ping_interval_s=0.3,  # {"op":"ping"} on a silent connection (Bybit's rule: every 20 s)
            )
            ingestor = Ingestor(IngestConfig((config,)), lake=lake)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            await server.wait_finished(timeout=60)
            protocol = server.protocol
            assert protocol is not None
            # every frame sent, the subscribe ack, unsubscribe + subscribe acks, the fresh snapshot, two pongs
            expected = server.sent + 1 + 2 + protocol.snapshots_sent + 2  # type: ignore[attr-defined]
            status = ingestor.manager.get_status
            await until(lambda: status()["messages_received"] >= expected, 30, "every frame and two pongs")
            stop.set()
            await task
            return (
                status()["collectors"][0],
                server.sent,
                protocol.snapshots_sent,  # type: ignore[attr-defined]
                server.shift_ns,
            )

    return asyncio.run(scenario())


def _naive_book(frames: list[str], until_ms: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """(best bid, best ask) after every frame with cts <= until_ms, every delta applied as it comes (a plain dict of
    Decimal prices: the reference the synced book must equal)."""
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    for frame in frames:
        msg = orjson.loads(frame)
        if msg["cts"] > until_ms:
            break
        if msg["type"] == "snapshot":
            bids.clear()
            asks.clear()
        for side, levels in ((bids, msg["data"]["b"]), (asks, msg["data"]["a"])):
            for price, size in levels:
                if Decimal(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
    bid = max(bids, key=Decimal)
    ask = min(asks, key=Decimal)
    return (bid, bids[bid]), (ask, asks[ask])


@pytest.mark.timeout(120)
def test_bybit_live_collection_equals_import(tmp_path: Path) -> None:
    live, imported = str(tmp_path / "live"), str(tmp_path / "import")
    recorded = _recorded()
    collector, sent, generated, shift_ns = _collect(live)
    assert shift_ns % MINUTE_NS == 0 and shift_ns > 0
    stats = import_capture([CAPTURE], "bybit-linear", imported)
    assert stats is not None

    # -- every frame landed; the gap found and resynced for that symbol's book only ------------------------------
    raw = read_raw(live, *ALL_TIME).sort("conn_id", "seq")
    assert raw["conn_id"].n_unique() == 1 and collector["reconnects"] == 0
    unshift = BybitExchange("linear").replay_protocol()
    unshift.shift_ms = shift_ns // MS

    def landed(channel: str, symbol: str) -> list[str]:
        return raw.filter((pl.col("channel") == channel) & (pl.col("symbol") == symbol))["payload"].to_list()

    def as_recorded(frames: list[str]) -> list[bytes]:
        # the replay rebased every time field by shift_ns: the recorded frame, shifted, byte for byte
        out = []
        for f in frames:
            prepared = unshift.prepare(read_one(f))
            assert prepared is not None and prepared.data is not None
            out.append(prepared.data)
        return out

    for channel, symbol in (("publicTrade", "XRPUSDT"), ("publicTrade", "BTCUSDT"), ("tickers", "XRPUSDT"),
                            ("kline.1", "XRPUSDT"), (BOOK, "BTCUSDT")):  # fmt: skip
        assert [f.encode() for f in landed(channel, symbol)] == as_recorded(recorded[(channel, symbol)]), channel
    assert len(landed("publicTrade", "XRPUSDT")) == 44 and len(landed(BOOK, "BTCUSDT")) == 10
    xrp = landed(BOOK, "XRPUSDT")
    rec = recorded[(BOOK, "XRPUSDT")]
    assert len(rec) == 49  # the real 50 frames but the one left out
    # up to the delta that shows the gap (u=20254900 after u=20254898) every recorded frame, as recorded
    assert [f.encode() for f in xrp[:31]] == as_recorded(rec[:31]) and _u(xrp[30]) == 20254900
    # then exactly one frame the recording does not hold: the snapshot the resubscribe brought, and after it the
    # recorded deltas that continue its u
    extra = [i for i, f in enumerate(xrp) if f.encode() not in as_recorded(rec)]
    assert len(extra) == 1 and generated == 1
    fresh = orjson.loads(xrp[extra[0]])
    assert fresh["type"] == "snapshot" and fresh["topic"] == "orderbook.500.XRPUSDT"
    assert len(fresh["data"]["b"]) == len(fresh["data"]["a"]) == 500
    after = [f for f in rec if _u(f) > fresh["data"]["u"]]
    assert [f.encode() for f in xrp[extra[0] + 1 :]] == as_recorded(after)
    # what the replay sent, plus the snapshot it generated, is every data frame the lake holds
    assert sent + generated == raw.filter(pl.col("channel") != "control").height
    control = [orjson.loads(c) for c in landed("control", "")]
    assert sorted(c["op"] for c in control if c["ret_msg"] != "pong") == ["subscribe", "subscribe", "unsubscribe"]
    assert all(c["success"] for c in control) and sum(c["ret_msg"] == "pong" for c in control) >= 2
    assert collector["book_sync"] == dict.fromkeys(SYMBOLS, "synced")
    assert collector["sync_errors"] == 1 and collector["errors"] == 1  # the gap, nothing else

    events = read_events(live, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "synced", "sub_error"]))
    got = {s: events.filter(pl.col("symbol") == s).sort("recv_ts")["kind"].to_list() for s in SYMBOLS}
    assert got == {"XRPUSDT": ["synced", "gap", "synced"], "BTCUSDT": ["synced"]}
    assert events.filter(pl.col("kind") == "gap")["detail"].to_list() == ["update id gap: u=20254900 after u=20254898"]
    # the import sees the same gap; its recording holds no resubscribe snapshot, so XRPUSDT's book stays invalid
    imported_events = read_events(imported, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "synced"]))
    assert sorted(imported_events.select("kind", "symbol").rows()) == [
        ("gap", "XRPUSDT"), ("synced", "BTCUSDT"), ("synced", "XRPUSDT")]  # fmt: skip

    # -- trades: taker side, exchange time, exact numbers; live == import ----------------------------------------
    norm_live = BYBIT.normalize_trades(raw).sort("ts", "symbol", "trade_id")
    norm_import = BYBIT.normalize_trades(read_raw(imported, *ALL_TIME)).sort("ts", "symbol", "trade_id")
    same = [c for c in TRADES if c != "recv_ts"]
    unshifted = norm_live.with_columns(pl.col("ts") - pl.duration(nanoseconds=shift_ns))
    assert unshifted.select(same).equals(norm_import.select(same))
    assert norm_import.height == 87 + 30 and set(norm_import["symbol"]) == {"XRP-USDT-PERP", "BTC-USDT-PERP"}
    first = norm_import.row(0, named=True)
    assert (first["symbol"], first["side"], first["price"], first["size"]) == (
        "XRP-USDT-PERP", "buy", Decimal("1.9531"), Decimal("140"))  # fmt: skip
    assert first["ts"].timestamp() * 10**9 == T0 + 700 * MS
    items = [d for f in recorded[("publicTrade", "XRPUSDT")] for d in orjson.loads(f)["data"]]
    expected = {(d["i"], d["T"] * MS, Decimal(d["p"]), Decimal(d["v"]), d["S"].lower()) for d in items}
    xrp_trades = norm_import.filter(pl.col("symbol") == "XRP-USDT-PERP")
    rows = xrp_trades.select("trade_id", pl.col("ts").dt.epoch("ns"), "price", "size", "side").rows()
    assert set(rows) == expected and len(rows) == 87
    assert xrp_trades.filter(pl.col("side") == "sell").height == sum(d["S"] == "Sell" for d in items) == 29

    # -- candles: live == import (times unshifted), values from the recorded trades -----------------------------
    c_import = lake_candles(imported, T0, "1m")
    c_live = live_candles(live, T0 + shift_ns - (T0 + shift_ns) % HOUR_NS, "1m")
    c_live = c_live.with_columns(pl.col("open_time", "close_time") - pl.duration(nanoseconds=shift_ns))
    values = ["symbol", "open_time", "open", "high", "low", "close", "volume", "trade_count", "taker_buy_volume"]
    # minute 0 starts with the connection (partial), minute 1 is whole, minute 2 not closed when the data ends
    assert c_import.select("symbol", pl.col("open_time").dt.minute(), "complete").rows() == [
        ("BTC-USDT-PERP", 0, False), ("BTC-USDT-PERP", 1, True), ("XRP-USDT-PERP", 0, False), ("XRP-USDT-PERP", 1, True)
    ]  # fmt: skip
    assert c_live.select(values).equals(c_import.select(values))
    minute = c_import.filter((pl.col("symbol") == "XRP-USDT-PERP") & (pl.col("open_time").dt.minute() == 1)).row(
        0, named=True
    )
    in_minute = [d for d in items if T0 + MINUTE_NS <= d["T"] * MS < T0 + 2 * MINUTE_NS]
    prices = [Decimal(d["p"]) for d in in_minute]
    assert (minute["open"], minute["close"], minute["high"], minute["low"]) == (
        prices[0], prices[-1], max(prices), min(prices))  # fmt: skip
    assert minute["volume"] == sum(Decimal(d["v"]) for d in in_minute) and minute["trade_count"] == len(in_minute) == 33

    # -- book snapshots: the books rebuilt from the live lake equal a plain rebuild of the recorded frames -------
    for symbol in SYMBOLS:
        out = book_samples(raw.filter(pl.col("symbol") == symbol), BYBIT, symbol)
        samples = out.samples.with_columns(pl.col("ts").dt.epoch("ns") - shift_ns)
        assert samples.height >= 3, symbol
        for row in samples.iter_rows(named=True):
            (bid, bid_size), (ask, ask_size) = _naive_book(recorded[(BOOK, symbol)], row["ts"] // MS)
            got_top = (row["bid_price"], row["bid_size"], row["ask_price"], row["ask_size"])
            assert got_top == (float(bid), float(bid_size), float(ask), float(ask_size)), (symbol, row["ts"])
    xrp_out = book_samples(raw.filter(pl.col("symbol") == "XRPUSDT"), BYBIT, "XRPUSDT")
    reasons = xrp_out.invalid["reason"].to_list()
    assert any(r.startswith("gap: update id gap: u=20254900") for r in reasons), reasons
