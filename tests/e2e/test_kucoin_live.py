"""KuCoin spot end to end: the real ingestor negotiates a token over REST (``POST /api/v1/bullet-public``) and collects
from `mdp replay` speaking KuCoin's WebSocket and REST protocol over a socket, into a lake; the same capture imported
into another lake gives the same trades and candles.

The capture, ``tests/data/kucoin/KUCOIN.gap.gz``, is the real KuCoin recording (cryptofeed sample data, 2021-04-25,
10 illiquid symbols, 30 s; licence beside it) with its REST snapshots merged in and one BCHSV-USDT level2 push left
out (a sequence-only change: the book is the same, its sequence jumps), see ``make_capture.py``. Message shapes are
2021's (``data`` before ``topic``, level2 without ``time``); the protocol around them (token, endpoint, ping interval,
acks, ``level2_100``) follows KuCoin's documentation today (pages named in ``mdplatform/exchanges/kucoin``).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from _exchange_live import lake_candles, live_candles, until

from mdplatform.book import book_samples
from mdplatform.capture import import_capture, read_capture
from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.exchanges.kucoin import KucoinExchange
from mdplatform.exchanges.kucoin._replay import KucoinReplay
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events, read_raw
from mdplatform.replay import ReplayServer
from mdplatform.schemas import TRADES
from mdplatform.transforms import (
    HOUR_NS,
    floor_ns,
)

CAPTURE = Path(__file__).parents[1] / "data" / "kucoin" / "KUCOIN.gap.gz"
SYMBOLS = (
    "EQZ-BTC",
    "ANKR-BTC",
    "SNX-BTC",
    "FET-BTC",
    "BCHSV-USDT",
    "NRG-BTC",
    "CAPP-BTC",
    "DAPPT-BTC",
    "COV-BTC",
    "LTX-USDT",
)
CHANNELS = ("level2", "match", "ticker", "candles")
GAP = "BCHSV-USDT"
ALL_TIME = (0, 2**62)
KUCOIN = KucoinExchange()


def _recorded() -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for f in read_capture(CAPTURE):
        if f.kind == "ws":
            out.setdefault(KUCOIN.route(f.frame), []).append(f.frame)
    return out


def _collect(lake: str) -> tuple[dict[str, Any], dict[str, Any], int]:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], int]:
        # rebase: exchange times just before now (whole minutes), so the trade and book windows take the frames
        async with ReplayServer([CAPTURE], speed=0, rebase=True, verbose=False) as server:
            protocol = server.protocol
            assert isinstance(protocol, KucoinReplay)
            # what bullet-public hands out: a short ping interval, so the keep-alive shows within the test
            protocol.ping_interval_ms = 300
            config = ExchangeCollectorConfig(
                exchange="kucoin",
                symbols=SYMBOLS,
                channels=CHANNELS,
                ws_url=server.ws_url,
                rest_url=server.rest_url,
                liveness_interval_s=0.2,  # alive events: what was received is proven whole up to them
            )
            ingestor = Ingestor(IngestConfig((config,)), lake=lake)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            await server.wait_finished(timeout=60)
            status = ingestor.manager.get_status
            # every frame sent, the welcome, 4 acks and a pong at least
            await until(lambda: status()["messages_received"] >= server.sent + 6, 30, "every frame and a pong")
            await until(lambda: protocol.pings >= 2, 10, "two pings")
            stop.set()
            await task
            facts = {
                "sent": server.sent,
                "missed": server.missed,
                "tokens": list(protocol.tokens),
                "token": protocol.token,
                "issued": protocol.tokens_issued,
                "connect_ids": list(protocol.connect_ids),
                "rest_books": protocol.rest_books,
            }
            return status()["collectors"][0], facts, server.shift_ns

    return asyncio.run(scenario())


def _candle_messages() -> dict[tuple[str, int], list[str]]:
    """KuCoin's own 1min candles: the last recorded message of each (symbol, minute start in ns)."""
    out: dict[tuple[str, int], list[str]] = {}
    for f in read_capture(CAPTURE):
        if f.kind == "ws" and '"/market/candles:' in f.frame:
            d = orjson.loads(f.frame)["data"]
            out[(d["symbol"], int(d["candles"][0]) * 10**9)] = d["candles"]
    return out


def _reference_book(at_recv_ns: int) -> tuple[list[tuple[Decimal, str]], list[tuple[Decimal, str]]]:
    """BCHSV-USDT's book after every recorded frame received at or before ``at_recv_ns``, kept with plain dicts (an
    independent reading of KuCoin's documented rules: the REST snapshot, then every change whose sequence is beyond
    the book's; price "0" changes only the sequence, size "0" removes the level)."""
    sides: dict[str, dict[Decimal, str]] = {"bids": {}, "asks": {}}
    seq = None
    for f in read_capture(CAPTURE):
        if f.recv_ns > at_recv_ns:
            break
        if f.kind == "rest" and f.symbol == GAP:
            d = orjson.loads(f.frame)["data"]
            sides = {name: {Decimal(p): q for p, q in d[name]} for name in ("bids", "asks")}
            seq = int(d["sequence"])
        elif f.kind == "ws" and f'"/market/level2:{GAP}"' in f.frame and seq is not None:
            d = orjson.loads(f.frame)["data"]
            for name in ("bids", "asks"):
                for p, q, s in d["changes"][name]:
                    if int(s) <= seq or Decimal(p) == 0:
                        continue
                    if Decimal(q) == 0:
                        sides[name].pop(Decimal(p), None)
                    else:
                        sides[name][Decimal(p)] = q
            seq = max(seq, int(d["sequenceEnd"]))
    return sorted(sides["bids"].items(), reverse=True), sorted(sides["asks"].items())


def _assert_top(sample: dict[str, Any], at_recv_ns: int) -> None:
    bids, asks = _reference_book(at_recv_ns)
    n = len(sample["bid_px"])
    assert n == len(sample["ask_px"]) == 25
    assert sample["bid_px"] == [float(p) for p, _ in bids[:n]]
    assert sample["bid_sz"] == [float(q) for _, q in bids[:n]]
    assert sample["ask_px"] == [float(p) for p, _ in asks[:n]]
    assert sample["ask_sz"] == [float(q) for _, q in asks[:n]]


@pytest.mark.timeout(120)
def test_kucoin_live_collection_equals_import(tmp_path: Path) -> None:
    live, imported = str(tmp_path / "live"), str(tmp_path / "import")
    recorded = _recorded()
    collector, facts, shift_ns = _collect(live)
    stats = import_capture([CAPTURE], "kucoin", imported)
    assert stats is not None

    # -- the handshake: one bullet-public token, the server-given endpoint and ping interval --------------------
    assert facts["issued"] == 1 and facts["tokens"] == [facts["token"]]
    (connect_id,) = facts["connect_ids"]
    assert len(connect_id) == 32 and collector["reconnects"] == 0
    (conn,) = collector["connections"]
    assert conn["url"].startswith("ws://127.0.0.1:") and "/endpoint?token=replay-" in conn["url"]

    # -- every frame landed; the keep-alive; the gap found and resynced for BCHSV-USDT only -----------------------
    raw = read_raw(live, *ALL_TIME)
    by_channel = dict(raw.group_by("channel").len().iter_rows())
    counts = {c: sum(len(v) for (ch, _), v in recorded.items() if ch == c) for c in CHANNELS}
    assert counts == {"level2": 3852, "match": 18, "ticker": 830, "candles": 6}
    assert facts["missed"] == 0 and facts["sent"] == sum(counts.values())
    assert {c: by_channel[c] for c in CHANNELS} == counts
    control = [orjson.loads(c) for c in raw.filter(pl.col("channel") == "control")["payload"]]
    kinds = [c["type"] for c in control]
    assert kinds[:5] == ["welcome", "ack", "ack", "ack", "ack"] and kinds.count("pong") >= 2
    assert {c["id"] for c in control if c["type"] == "pong"} == {"ping"}  # the answer to {"id":"ping","type":"ping"}
    subscribed = read_events(live, *ALL_TIME).filter(pl.col("kind") == "subscribed")
    assert subscribed.select("channel", "symbol").unique().height == 40  # every ack named its 10 streams
    # 9 snapshots at the start (LTX-USDT sent no level2 push) and one after the gap
    assert by_channel["depthSnapshot"] == 10 == facts["rest_books"]
    assert collector["book_sync"] == {**dict.fromkeys(SYMBOLS, "synced"), "LTX-USDT": "buffering"}
    assert collector["sync_errors"] == 1
    events = read_events(live, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "synced"]))
    got = {s: events.filter(pl.col("symbol") == s).sort("recv_ts")["kind"].to_list() for s in SYMBOLS}
    assert got == {**{s: ["synced"] for s in SYMBOLS}, GAP: ["synced", "gap", "synced"], "LTX-USDT": []}
    (gap,) = events.filter(pl.col("kind") == "gap")["detail"].to_list()
    assert gap == "sequenceStart=1613277184876 > previous sequenceEnd+1=1613277184875 (sequenceEnd=1613277184876)"
    imported_events = read_events(imported, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "synced"]))
    assert sorted(imported_events["kind"].to_list()) == ["gap"] + ["synced"] * 9  # no snapshot recorded after it

    # -- trades: taker side, exchange time (ns), exact numbers; live == import -----------------------------------
    norm_live = KUCOIN.normalize_trades(raw).sort("ts", "symbol", "trade_id")
    norm_import = KUCOIN.normalize_trades(read_raw(imported, *ALL_TIME)).sort("ts", "symbol", "trade_id")
    same = [c for c in TRADES if c != "recv_ts"]
    unshifted = norm_live.with_columns(pl.col("ts") - pl.duration(nanoseconds=shift_ns))
    assert norm_import.height == 18 and unshifted.select(same).equals(norm_import.select(same))
    first = orjson.loads(recorded[("match", "BCHSV-USDT")][0])["data"]
    one = norm_import.filter(pl.col("trade_id") == first["sequence"])
    row = one.row(0, named=True)
    assert (row["symbol"], row["side"]) == ("BCHSV-USDT", "sell")
    assert (row["price"], row["size"]) == (Decimal("242.781"), Decimal("0.14324938"))
    assert one.select(pl.col("ts").dt.epoch("ns")).item() == int(first["time"]) == 1619378336197407320
    assert sorted(norm_import.group_by("side").len().iter_rows()) == [("buy", 15), ("sell", 3)]

    # -- candles: each lake's 1m candles are KuCoin's own where KuCoin sent one for that minute --------------------
    # (which minutes each lake can publish differs: the recording's acks all carry id 1, so the import knows a quiet
    # stream from its first frame only, while live coverage at speed 0 ends at each stream's last trade)
    messages = _candle_messages()
    first_ns = int(orjson.loads(recorded[("match", "DAPPT-BTC")][0])["data"]["time"])
    c_import = lake_candles(imported, floor_ns(first_ns, HOUR_NS)).filter(pl.col("timeframe") == "1m")
    c_live = live_candles(live, floor_ns(first_ns + shift_ns, HOUR_NS)).filter(pl.col("timeframe") == "1m")
    c_live = c_live.with_columns(pl.col("open_time", "close_time") - pl.duration(nanoseconds=shift_ns))
    checked = []
    for lake, candles in (("import", c_import), ("live", c_live)):
        for c in candles.iter_rows(named=True):
            key = (c["symbol"], int(c["open_time"].timestamp()) * 10**9)
            _, o, cl, h, lo, vol, turnover = messages[key]
            assert (c["open"], c["close"], c["high"], c["low"]) == tuple(Decimal(v) for v in (o, cl, h, lo))
            assert c["volume"] == Decimal(vol) and c["quote_volume"] == Decimal(turnover)
            checked.append((lake, key[0]))
    assert sorted(checked) == [("import", "DAPPT-BTC"), ("live", "BCHSV-USDT")]

    # -- book snapshots: the rebuilt book is the recorded one, sampled again after the resync ---------------------
    # live (all of it within a fraction of a second at speed 0): sampled every millisecond of the receive clock
    mine = raw.filter(pl.col("symbol") == GAP)
    last_ns = int(mine.select(pl.col("recv_ts").dt.epoch("ns").max()).item())
    ms = 10**6
    rebuilt = book_samples(mine, KUCOIN, GAP, clock="receive", interval_ns=ms, end_ns=(last_ns // ms + 2) * ms)
    reasons = rebuilt.invalid["reason"].to_list()
    assert reasons == ["no snapshot yet", f"gap: {gap}"]
    gap_start, gap_end = (int(rebuilt.invalid[c].dt.epoch("ns")[1]) for c in ("start", "end"))
    sampled = rebuilt.samples["ts"].dt.epoch("ns")
    assert (sampled < gap_start).sum() >= 1 and (sampled >= gap_end).sum() >= 1
    # live: the last sample is the recorded book at the recording's end (the push left out changed no level)
    end_ns = max(f.recv_ns for f in read_capture(CAPTURE))
    _assert_top(rebuilt.samples.row(-1, named=True), end_ns)
    # import: one sample a second on the recorded receive clock, each the recorded book at its time
    imp = book_samples(read_raw(imported, *ALL_TIME).filter(pl.col("symbol") == GAP), KUCOIN, GAP, clock="receive")
    assert imp.samples.height >= 10
    for sample in imp.samples.iter_rows(named=True):
        _assert_top(sample, int(sample["ts"].timestamp() * 10**9))
