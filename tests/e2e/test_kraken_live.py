"""Kraken WebSocket v2 end to end: the real ingestor collects from `mdp replay` speaking Kraken's v2 protocol over a
socket into a lake; the same capture imported into another lake gives the same trades and candles.

The capture is ``tests/data/kraken/KRAKEN_V2.ws.1.0.gz``: v2 messages built from the docs' shapes out of cryptofeed's
real v1 recordings of 2021-04-17 (see ``tests/data/kraken/build_v2.py``: recorded prices, sizes, times, sides and
checksums; trade ids numbered). Here a copy gets two changes: one SC/EUR book update carries a wrong checksum, and a
built tail (no-op OMG/USD book updates to 16:50:05, one XMR/USD trade at 16:50:00.5: the next id, the last price)
ends the recording after the minute of the recorded trades, so that minute's candles are known closed. The replay
drops the connection once, before that minute: the collector reconnects, subscribes again and every book is
resynced from a fresh snapshot. (Trade snapshots repeated by a reconnect are kept once: tests/exchanges/test_kraken.)
"""

from __future__ import annotations

import asyncio
import gzip
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl
import pytest
from _exchange_live import lake_candles, live_candles, until

from mdplatform.book import book_samples
from mdplatform.capture import import_capture, read_capture
from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.exchanges.kraken import KrakenExchange, exact_loads, rfc3339, rfc3339_ns
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events, read_raw
from mdplatform.replay import ReplayServer
from mdplatform.schemas import TRADES
from mdplatform.transforms import (
    HOUR_NS,
    MINUTE_NS,
    floor_ns,
    registry_normalizer,
    trades_for_window,
)

BUILT = Path(__file__).parents[1] / "data" / "kraken" / "KRAKEN_V2.ws.1.0.gz"
PAIRS = (
    "WAVES/EUR",
    "XMR/USD",
    "KSM/BTC",
    "GRT/ETH",
    "SC/EUR",
    "ETH/CHF",
    "OCEAN/BTC",
    "OMG/USD",
    "BTC/CHF",
    "ADA/BTC",
)
ALL_TIME = (0, 2**62)
KRAKEN = KrakenExchange()
#: the connection drops at 16:48:58 (recorded time), before the minute of the trades: a reconnect is a gap in
#: what it proves, and that minute's candles must be whole to compare with the import's
DROP_AFTER = 600
TAIL = (
    '1618678200.6: {"channel":"trade","type":"update","data":[{"symbol":"XMR/USD","side":"buy","price":353.81000000,'
    '"qty":0.10000000,"ord_type":"limit","trade_id":1000005,"timestamp":"2021-04-17T16:50:00.500000Z"}]}'
)


def _capture(tmp: Path) -> tuple[Path, int]:
    """The built capture with SC/EUR's 400th update checksum off by one and the built tail; (path, its real
    checksum). The tail: no-op OMG/USD updates every second (its best ask again, same qty and checksum) through the
    recording's quiet end, with one XMR/USD trade at 16:50:00.5 among them, so the exchange clock passes 16:50 without a
    jump (coverage does not believe a clock that leaps far ahead of the receive clock)."""
    with gzip.open(BUILT, "rt") as f:
        lines = f.read().splitlines()
    updates = [i for i, ln in enumerate(lines) if '"type":"update","data":[{"symbol":"SC/EUR","bids"' in ln]
    i = updates[399]
    real = exact_loads(lines[i].split(": ", 1)[1])["data"][0]["checksum"]
    lines[i] = lines[i].replace(f'"checksum":{real},', f'"checksum":{real + 1},')
    omg = KRAKEN.book_builder("OMG/USD")
    for ln in lines:
        if '"channel":"book","type":' in ln and '"symbol":"OMG/USD"' in ln[:120]:
            omg.on_raw("book", ln.split(": ", 1)[1])
    price, qty = omg.book.raw_asks(1)[0]
    tail = []
    for second in range(25, 66):
        ns = (1618678140 + second) * 10**9
        update = (
            f'{{"channel":"book","type":"update","data":[{{"symbol":"OMG/USD","bids":[],'
            f'"asks":[{{"price":{price},"qty":{qty}}}],"checksum":{omg.checksum()},"timestamp":"{rfc3339(ns)}"}}]}}'
        )
        tail.append(f"{(ns + 30_000_000) / 10**9:.6f}: {update}")
    out = tmp / "KRAKEN_V2.ws.1.0.gz"
    with gzip.open(out, "wt") as f:
        f.write("\n".join([*lines, *sorted([*tail, TAIL], key=lambda ln: float(ln.split(":", 1)[0]))]) + "\n")
    return out, real


def _collect(lake: str, capture: Path) -> tuple[dict[str, object], int, int, int, int]:
    async def scenario() -> tuple[dict[str, object], int, int, int, int]:
        # rebase: exchange times just before now, so the trade windows take the frames; at 10x the recorded pace
        # (about 4 s) the exchange clock never runs further ahead of the receive clock than coverage believes
        async with ReplayServer([capture], speed=10, rebase=True, drop_after=DROP_AFTER, verbose=False) as server:
            config = ExchangeCollectorConfig(
                exchange="kraken",
                symbols=PAIRS,
                channels=("trade", "book", "ticker"),
                ws_url=server.ws_url,
                ping_interval_s=0.3,  # the application ping on a silent connection
                liveness_interval_s=0.5,
                reconnect_initial_s=0.05,
            )
            ingestor = Ingestor(IngestConfig((config,)), lake=lake)
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(stop=stop))
            await server.wait_finished(timeout=60)
            protocol = server.protocol
            assert protocol is not None
            generated = protocol.snapshots_sent + protocol.trade_snapshots_sent  # type: ignore[attr-defined]
            # every frame sent, the generated snapshots, 2 x (status + 30 acks), 2 resubscribe acks and the pongs
            # (pings go out whenever the connection is silent for 0.3 s, so the target moves until the end)
            status = ingestor.manager.get_status

            def landed() -> bool:
                pongs = protocol.pongs_sent  # type: ignore[attr-defined]
                return pongs > 0 and status()["messages_received"] >= server.sent + generated + 2 * 31 + 2 + pongs

            await until(landed, 30, "every frame and the pongs")
            stop.set()
            await task
            return (
                status()["collectors"][0],
                server.sent,
                protocol.snapshots_sent,  # type: ignore[attr-defined]
                protocol.trade_snapshots_sent,  # type: ignore[attr-defined]
                server.shift_ns,
            )

    return asyncio.run(scenario())


@pytest.mark.timeout(120)
def test_kraken_live_collection_equals_import(tmp_path: Path) -> None:
    capture, real_checksum = _capture(tmp_path)
    live, imported = str(tmp_path / "live"), str(tmp_path / "import")
    recorded: dict[str, list[str]] = {}
    for f in read_capture(capture):
        if f.kind == "ws":
            recorded.setdefault(KRAKEN.route(f.frame)[0], []).append(f.frame)
    collector, sent, book_snaps, trade_snaps, shift_ns = _collect(live, capture)
    assert import_capture([capture], "kraken", imported) is not None

    # -- every frame landed; the bad checksum found and resynced for SC/EUR only; the drop reconnected ----------
    raw = read_raw(live, *ALL_TIME)
    by_channel = dict(raw.group_by("channel").len().iter_rows())
    assert by_channel["book"] + by_channel["trade"] + by_channel["ticker"] == sent + book_snaps + trade_snaps
    assert book_snaps == 10 + 1  # every book again after the reconnect, SC/EUR after its resubscribe
    assert trade_snaps == 0  # no trade had been passed when the reconnect subscribed again
    assert collector["reconnects"] == 1 and collector["sync_errors"] == 1
    assert collector["book_sync"] == dict.fromkeys(PAIRS, "synced")
    control = [orjson.loads(c) for c in raw.filter(pl.col("channel") == "control")["payload"]]
    assert any(c.get("method") == "pong" for c in control)  # the keep-alive: {"method":"ping"} answered
    unsub = [(c["result"]["channel"], c["result"]["symbol"]) for c in control if c.get("method") == "unsubscribe"]
    assert unsub == [("book", "SC/EUR")]

    events = read_events(live, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "checksum", "synced"]))
    kinds = {p: events.filter(pl.col("symbol") == p).sort("recv_ts")["kind"].to_list() for p in PAIRS}
    assert kinds.pop("SC/EUR") == ["synced", "synced", "checksum", "synced"]  # start, reconnect, bad, resync
    assert set(map(tuple, kinds.values())) == {("synced", "synced")}  # the start and the reconnect
    (detail,) = events.filter(pl.col("kind") == "checksum")["detail"].to_list()
    assert detail.startswith(f"checksum mismatch: received {real_checksum + 1}, computed {real_checksum}")
    # the import sees the same fault; its recording holds no resubscribe snapshot: SC/EUR stays invalid
    imported_events = read_events(imported, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "checksum", "synced"]))
    assert sorted(imported_events["kind"].to_list()) == ["checksum"] + ["synced"] * 10

    # -- trades: taker side, exchange time, exact numbers; each id once; live == import ----------------------------
    recorded_trades = [t for f in recorded["trade"] for t in KRAKEN.parse_trades(f)]
    assert len(recorded_trades) == 11
    first_ns = min(t.ts for t in recorded_trades)
    hour = floor_ns(first_ns, HOUR_NS)
    live_window = trades_for_window(
        read_raw(live, *ALL_TIME),
        floor_ns(first_ns + shift_ns, HOUR_NS),
        floor_ns(first_ns + shift_ns, HOUR_NS) + HOUR_NS,
        HOUR_NS,
        normalize=registry_normalizer,
        skew_ns=10**10,
    )
    import_window = trades_for_window(
        read_raw(imported, *ALL_TIME), hour, hour + HOUR_NS, HOUR_NS, normalize=registry_normalizer, skew_ns=10**10
    )
    assert live_window.duplicates == 0
    assert import_window.duplicates == 0
    same = [c for c in TRADES if c not in ("recv_ts", "ts")]
    live_trades = live_window.trades.with_columns(pl.col("ts") - pl.duration(nanoseconds=shift_ns))
    assert live_trades.select([*same, "ts"]).equals(import_window.trades.select([*same, "ts"]))
    got = import_window.trades.with_columns(pl.col("ts").dt.epoch("ns"))
    assert got.select("symbol", "trade_id", "price", "size", "side", "ts").rows() == sorted(
        ((t.symbol.replace("/", "-"), t.trade_id, t.price, t.size, t.side, t.ts) for t in recorded_trades),
        key=lambda r: (r[0], r[5], int(r[1])),
    )
    first = got.filter(pl.col("trade_id") == "1000001").filter(pl.col("symbol") == "XMR-USD").row(0, named=True)
    assert (first["price"], first["size"], first["side"]) == (Decimal("354.11"), Decimal("0.89594024"), "sell")
    assert first["ts"] == rfc3339_ns("2021-04-17T16:49:02.557535Z")

    # -- candles: live == import (times unshifted), with the recorded trades' values --------------------------------
    c_import = lake_candles(imported, hour, "1m")
    c_live = live_candles(live, floor_ns(first_ns + shift_ns, HOUR_NS)).filter(pl.col("timeframe") == "1m")
    c_live = c_live.sort("symbol", "open_time").with_columns(
        pl.col("open_time", "close_time") - pl.duration(nanoseconds=shift_ns)
    )
    values = ["symbol", "open_time", "open", "high", "low", "close", "volume", "trade_count", "vwap", "complete"]
    assert c_live.select(values).equals(c_import.select(values))
    minute = floor_ns(first_ns, MINUTE_NS)
    # the minute of the recorded trades is closed for the pairs that traded in it
    assert sorted(c_import.filter(pl.col("open_time").dt.epoch("ns") == minute)["symbol"]) == ["SC-EUR", "XMR-USD"]
    assert c_import["complete"].all()
    xmr = c_import.filter((pl.col("symbol") == "XMR-USD") & (pl.col("open_time").dt.epoch("ns") == minute))
    in_minute = [t for t in recorded_trades if t.symbol == "XMR/USD" and floor_ns(t.ts, MINUTE_NS) == minute]
    assert len(in_minute) == 4
    row = xmr.row(0, named=True)
    assert (row["open"], row["close"], row["trade_count"]) == (in_minute[0].price, in_minute[-1].price, 4)
    assert row["high"] == max(t.price for t in in_minute) and row["low"] == min(t.price for t in in_minute)
    assert row["volume"] == sum(t.size for t in in_minute)

    # -- book snapshots: sampled from the lake's frames, the levels the recording ends with --------------------------
    omg = raw.filter(pl.col("symbol") == "OMG/USD")
    samples = book_samples(omg, KRAKEN, "OMG/USD").samples
    assert samples.height > 0
    last = samples.sort("ts").row(-1, named=True)
    builder = KRAKEN.book_builder("OMG/USD")
    for payload in read_raw(imported, *ALL_TIME).filter(
        (pl.col("channel") == "book") & (pl.col("symbol") == "OMG/USD")
    )["payload"]:
        builder.on_raw("book", payload)
    bid, ask = builder.book.best_bid(), builder.book.best_ask()
    assert bid is not None and ask is not None
    assert (last["bid_price"], last["ask_price"]) == (bid[0], ask[0])
    assert last["bid_px"][:5] == [p for p, _ in builder.book.bids(5)]
    assert last["ask_sz"][:5] == [q for _, q in builder.book.asks(5)]
    # the import's samples (on the recording's clock) end with the same book
    imported_samples = book_samples(
        read_raw(imported, *ALL_TIME).filter(pl.col("symbol") == "OMG/USD"), KRAKEN, "OMG/USD"
    ).samples
    end = imported_samples.sort("ts").row(-1, named=True)
    assert (end["bid_price"], end["ask_price"], end["bid_px"]) == (last["bid_price"], last["ask_price"], last["bid_px"])
    # SC/EUR's book is not sampled between its bad checksum and the snapshot that resynced it (live), nor after the
    # bad checksum at all in the import (no resubscribe there)
    sc = book_samples(read_raw(imported, *ALL_TIME).filter(pl.col("symbol") == "SC/EUR"), KRAKEN, "SC/EUR")
    assert sc.invalid.height >= 1
