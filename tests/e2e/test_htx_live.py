"""HTX end to end: the real ingestor collects from `mdp replay` speaking HTX's market WebSocket (gzip frames, the
server's JSON pings, sub acks, ``req``/``rep`` MBP refreshes) over a socket, into a lake; the same captures imported
into another lake give the same trades and candles.

Captures: ``tests/data/htx/HUOBI.ws.44.0.gz`` is a real recording (cryptofeed sample data, 2021-04-17, spot
wss://api.huobi.pro/ws: ``trade.detail`` and ``depth.step0`` of ten illiquid symbols, the server's pings; LICENSE
beside it). ``tests/data/htx/HTX.feed.mbp.gz`` is built from HTX's documentation ("Market By Price (incremental
update)", see ``make_capture.py``): btcusdt and ethusdt ``mbp.150`` on /feed over the same 30 seconds, with one
btcusdt update left out (a seqNum gap) and pings every 5 s.
"""

from __future__ import annotations

import ast
import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from _exchange_live import lake_candles, live_candles, until

from mdplatform.book import book_samples
from mdplatform.capture import import_capture, read_capture
from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.exchanges.htx import HtxExchange, gunzip_text
from mdplatform.exchanges.htx._replay import HtxReplay
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events, read_raw
from mdplatform.replay import ReplayServer
from mdplatform.schemas import TRADES
from mdplatform.transforms import (
    HOUR_NS,
    MINUTE_NS,
    floor_ns,
)

DATA = Path(__file__).parents[1] / "data" / "htx"
REAL = DATA / "HUOBI.ws.44.0.gz"
MBP = DATA / "HTX.feed.mbp.gz"
CAPTURES = [REAL, MBP]
SPOT = ("trioeth", "borusdt", "omgbtc", "xvgeth", "yfihusd", "zeneth", "dogeeth", "fil3susdt", "propyeth", "nesteth")
BOOKS = ("btcusdt", "ethusdt")
ALL_TIME = (0, 2**62)
HTX = HtxExchange("spot")


def _recorded() -> dict[tuple[str, str], list[str]]:
    """Every recorded received frame's text by route (the pings under ("control", ""))."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in CAPTURES:
        for f in read_capture(path):
            if f.kind == "ws":
                text = gunzip_text(ast.literal_eval(f.frame))
                assert text is not None
                out.setdefault(HTX.route(text), []).append(text)
    return out


def _collect(lake: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        # two connections (/ws and /feed): the cursor starts once both have subscribed
        async with ReplayServer(CAPTURES, speed=0, rebase=True, verbose=False, subscribers=2) as server:
            trades = ExchangeCollectorConfig(
                exchange="htx", symbols=SPOT, channels=("trade.detail", "depth.step0"), ws_url=server.ws_url
            )
            # MBP books are served on /feed only: a collector entry of their own (its connection goes there)
            books = ExchangeCollectorConfig(exchange="htx", symbols=BOOKS, channels=("mbp.150",), ws_url=server.ws_url)
            ingestor = Ingestor(IngestConfig((trades, books), status_http="off"), lake=lake)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            await server.wait_finished(timeout=60)
            protocol = server.protocol
            assert isinstance(protocol, HtxReplay)
            pings_sent = server.sent_by_stream.get("ping", 0)
            # every frame sent, 22 acks, the refreshes answered; every ping answered
            status = ingestor.manager.get_status
            expected = server.sent + 22 + protocol.refreshes
            await until(lambda: status()["messages_received"] >= expected, 30, "every frame and ack")
            await until(lambda: len(protocol.pongs) >= pings_sent, 30, "a pong for every ping")
            stop.set()
            await task
            return status()["collectors"], {
                "sent": server.sent,
                "pings_sent": pings_sent,
                "pings": list(protocol.pings),
                "pongs": list(protocol.pongs),
                "refreshes": protocol.refreshes,
                "shift_ns": server.shift_ns,
            }

    return asyncio.run(scenario())


@pytest.mark.timeout(120)
def test_htx_live_collection_equals_import(tmp_path: Path) -> None:
    live, imported = str(tmp_path / "live"), str(tmp_path / "import")
    recorded = _recorded()
    collectors, run = _collect(live)
    shift_ns = int(run["shift_ns"])
    stats = import_capture(CAPTURES, "htx", imported)
    assert stats is not None

    # -- keep-alive: the server's gzip pings reached both connections and each one was answered with its value ----
    recorded_pings = [json.loads(t)["ping"] for t in recorded[("control", "")] if t.startswith('{"ping"')]
    assert len(recorded_pings) == 12  # 6 in the real recording, 6 in the built one
    assert run["pings_sent"] == 2 * 12  # to both connections (/ws and /feed)
    shift_ms = shift_ns // 1_000_000
    assert sorted(run["pongs"]) == sorted(2 * [p + shift_ms for p in recorded_pings])

    # -- every frame landed (decoded from gzip), the gap found and resynced for btcusdt only ---------------------
    raw = read_raw(live, *ALL_TIME)
    by_channel = dict(raw.group_by("channel").len().iter_rows())
    n_trade_frames = sum(len(v) for (c, _), v in recorded.items() if c == "trade.detail")
    n_mbp = sum(1 for (c, _), v in recorded.items() if c == "mbp.150" for t in v if t.startswith('{"ch"'))
    assert by_channel["trade.detail"] == n_trade_frames == 44
    assert by_channel["depth.step0"] == sum(len(v) for (c, _), v in recorded.items() if c == "depth.step0") == 292
    # the recorded updates plus the refreshes the session asked for (2 at the start, 1 after the gap)
    assert run["refreshes"] == 3
    assert by_channel["mbp.150"] == n_mbp + 3 == 299 + 3
    control = raw.filter(pl.col("channel") == "control")["payload"].to_list()
    assert sum(1 for c in control if c.startswith('{"ping"')) == 24
    assert sorted(json.loads(c)["subbed"] for c in control if '"subbed"' in c) == sorted(
        [f"market.{s}.{ch}" for s in SPOT for ch in ("trade.detail", "depth.step0")]
        + [f"market.{s}.mbp.150" for s in BOOKS]
    )
    assert by_channel["trade.detail"] + by_channel["depth.step0"] + n_mbp + 24 == run["sent"]
    book_sync = {k: v for c in collectors for k, v in c["book_sync"].items()}
    assert book_sync == dict.fromkeys(SPOT + BOOKS, "synced")
    assert sum(c["sync_errors"] for c in collectors) == 1
    assert sum(c["reconnects"] for c in collectors) == 0

    events = read_events(live, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "checksum", "synced"]))
    got = {s: events.filter(pl.col("symbol") == s).sort("recv_ts")["kind"].to_list() for s in BOOKS}
    assert got == {"btcusdt": ["synced", "gap", "synced"], "ethusdt": ["synced"]}
    (gap,) = events.filter(pl.col("kind") == "gap")["detail"].to_list()
    assert gap.startswith("sequence gap: prevSeqNum=")
    assert events.filter(pl.col("channel") == "depth.step0").height == len(SPOT)  # each whole-book stream synced
    imported_events = read_events(imported, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "synced"]))
    assert sorted(imported_events.filter(pl.col("channel") == "mbp.150")["kind"].to_list()) == [
        "gap",
        "synced",
        "synced",
    ]

    # -- trades: every one landed, taker side, exchange time, exact numbers; live == import ----------------------
    norm_live = HTX.normalize_trades(raw).sort("ts", "symbol", "trade_id")
    norm_import = HTX.normalize_trades(read_raw(imported, *ALL_TIME)).sort("ts", "symbol", "trade_id")
    assert norm_live.height == norm_import.height == 73
    same = [c for c in TRADES if c != "recv_ts"]
    unshifted = norm_live.with_columns(pl.col("ts") - pl.duration(nanoseconds=shift_ns))
    assert unshifted.select(same).equals(norm_import.select(same))
    trio = json.loads(recorded[("trade.detail", "trioeth")][0])["tick"]["data"][0]
    row = norm_import.filter(pl.col("symbol") == "TRIO-ETH").row(0, named=True)
    assert (row["trade_id"], row["side"], row["ts"].timestamp() * 1000) == (str(trio["tradeId"]), "buy", trio["ts"])
    assert row["price"] == Decimal("0.00000092")  # "price":9.2E-7 on the wire
    assert row["size"] == Decimal("20995.88")

    # -- candles: live == import; a minute's values from the recorded trades --------------------------------------
    first_ms = min(int(r["ts"].timestamp() * 1000) for r in norm_import.iter_rows(named=True))
    hour = floor_ns(first_ms * 1_000_000, HOUR_NS)
    c_import = lake_candles(imported, hour, "1m")
    c_live = live_candles(live, floor_ns(first_ms * 1_000_000 + shift_ns, HOUR_NS))
    c_live = c_live.filter(pl.col("timeframe") == "1m").sort("symbol", "open_time")
    c_live = c_live.with_columns(pl.col("open_time", "close_time") - pl.duration(nanoseconds=shift_ns))
    values = [c for c in c_import.columns if c not in ("complete", "coverage")]
    # the same candles where live coverage reaches: the trade HTX pushes on subscribe (the symbol's last, 20-60 s old
    # here) falls, at replay speed 0, in a minute before the live connection's coverage starts (the live receive
    # clock runs the recording's 30 s in about a second); the import keeps the recorded receive times
    stale = {"BOR-USDT", "OMG-BTC", "TRIO-ETH"}  # one recorded trade each: the stale one
    assert set(c_import["symbol"]) - set(c_live["symbol"]) == stale
    assert c_live.height == c_import.height - len(stale) == 4
    assert c_live.select(values).equals(c_import.filter(~pl.col("symbol").is_in(stale)).select(values))
    fil = c_import.filter(pl.col("symbol") == "FIL3S-USDT")
    (minute,) = fil.filter(pl.col("open_time").dt.minute() == 47).iter_rows(named=True)  # 16:48 is not closed
    start = int(minute["open_time"].timestamp()) * 1000
    in_minute = sorted(
        (d for f in recorded[("trade.detail", "fil3susdt")] for d in json.loads(f, parse_float=str)["tick"]["data"]),
        key=lambda d: (d["ts"], d["tradeId"]),
    )
    in_minute = [d for d in in_minute if start <= d["ts"] < start + MINUTE_NS // 1_000_000]
    assert minute["trade_count"] == len(in_minute) > 10
    assert minute["open"] == Decimal(in_minute[0]["price"]) and minute["close"] == Decimal(in_minute[-1]["price"])
    assert minute["volume"] == sum(Decimal(d["amount"]) for d in in_minute)
    assert minute["high"] == max(Decimal(d["price"]) for d in in_minute)

    # -- book snapshots: btcusdt sampled before the gap and again after its refresh, with the recorded levels -----
    rebuilt = book_samples(raw.filter(pl.col("symbol") == "btcusdt"), HTX, "btcusdt")
    # invalid until the first refresh (at speed 0 the cursor runs seconds of the recording ahead before the req is
    # answered: the refresh is the book there), then from the gap to the refresh it asked for
    first, invalid = rebuilt.invalid.sort("start").iter_rows(named=True)
    assert first["reason"] == "no snapshot yet"
    assert invalid["reason"].startswith("gap: sequence gap: prevSeqNum=")
    samples = rebuilt.samples.with_columns(ts=pl.col("ts").dt.epoch("ns") - shift_ns)
    before = samples.filter(pl.col("ts") < invalid["start"].timestamp() * 10**9 - shift_ns)
    after = samples.filter(pl.col("ts") >= invalid["end"].timestamp() * 10**9 - shift_ns)
    assert before.height >= 3 and after.height >= 1 and samples.height == before.height + after.height
    for sample in (before.row(-1, named=True), after.row(-1, named=True)):
        bids, asks = _reference_book(recorded[("mbp.150", "btcusdt")], sample["ts"])
        n = len(sample["bid_px"])
        assert n > 5 and sample["bid_px"] == [float(p) for p, _ in bids[:n]]
        assert sample["bid_sz"] == [float(q) for _, q in bids[:n]]
        assert sample["ask_px"] == [float(p) for p, _ in asks[: len(sample["ask_px"])]]


def _reference_book(frames: list[str], at_ns: int) -> tuple[list[tuple[Decimal, str]], list[tuple[Decimal, str]]]:
    """The book after the recorded refresh and every recorded update up to ``at_ns``, kept with plain dicts (an
    independent reading of the documented layout: a level's size replaces the previous one, 0 removes it)."""
    sides: dict[str, dict[Decimal, str]] = {"bids": {}, "asks": {}}
    for text in frames:
        msg = json.loads(text, parse_float=str)
        if "rep" in msg:
            body, loads = msg["data"], True
        else:
            body, loads = msg["tick"], False
            if msg["ts"] * 1_000_000 > at_ns:
                break
        if loads:
            sides = {"bids": {}, "asks": {}}
        for name in ("bids", "asks"):
            for px, sz in body.get(name, []):
                if Decimal(str(sz)) == 0:
                    sides[name].pop(Decimal(str(px)), None)
                else:
                    sides[name][Decimal(str(px))] = str(sz)
    return sorted(sides["bids"].items(), reverse=True), sorted(sides["asks"].items())


SWAP = DATA / "HTX_SWAP.ws.hf.gz"


@pytest.mark.timeout(120)
def test_htx_swap_live_high_freq_gap_resubscribes_that_contract(tmp_path: Path) -> None:
    """USDT-margined swaps over the replay (``HTX_SWAP.ws.hf.gz``, built from "[General] Subscribe Incremental Market
    Depth Data" and "Subscribe Trade Detail Data", see ``make_capture.py``): one high_freq version left out is found,
    the contract unsubscribed and subscribed again, the replay's snapshot resyncs it; pings answered; trades exact."""
    lake = str(tmp_path / "swap")
    swap = HtxExchange("linear")

    async def scenario() -> tuple[dict[str, Any], HtxReplay, int]:
        async with ReplayServer([SWAP], speed=0, verbose=False) as server:
            config = ExchangeCollectorConfig(
                exchange="htx-swap",
                symbols=("BTC-USDT",),
                channels=("trade.detail", "depth.size_150.high_freq"),
                ws_url=server.ws_url,
            )
            ingestor = Ingestor(IngestConfig((config,), status_http="off"), lake=lake)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            await server.wait_finished(timeout=60)
            protocol = server.protocol
            assert isinstance(protocol, HtxReplay)
            status = ingestor.manager.get_status
            # frames, 2 acks, unsub + sub acks, the generated snapshot
            expected = server.sent + 2 + 2 + protocol.snapshots_sent
            await until(lambda: status()["messages_received"] >= expected, 30, "every frame and ack")
            await until(lambda: len(protocol.pongs) >= len(protocol.pings), 30, "a pong for every ping")
            stop.set()
            await task
            return status()["collectors"][0], protocol, server.sent

    collector, protocol, sent = asyncio.run(scenario())
    assert protocol.snapshots_sent == 1 and len(protocol.pings) == 18
    assert sorted(protocol.pongs) == sorted(protocol.pings)
    assert collector["book_sync"] == {"BTC-USDT": "synced"} and collector["sync_errors"] == 1
    events = read_events(lake, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "synced", "unsubscribed"]))
    assert events.sort("recv_ts")["kind"].to_list() == ["synced", "gap", "unsubscribed", "synced"]
    raw = read_raw(lake, *ALL_TIME)
    by_channel = dict(raw.group_by("channel").len().iter_rows())
    assert by_channel["depth.size_150.high_freq"] == 224 + 1  # the recorded pushes (one left out) and the snapshot
    assert by_channel["trade.detail"] + 224 + 18 == sent
    recorded = [t for _, t in ((f.recv_ns, gunzip_text(ast.literal_eval(f.frame))) for f in read_capture(SWAP)) if t]
    items = [
        d
        for t in recorded
        if t.startswith('{"ch":"market.BTC-USDT.trade')
        for d in json.loads(t, parse_float=str)["tick"]["data"]
    ]
    trades = swap.normalize_trades(raw).sort("ts", "trade_id")
    assert trades.height == len(items) > 100
    want = sorted((str(d["id"]), d["direction"], Decimal(d["price"]), Decimal(d["quantity"])) for d in items)
    have = sorted((r["trade_id"], r["side"], r["price"], r["size"]) for r in trades.iter_rows(named=True))
    assert have == want and set(trades["symbol"]) == {"BTC-USDT-PERP"}
    samples = book_samples(raw, swap, "BTC-USDT")
    (invalid,) = samples.invalid.iter_rows(named=True)
    assert invalid["reason"].startswith("gap: sequence gap: version=")
