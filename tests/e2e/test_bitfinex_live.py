"""Bitfinex v2 end to end: the real ingestor collects from `mdp replay` speaking Bitfinex's WebSocket v2 over a socket
(conf, one subscribe per stream, chanIds, heartbeats, ping/pong, unsubscribe by chanId) into a lake; the same capture
imported into another lake gives the same trades and candles.

The capture is ``tests/data/bitfinex/BITFINEX.ws.cs.gz``: cryptofeed's real recording of 2021-04-17 (7 pairs: books,
trades snapshots, tickers, heartbeats) with frames built from Bitfinex's documentation (see
``tests/data/bitfinex/make_capture.py``): a checksum frame after every book frame, the 60th of tIOTETH wrong; seven
tTESTBTC:TESTUSD trades as ``te`` + ``tu``; heartbeats to 16:40:04. The replay strips the recorded sequence numbers
(it cannot number frames per client), so here the forced fault is the checksum; sequence gaps are tested on the real
recording in tests/exchanges/test_bitfinex.py.
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
from mdplatform.exchanges.bitfinex import BitfinexExchange, exact, split_seq
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events, read_raw
from mdplatform.replay import ReplayServer
from mdplatform.schemas import TRADES
from mdplatform.transforms import (
    HOUR_NS,
    floor_ns,
)

CAPTURE = Path(__file__).parents[1] / "data" / "bitfinex" / "BITFINEX.ws.cs.gz"
SYMBOLS = ("tBFTUSD", "tIOTETH", "tDOGUSD", "tMNABTC", "tODEUSD", "tTESTBTC:TESTUSD", "tSNGUSD")
ALL_TIME = (0, 2**62)
BFX = BitfinexExchange()


def _recorded() -> dict[tuple[str, str], list[str]]:
    route = BFX.connection_router()
    out: dict[tuple[str, str], list[str]] = {}
    for f in read_capture(CAPTURE):
        out.setdefault(route(f.frame), []).append(f.frame)
    return out


def _collect(lake: str) -> tuple[dict[str, object], int, dict[str, int], int, dict[str, int]]:
    async def scenario() -> tuple[dict[str, object], int, dict[str, int], int, dict[str, int]]:
        async with ReplayServer([CAPTURE], speed=0, rebase=True, verbose=False) as server:
            config = ExchangeCollectorConfig(
                exchange="bitfinex",
                symbols=SYMBOLS,
                channels=("book", "trades", "ticker"),
                ws_url=server.ws_url,
                ping_interval_s=0.3,  # {"event":"ping"} on a silent connection
                liveness_interval_s=0.5,
            )
            ingestor = Ingestor(IngestConfig((config,)), lake=lake)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            await server.wait_finished(timeout=60)
            protocol = server.protocol
            assert protocol is not None
            generated = {
                "book": protocol.snapshots_sent,  # type: ignore[attr-defined]
                "trades": protocol.trade_snapshots_sent,  # type: ignore[attr-defined]
                "ticker": protocol.ticker_snapshots_sent,  # type: ignore[attr-defined]
            }
            status = ingestor.manager.get_status
            # every frame sent and generated, info + conf + 22 subscribed + 1 unsubscribed, and a pong
            expected = server.sent + sum(generated.values()) + 26
            await until(lambda: status()["messages_received"] >= expected, 30, "every frame and a pong")
            stop.set()
            await task
            return status()["collectors"][0], server.sent, generated, server.shift_ns, dict(server.sent_by_stream)

    return asyncio.run(scenario())


def _reference_book(frames: list[str]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The book after ``frames`` with plain dicts (an independent reading of "Books")."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    for frame in frames:
        data = split_seq(exact(frame))[0][1]
        if not isinstance(data, list):
            continue
        if not data or isinstance(data[0], list):
            bids, asks = {}, {}
        for price, count, amount in data if data and isinstance(data[0], list) else [data]:
            side = asks if Decimal(amount) < 0 else bids
            if count == "0":
                side.pop(Decimal(price), None)
            else:
                side[Decimal(price)] = abs(Decimal(amount))
    return (
        [(float(p), float(s)) for p, s in sorted(bids.items(), reverse=True)],
        [(float(p), float(s)) for p, s in sorted(asks.items())],
    )


@pytest.mark.timeout(120)
def test_bitfinex_live_collection_equals_import(tmp_path: Path) -> None:
    live, imported = str(tmp_path / "live"), str(tmp_path / "import")
    recorded = _recorded()
    collector, sent, generated, shift_ns, by_stream = _collect(live)
    stats = import_capture([CAPTURE], "bitfinex", imported)
    assert stats is not None

    # -- every frame landed; the wrong checksum found and that symbol alone resynced -----------------------------
    raw = read_raw(live, *ALL_TIME)
    by_channel = dict(raw.group_by("channel").len().iter_rows())
    data_channels = ("book", "trades", "ticker", "pending")
    assert sum(by_channel.get(c, 0) for c in data_channels) == sent + sum(generated.values())
    book_sent = {k.partition(":")[2]: v for k, v in by_stream.items() if k.startswith("book:")}
    assert by_channel["book"] == sum(book_sent.values()) + generated["book"]
    # every recorded book frame went out once its stream was subscribed (a stream whose first frames the cursor passed
    # before its subscribe request came got a generated snapshot instead)
    assert all(book_sent[s] <= len(recorded[("book", s)]) for s in SYMBOLS)
    assert generated["book"] >= 1  # tIOTETH's snapshot after its resubscribe
    control = [orjson.loads(c) for c in raw.filter(pl.col("channel") == "control")["payload"]]
    kinds = [c["event"] for c in control]
    assert kinds.count("subscribed") == 22 and kinds.count("unsubscribed") == 1 and "pong" in kinds
    assert {"event": "conf", "status": "OK", "flags": 131072} in control  # checksums on, sequence numbers not served
    assert collector["book_sync"] == dict.fromkeys(SYMBOLS, "synced")
    assert collector["sync_errors"] == 1 and collector["reconnects"] == 0

    events = read_events(live, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "checksum", "synced"]))
    got = {s: events.filter(pl.col("symbol") == s).sort("recv_ts")["kind"].to_list() for s in SYMBOLS}
    assert got == {s: ["synced", "checksum", "synced"] if s == "tIOTETH" else ["synced"] for s in SYMBOLS}
    (bad,) = events.filter(pl.col("kind") == "checksum")["detail"].to_list()
    assert bad.startswith("checksum mismatch: received ")
    # the import sees the same fault (its recording holds no resubscription: that book stays invalid)
    imported_events = read_events(imported, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "checksum", "synced"]))
    assert sorted(imported_events["kind"].to_list()) == ["checksum"] + ["synced"] * 7

    # -- trades: taker side, exchange time, exact numbers, te/tu once; live == import -----------------------------
    norm_live = BFX.normalize_trades(raw).sort("ts", "symbol", "trade_id")
    norm_import = BFX.normalize_trades(read_raw(imported, *ALL_TIME)).sort("ts", "symbol", "trade_id")
    same = [c for c in TRADES if c != "recv_ts"]
    unshifted = norm_live.with_columns(pl.col("ts") - pl.duration(nanoseconds=shift_ns))
    assert unshifted.select(same).equals(norm_import.select(same))
    assert norm_import.height == 210 + 7
    built = norm_import.filter(pl.col("trade_id") == "670155135").row(0, named=True)  # [..,-0.003,60349.5] te + tu
    assert built["side"] == "sell" and built["price"] == Decimal("60349.5") and built["size"] == Decimal("0.003")
    assert built["ts"].timestamp() * 1000 == 1618677564831 and built["symbol"] == "TESTBTC-TESTUSD"

    # -- candles: live == import (times unshifted); the te/tu minute has the built trades' values ----------------
    hour = floor_ns(1618677564831 * 1_000_000, HOUR_NS)
    c_import = lake_candles(imported, hour, "1m")
    c_live = live_candles(live, floor_ns(1618677564831 * 1_000_000 + shift_ns, HOUR_NS))
    c_live = c_live.filter(pl.col("timeframe") == "1m").sort("symbol", "open_time")
    c_live = c_live.with_columns(pl.col("open_time", "close_time") - pl.duration(nanoseconds=shift_ns))
    values = [c for c in c_import.columns if c not in ("complete", "coverage")]
    # the minutes from the connection's start on (16:39): the same candles in both lakes. (Earlier minutes hold only
    # the trades snapshots' history, from before the connection: what coverage makes of those depends on the receive
    # clock, which at speed 0 runs the recording in a second, so they are not compared.)
    since = pl.col("open_time").dt.epoch("ns") >= 1618677540 * 10**9
    c_import, c_live = c_import.filter(since), c_live.filter(since)
    assert c_import.height >= 1 and c_live.select(values).equals(c_import.select(values))
    # published (the exchange's clock passed 16:40) but not complete: the connection opened at 16:39:03
    assert not c_import["complete"].any()
    minute = c_import.filter(
        (pl.col("symbol") == "TESTBTC-TESTUSD") & (pl.col("open_time").dt.epoch("ns") == 1618677540 * 10**9)
    ).row(0, named=True)
    assert (minute["open"], minute["high"], minute["low"], minute["close"]) == tuple(
        Decimal(v) for v in ("60412", "60420", "60349.5", "60420")
    )
    assert minute["volume"] == Decimal("1.8835") and minute["trade_count"] == 6

    # -- book snapshots: tIOTETH invalid from the wrong checksum to its new snapshot, then the recorded levels -----
    iot = book_samples(raw, BFX, "tIOTETH", interval_ns=1_000_000)
    (invalid,) = iot.invalid.iter_rows(named=True)
    assert invalid["reason"].startswith("checksum: checksum mismatch")
    samples = iot.samples.with_columns(t=pl.col("ts").dt.epoch("ns"))
    after = samples.filter(pl.col("t") >= invalid["end"].timestamp() * 10**9)
    assert after.height >= 1 and samples.filter(pl.col("t") < invalid["start"].timestamp() * 10**9).height >= 1

    def landed(symbol: str, t: int) -> list[str]:
        """The book frames the live lake holds of ``symbol`` received at or before ``t`` (the receive clock)."""
        rows = raw.filter((pl.col("channel") == "book") & (pl.col("symbol") == symbol))
        return rows.filter(pl.col("recv_ts").dt.epoch("ns") <= t)["payload"].to_list()

    for symbol, sample in (
        ("tIOTETH", after.row(-1, named=True)),
        *((s, book_samples(raw, BFX, s, interval_ns=1_000_000).samples.row(-1, named=True)) for s in SYMBOLS[2:4]),
    ):
        bids, asks = _reference_book(landed(symbol, int(sample["ts"].timestamp() * 10**9)))
        n = len(sample["bid_px"])
        assert n == min(25, len(bids)) and list(zip(sample["bid_px"], sample["bid_sz"], strict=True)) == bids[:n]
        m = len(sample["ask_px"])
        assert m == min(25, len(asks)) and list(zip(sample["ask_px"], sample["ask_sz"], strict=True)) == asks[:m]
    # and the resynced tIOTETH book ends as the recording does
    assert _reference_book(landed("tIOTETH", 2**62)) == _reference_book(recorded[("book", "tIOTETH")])
