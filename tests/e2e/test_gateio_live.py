"""Gate.io v4 spot end to end: the real ingestor collects from `mdp replay` speaking Gate.io's WebSocket protocol
(``{"time","channel","event":"subscribe","payload"}`` requests and their acks, ``{"channel":"spot.ping"}`` answered by
``spot.pong``, REST order books ``with_id=true`` for the U/u sync) over a socket into a lake; the same capture imported
into another lake gives the same trades and candles.

The capture: ``tests/data/gateio/gateio_spot_gap.ws.gz`` is the real ``GATEIO.ws.1.0`` (cryptofeed samples, MIT,
2021-04-22) with one OMG_USDT ``spot.order_book_update`` (U=u=59231896) left out by ``build_capture.py`` to force a
U/u gap, the real ``GATEIO.http.0.0`` REST snapshots merged in by receive time, and four ``spot.candlesticks`` pushes
of the next minute BUILT from the docs (flat, ``v`` 0) so that the recorded minute closes.
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
from mdplatform.exchanges.gateio import GateioExchange
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events, read_raw
from mdplatform.replay import ReplayServer
from mdplatform.schemas import TRADES
from mdplatform.transforms import (
    HOUR_NS,
    MINUTE_NS,
)

DATA = Path(__file__).parents[1] / "data" / "gateio"
CAPTURE = DATA / "gateio_spot_gap.ws.gz"
SNAPSHOTS = DATA / "GATEIO.http.0.0.gz"
PAIRS = ("OMG_USDT", "NEO_BTC", "DIS_USDT", "ZKS_ETH")
CHANNELS = ("spot.trades", "spot.order_book_update", "spot.candlesticks", "spot.tickers")
BOOK = "spot.order_book_update"
ALL_TIME = (0, 2**62)
MS = 1_000_000
HOUR0 = 1619092800 * 10**9  # 2021-04-22 12:00 UTC: the capture's hour
MINUTE0 = 1619093520 * 10**9  # 12:12, the recorded minute
GATE = GateioExchange("spot")


def _recorded() -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for f in read_capture(CAPTURE):
        if f.kind == "ws":
            out.setdefault(GATE.route(f.frame), []).append(f.frame)
    return out


def _collect(lake: str) -> tuple[dict[str, object], int, int, int, int]:
    async def scenario() -> tuple[dict[str, object], int, int, int, int]:
        # ten times real speed (the 31 s recording in about 3 s): the snapshots come back while the diffs still
        # flow, so the lost diff is seen by a synced book (at full speed the whole recording is passed first)
        async with ReplayServer([CAPTURE], speed=10, rebase=True, verbose=False) as server:
            config = ExchangeCollectorConfig(
                exchange="gateio",
                symbols=PAIRS,
                channels=CHANNELS,
                ws_url=server.ws_url,
                rest_url=server.rest_url,
                ping_interval_s=0.3,  # {"channel":"spot.ping"} on a silent connection
                liveness_interval_s=0.2,  # WebSocket pings whose pongs prove the stream whole (coverage)
            )
            ingestor = Ingestor(IngestConfig((config,)), lake=lake)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            await server.wait_finished(timeout=60)
            protocol = server.protocol
            assert protocol is not None
            status = ingestor.manager.get_status
            # every frame sent, the 10 acks (trades, tickers, 4 books, 4 candles), then two pongs
            await until(lambda: protocol.pongs >= 2, 30, "two pongs")  # type: ignore[attr-defined]
            await until(lambda: status()["messages_received"] >= server.sent + 10 + 2, 30, "every frame")
            stop.set()
            await task
            return (
                status()["collectors"][0],
                server.sent,
                server.shift_ns,
                protocol.rest_books,  # type: ignore[attr-defined]
                protocol.pongs,  # type: ignore[attr-defined]
            )

    return asyncio.run(scenario())


def _naive_book(symbol: str, frames: list[str], until_ms: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """(best bid, best ask) of the recorded REST snapshot plus every recorded diff after it with t <= until_ms,
    applied as it comes (a dict of Decimal prices: the reference the synced book must equal)."""
    (body,) = [f.frame for f in read_capture(SNAPSHOTS) if f.kind == "rest" and f'"id":{_SNAP_IDS[symbol]},' in f.frame]
    snap = orjson.loads(body)
    bids = {p: s for p, s in snap["bids"]}
    asks = {p: s for p, s in snap["asks"]}
    last = snap["id"]
    for frame in frames:
        r = orjson.loads(frame)["result"]
        if r["t"] > until_ms:
            break
        if r["u"] <= last:
            continue
        last = r["u"]
        for side, levels in ((bids, r["b"]), (asks, r["a"])):
            for price, size in levels:
                if Decimal(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
    bid = max(bids, key=Decimal)
    ask = min(asks, key=Decimal)
    return (bid, bids[bid]), (ask, asks[ask])


_SNAP_IDS = {"OMG_USDT": 59231869, "NEO_BTC": 31244065, "DIS_USDT": 1750468, "ZKS_ETH": 11077661}


@pytest.mark.timeout(120)
def test_gateio_live_collection_equals_import(tmp_path: Path) -> None:
    live, imported = str(tmp_path / "live"), str(tmp_path / "import")
    recorded = _recorded()
    collector, sent, shift_ns, rest_books, pongs = _collect(live)
    assert shift_ns % MINUTE_NS == 0 and shift_ns > 0
    assert import_capture([CAPTURE], "gateio", imported) is not None

    # -- every frame landed; subscribe + keep-alive; the gap found and resynced for OMG_USDT only ----------------
    raw = read_raw(live, *ALL_TIME).sort("conn_id", "seq")
    assert raw.filter(~pl.col("conn_id").str.ends_with("/rest"))["conn_id"].n_unique() == 1
    assert collector["reconnects"] == 0
    unshift = GateioExchange("spot").replay_protocol()
    unshift.shift_ms = shift_ns // MS

    def landed(channel: str, symbol: str) -> list[str]:
        return raw.filter((pl.col("channel") == channel) & (pl.col("symbol") == symbol))["payload"].to_list()

    def as_recorded(frames: list[str]) -> list[bytes]:
        out = []
        for f in frames:
            prepared = unshift.prepare(CapturedFrame(0, f, "ws"))
            assert prepared is not None and prepared.data is not None
            out.append(prepared.data)
        return out

    data_rows = raw.filter(~pl.col("channel").is_in(["control", "depthSnapshot"]))
    assert data_rows.height == sent
    for (channel, symbol), frames in recorded.items():
        if symbol not in PAIRS or channel == "control":
            continue
        got = [f.encode() for f in landed(channel, symbol)]
        # every frame the replay sent after the stream's subscribe landed, as recorded (times rebased)
        assert got == as_recorded(frames)[len(frames) - len(got) :], (channel, symbol)
    assert len(landed("spot.trades", "NEO_BTC")) == 5 and len(landed("spot.trades", "DIS_USDT")) == 1
    control = [orjson.loads(c) for c in landed("control", "")]
    acks = [c for c in control if c["event"] == "subscribe"]
    assert len(acks) == 10 and all(c["result"] == {"status": "success"} for c in acks)
    assert sum(c["channel"] == "spot.pong" for c in control) == pongs >= 2
    assert collector["book_sync"] == dict.fromkeys(PAIRS, "synced")
    assert collector["sync_errors"] == 1 and collector["errors"] == 1  # the gap, nothing else

    events = read_events(live, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "synced", "sub_error"]))
    got_events = {s: events.filter(pl.col("symbol") == s).sort("recv_ts")["kind"].to_list() for s in PAIRS}
    assert got_events == {"OMG_USDT": ["synced", "gap", "synced"], "NEO_BTC": ["synced"], "DIS_USDT": ["synced"],
                          "ZKS_ETH": ["synced"]}  # fmt: skip
    (detail,) = events.filter(pl.col("kind") == "gap")["detail"].to_list()
    assert detail == "U=59231897 > previous u+1=59231896 (u=59231897)"
    snapshots = raw.filter(pl.col("channel") == "depthSnapshot")
    assert snapshots.group_by("symbol").len().sort("symbol").rows() == [
        ("DIS_USDT", 1), ("NEO_BTC", 1), ("OMG_USDT", 2), ("ZKS_ETH", 1)]  # fmt: skip
    assert rest_books == 5
    resync = orjson.loads(snapshots.filter(pl.col("symbol") == "OMG_USDT")["payload"][1])
    # the server's book when asked: at or after the diff that showed the gap
    omg_ids = [orjson.loads(f)["result"]["u"] for f in recorded[(BOOK, "OMG_USDT")]]
    assert resync["id"] in omg_ids and resync["id"] >= 59231897

    # -- trades: taker side, exchange time, exact numbers; live == import ----------------------------------------
    norm_live = GATE.normalize_trades(raw).sort("ts", "symbol", "trade_id")
    norm_import = GATE.normalize_trades(read_raw(imported, *ALL_TIME)).sort("ts", "symbol", "trade_id")
    same = [c for c in TRADES if c != "recv_ts"]
    unshifted = norm_live.with_columns(pl.col("ts") - pl.duration(nanoseconds=shift_ns))
    mine = norm_import.filter(pl.col("symbol").is_in([GATE.normalize_symbol(p) for p in PAIRS]))
    assert unshifted.select(same).equals(mine.select(same))
    assert mine.height == 7  # DIS 1, NEO 5, ZKS 1; OMG none
    first = mine.row(0, named=True)
    assert (first["symbol"], first["side"], first["price"], first["size"], first["trade_id"]) == (
        "DIS-USDT", "sell", Decimal("121.58"), Decimal("0.201"), "816995772")  # fmt: skip
    assert first["ts"].timestamp() * 10**9 == pytest.approx(1619093543708264200, abs=1000)
    assert norm_import["ts"].dt.epoch("ns").to_list()[0] == 1619093543708264200

    # -- candles: live == import (times unshifted), values from the recorded trades -----------------------------
    c_import = lake_candles(imported, HOUR0, "1m")
    minute = MINUTE0 + shift_ns  # the recorded minute, rebased: its hour in the live lake
    c_live = live_candles(live, minute - minute % HOUR_NS, "1m")
    c_live = c_live.with_columns(pl.col("open_time", "close_time") - pl.duration(nanoseconds=shift_ns))
    values = ["symbol", "open_time", "open", "high", "low", "close", "volume", "trade_count", "taker_buy_volume"]
    live_mine = c_live.filter(pl.col("symbol").is_in(["DIS-USDT", "NEO-BTC", "ZKS-ETH", "OMG-USDT"]))
    imp_mine = c_import.filter(pl.col("symbol").is_in(["DIS-USDT", "NEO-BTC", "ZKS-ETH", "OMG-USDT"]))
    assert live_mine.select(values).equals(imp_mine.select(values))
    neo = imp_mine.filter(pl.col("symbol") == "NEO-BTC").row(0, named=True)
    ohlc = tuple(Decimal(v) for v in ("0.0018735", "0.0018753", "0.0018678", "0.0018678"))
    assert (neo["open"], neo["high"], neo["low"], neo["close"]) == ohlc
    assert (neo["volume"], neo["trade_count"]) == (Decimal("3.07"), 5)
    dis = imp_mine.filter(pl.col("symbol") == "DIS-USDT").row(0, named=True)
    # Gate.io's own candlestick of that minute (pushed after the trade): o=h=l=c=121.58, v (quote) 24.43758
    assert (dis["open"], dis["close"], dis["volume"] * dis["close"]) == (
        Decimal("121.58"), Decimal("121.58"), Decimal("24.43758"))  # fmt: skip

    # -- book snapshots: the books rebuilt from the live lake equal a plain rebuild of the recorded frames -------
    by_recv = raw.sort("recv_ts")  # REST snapshots among the diffs, in arrival order
    for symbol in PAIRS:
        out = book_samples(by_recv.filter(pl.col("symbol") == symbol), GATE, symbol)
        samples = out.samples.with_columns(pl.col("ts").dt.epoch("ns") - shift_ns)
        assert samples.height >= 1, symbol
        for row in samples.iter_rows(named=True):
            (bid, bid_size), (ask, ask_size) = _naive_book(symbol, recorded[(BOOK, symbol)], row["ts"] // MS)
            got_top = (row["bid_price"], row["bid_size"], row["ask_price"], row["ask_size"])
            assert got_top == (float(bid), float(bid_size), float(ask), float(ask_size)), (symbol, row["ts"])
    omg = book_samples(by_recv.filter(pl.col("symbol") == "OMG_USDT"), GATE, "OMG_USDT")
    assert any(r.startswith("gap: U=59231897") for r in omg.invalid["reason"].to_list())


FUT = GateioExchange("futures")
FUT_DATA = (DATA / "GATEIO_FUTURES.ws.1.0.gz", DATA / "GATEIO_FUTURES.http.0.0.gz")
CONTRACTS = ("OMG_USDT", "RDNT_USDT", "PHB_USDT", "WOO_USDT")


def _collect_futures(lake: str) -> tuple[dict[str, object], int, int, int]:
    async def scenario() -> tuple[dict[str, object], int, int, int]:
        async with ReplayServer(list(FUT_DATA), speed=10, rebase=True, verbose=False) as server:
            config = ExchangeCollectorConfig(
                exchange="gateio-futures",
                symbols=CONTRACTS,
                channels=("futures.trades", "futures.order_book_update", "futures.book_ticker"),
                ws_url=server.ws_url,
                rest_url=server.rest_url,
                ping_interval_s=0.3,
                liveness_interval_s=0.2,
            )
            ingestor = Ingestor(IngestConfig((config,)), lake=lake)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            await server.wait_finished(timeout=60)
            protocol = server.protocol
            assert protocol is not None
            status = ingestor.manager.get_status
            await until(lambda: protocol.pongs >= 2, 30, "two pongs")  # type: ignore[attr-defined]
            # trades and book_ticker: one request each; the 4 books one each
            await until(lambda: status()["messages_received"] >= server.sent + 6 + 2, 30, "every frame")
            stop.set()
            await task
            return status()["collectors"][0], server.sent, server.shift_ns, protocol.pongs  # type: ignore[attr-defined]

    return asyncio.run(scenario())


@pytest.mark.timeout(120)
def test_gateio_futures_books_sync_over_the_replay(tmp_path: Path) -> None:
    """USDT futures (the real 2023 recording): ``futures.order_book_update`` synced over the replay's REST order
    book (``contract=..&with_id=true``) with no U/u gap, ``futures.ping`` answered, and wherever a
    ``futures.book_ticker`` landed with the book's ``u``, its best bid/ask (contracts) equal the rebuilt book's."""
    live = str(tmp_path / "live")
    collector, sent, shift_ns, pongs = _collect_futures(live)
    assert shift_ns % MINUTE_NS == 0 and shift_ns > 0
    raw = read_raw(live, *ALL_TIME).sort("recv_ts")
    assert raw.filter(~pl.col("channel").is_in(["control", "depthSnapshot"])).height == sent
    assert collector["book_sync"] == dict.fromkeys(CONTRACTS, "synced")
    assert collector["sync_errors"] == 0 and collector["errors"] == 0
    control = [orjson.loads(c) for c in raw.filter(pl.col("channel") == "control")["payload"]]
    assert sum(c["channel"] == "futures.pong" for c in control) == pongs >= 2
    events = read_events(live, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "synced"]))
    assert sorted(events.select("kind", "symbol").rows()) == [("synced", c) for c in sorted(CONTRACTS)]
    builders = {c: FUT.book_builder(c) for c in CONTRACTS}
    checked = 0
    for channel, symbol, payload in raw.select("channel", "symbol", "payload").iter_rows():
        if channel in ("depthSnapshot", "futures.order_book_update"):
            assert builders[symbol].on_raw(channel, payload) is None or channel == "depthSnapshot"
        elif channel == "futures.book_ticker":
            b, r = builders[symbol], orjson.loads(payload)["result"]
            if b.valid and b.book.update_id == r["u"]:
                assert b.book.best_bid() == (float(r["b"]), float(r["B"]))
                assert b.book.best_ask() == (float(r["a"]), float(r["A"]))
                checked += 1
    assert all(b.valid and b.gaps == 0 for b in builders.values()) and checked >= 1
    assert sum(b.applied for b in builders.values()) >= 200
    # the same recording imported: the same frames, times unshifted
    imported = str(tmp_path / "import")
    import_capture(list(FUT_DATA), "gateio-futures", imported)
    rec = read_raw(imported, *ALL_TIME).filter(pl.col("symbol").is_in(CONTRACTS))
    for channel in ("futures.order_book_update", "futures.book_ticker"):
        n_live = raw.filter(pl.col("channel") == channel).height
        assert 0 < n_live <= rec.filter(pl.col("channel") == channel).height
