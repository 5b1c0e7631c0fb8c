"""Kraken spot WebSocket v2.

Real recordings: cryptofeed's KRAKEN.ws.50.0 (2021-04-17, v1 API, ``book-1000`` of 10 pairs: 4,269 updates with
``c`` checksums), 48.0 (v1 trades) and 49.0 (v1 ticker), copied from ../shared/data/cryptofeed-samples into
tests/data/kraken/ with cryptofeed's LICENSE.
v2 messages are built from the documentation (docs.kraken.com api-reference/spot-websocket-v2/{trade,book,ticker,
ping,heartbeat,status}, guides/websockets/book-checksum-v2): ``KRAKEN_V2.ws.1.0.gz`` is the v1 recording converted
by tests/data/kraken/build_v2.py (recorded digits as JSON numbers, the recorded checksums; trade ids numbered, as
v1 has none: see that script), and the small messages below follow those pages' examples.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import json
import timeit
import zlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl
import pytest

from mdplatform.book import L2Book
from mdplatform.capture import CaptureError, detect_exchange
from mdplatform.contract import CHECKSUM, SUB_ERROR, SUBSCRIBED, SYNCED, UNSUBSCRIBED, StreamEvent, Subscription
from mdplatform.exchanges import NORMALIZED_TRADES, get_exchange
from mdplatform.exchanges.kraken import (
    KrakenExchange,
    KrakenSession,
    KrakenTradeHistory,
    exact_loads,
    kraken_checksum,
    rest_pair,
    rfc3339_ns,
)
from mdplatform.history import RestClient
from mdplatform.replay import ReplayServer
from mdplatform.schemas import REJECTS

DATA = Path(__file__).resolve().parents[1] / "data" / "kraken"
BUILT = DATA / "KRAKEN_V2.ws.1.0.gz"
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
S = 1_000_000_000


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt") as f:
        return [ln.rstrip("\n") for ln in f if ln.strip()]


def _received(path: Path) -> list[tuple[int, str]]:
    """(recv ns, frame) of every received line of a cryptofeed capture."""
    out = []
    for line in _lines(path):
        if " <-> " in line or " <- " in line:
            continue
        ts, _, frame = line.partition(": ")
        whole, _, frac = ts.partition(".")
        out.append((int(whole) * S + int((frac + "000000000")[:9]), frame))
    return out


@pytest.fixture(scope="module")
def kraken() -> KrakenExchange:
    x = get_exchange("kraken")
    assert isinstance(x, KrakenExchange) and x.book_depth == 1000
    return x


@pytest.fixture(scope="module")
def built() -> list[tuple[int, str]]:
    return _received(BUILT)


# -- the checksum --------------------------------------------------------------------------------------------


def test_checksum_formats_as_documented() -> None:
    """The v2 guide's step: ask "45285.2" qty "0.00100000" -> "452852" + "100000"; asks then bids, best first."""
    asks = [("45285.2", "0.00100000"), ("45286.4", "1.54582015")]
    bids = [("45283.5", "0.10000000"), ("45283.4", "1.54582015")]
    want = zlib.crc32(b"452852100000" + b"452864154582015" + b"45283510000000" + b"452834154582015")
    assert kraken_checksum(bids, asks) == want
    # the pair's precision formats values whose text lost trailing zeros (a float-like feed)
    assert kraken_checksum([("45283.5", "0.1")], [], qty_precision=8) == kraken_checksum(
        [("45283.5", "0.10000000")], []
    )
    # only the top 10 per side count
    many = [(f"{45300 + i}.0", "1.0") for i in range(12)]
    assert kraken_checksum([], many) == kraken_checksum([], many[:10]) != kraken_checksum([], many[1:11])


def _v1_books(path: Path) -> tuple[int, int, int]:
    """Replays a v1 ``book-1000`` recording (snapshot "as"/"bs", updates "a"/"b" with "c" in the last) on
    ``L2Book`` and checks every ``c`` with ``kraken_checksum``: (verified, mismatched, snapshots)."""
    books: dict[str, L2Book] = {}
    verified = mismatched = snapshots = 0
    for _, frame in _received(path):
        msg = json.loads(frame)
        if not isinstance(msg, list):
            continue
        pair, parts = msg[-1], [p for p in msg[1:-2] if isinstance(p, dict)]
        if any("as" in p for p in parts):
            books[pair] = book = L2Book(pair, keep_raw=True)
            book.load(parts[0]["bs"], parts[0]["as"])
            snapshots += 1
            continue
        book = books[pair]
        for p in parts:  # in order: the last entries are the most recent
            book.apply(p.get("b", []), p.get("a", []))
        book.truncate(1000)
        c = next(int(p["c"]) for p in parts if "c" in p)
        if kraken_checksum(book.raw_bids(10), book.raw_asks(10)) == c:
            verified += 1
        else:
            mismatched += 1
    return verified, mismatched, snapshots


def test_real_v1_book_1000_checksums_all_verify() -> None:
    """v1 and v2 share the checksum over the price/qty texts: all 4,269 recorded checksums verify."""
    assert _v1_books(DATA / "KRAKEN.ws.50.0.gz") == (4269, 0, 10)


def test_built_v2_book_frames_verify_in_the_session(kraken: KrakenExchange, built: list[tuple[int, str]]) -> None:
    """The same book as v2 messages with JSON numbers: the session reads the digits exactly and verifies the 4,269
    recorded checksums (and the 10 built snapshot ones) without a single resubscribe."""
    subs = [Subscription("book", p) for p in PAIRS]
    session = kraken.new_session(subs, None)
    assert isinstance(session, KrakenSession)
    assert session.sync_state() == dict.fromkeys(PAIRS, "buffering")
    events: list[StreamEvent] = []
    for _, frame in built:
        channel, symbol = kraken.route(frame)
        action = session.on_frame(channel, symbol, frame)
        if action is not None:
            assert not action.send and action.error is None
            events += action.events
    assert sorted(events, key=lambda e: e.symbol) == [StreamEvent(SYNCED, "book", p) for p in sorted(PAIRS)]
    assert session.checksums_verified == 4269 + 10 and session.errors == 0
    assert session.sync_state() == dict.fromkeys(PAIRS, "synced")
    book = session.book("XMR/USD")
    assert book is not None and not book.is_crossed() and book.depth() == (657, 426)


def test_built_capture_is_what_the_script_builds() -> None:
    spec = importlib.util.spec_from_file_location("kraken_build_v2", DATA / "build_v2.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build(DATA) == _lines(BUILT)


def test_checksum_mismatch_resubscribes_that_pair_only(kraken: KrakenExchange, built: list[tuple[int, str]]) -> None:
    frames = [f for _, f in built]
    updates = [i for i, f in enumerate(frames) if kraken.route(f) == ("book", "SC/EUR") and '"update"' in f[:40]]
    bad_at = updates[5]
    msg = orjson.loads(frames[bad_at])
    real = msg["data"][0]["checksum"]
    frames[bad_at] = frames[bad_at].replace(f'"checksum":{real},', f'"checksum":{real + 1},')
    session = kraken.new_session([Subscription("book", p) for p in PAIRS], None)
    failures = []
    for i, frame in enumerate(frames):
        channel, symbol = kraken.route(frame)
        action = session.on_frame(channel, symbol, frame)
        if action is not None and action.send:
            failures.append((i, action))
    assert len(failures) == 1
    i, action = failures[0]
    assert i == bad_at and action.error is not None and "kraken book SC/EUR: checksum mismatch" in action.error
    (event,) = action.events
    assert (event.kind, event.channel, event.symbol) == (CHECKSUM, "book", "SC/EUR")
    assert event.detail.startswith(f"checksum mismatch: received {real + 1}, computed ")
    assert [orjson.loads(s) for s in action.send] == [
        {"method": m, "params": {"channel": "book", "symbol": ["SC/EUR"], "depth": 1000, "snapshot": True}, "req_id": 2}
        for m in ("unsubscribe", "subscribe")
    ]
    state = session.sync_state()
    assert state.pop("SC/EUR") == "resyncing" and set(state.values()) == {"synced"}
    assert session.book("SC/EUR") is None and session.errors == 1
    # the snapshot a resubscribe brings (here: the exchange's book as it stands) syncs it again
    intact = kraken.new_session([Subscription("book", "SC/EUR")], None)
    for frame in (f for _, f in built):
        intact.on_frame(*kraken.route(frame), frame)
    book = intact.book("SC/EUR")
    assert book is not None
    bids, asks = book.raw_bids(), book.raw_asks()
    levels = lambda side: ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in side)  # noqa: E731
    snapshot = (
        f'{{"channel":"book","type":"snapshot","data":[{{"symbol":"SC/EUR","bids":[{levels(bids)}],'
        f'"asks":[{levels(asks)}],"checksum":{kraken_checksum(bids, asks)}}}]}}'
    )
    again = session.on_frame("book", "SC/EUR", snapshot)
    assert again is not None and again.events == (StreamEvent(SYNCED, "book", "SC/EUR"),)
    assert session.sync_state()["SC/EUR"] == "synced"


def test_offline_builder_follows_the_same_rules(kraken: KrakenExchange, built: list[tuple[int, str]]) -> None:
    frames = [f for _, f in built if kraken.route(f) == ("book", "OMG/USD")]
    builder = kraken.book_builder("OMG/USD")
    assert builder.channels == frozenset({"book"}) and not builder.valid
    events = [builder.on_raw("book", f) for f in frames]
    assert events[0] == StreamEvent(SYNCED, "book", "OMG/USD") and events[1:] == [None] * (len(frames) - 1)
    assert builder.valid and builder.checksums_verified == len(frames)
    bad = frames[3].replace('"checksum":', '"checksum":1')
    fresh = kraken.book_builder("OMG/USD")
    got = [fresh.on_raw("book", f) for f in (frames[0], frames[1], frames[2], bad, frames[4])]
    assert [e.kind if e else None for e in got] == [SYNCED, None, None, CHECKSUM, None]
    assert not fresh.valid  # updates after a failure are ignored until a snapshot
    assert fresh.on_raw("book", frames[0]) == StreamEvent(SYNCED, "book", "OMG/USD")
    with pytest.raises(ValueError, match="price and qty"):
        kraken.book_builder("OMG/USD").on_raw(
            "book", '{"channel":"book","type":"snapshot","data":[{"symbol":"OMG/USD","bids":[{"price":1}],"asks":[]}]}'
        )


# -- the wire ------------------------------------------------------------------------------------------------


def test_subscribe_messages(kraken: KrakenExchange) -> None:
    subs = [Subscription(c, s) for c in ("trade", "book", "ticker", "ohlc") for s in ("BTC/USD", "ETH/USD")]
    got = [orjson.loads(m) for m in kraken.subscribe_messages(subs)]
    assert got == [
        {
            "method": "subscribe",
            "params": {"channel": "trade", "symbol": ["BTC/USD", "ETH/USD"], "snapshot": True},
            "req_id": 1,
        },
        {
            "method": "subscribe",
            "params": {"channel": "book", "symbol": ["BTC/USD", "ETH/USD"], "depth": 1000, "snapshot": True},
            "req_id": 2,
        },
        {
            "method": "subscribe",
            "params": {"channel": "ticker", "symbol": ["BTC/USD", "ETH/USD"], "snapshot": True},
            "req_id": 3,
        },
        {
            "method": "subscribe",
            "params": {"channel": "ohlc", "symbol": ["BTC/USD", "ETH/USD"], "interval": 1, "snapshot": True},
            "req_id": 4,
        },
    ]
    assert KrakenExchange(book_depth=10).subscribe_messages([Subscription("book", "BTC/USD")]) == [
        '{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":10,"snapshot":true},"req_id":2}'
    ]
    with pytest.raises(ValueError, match="depth"):
        KrakenExchange(book_depth=50)
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        kraken.subscribe_messages([Subscription("trade", "XBTUSD")])
    with pytest.raises(ValueError, match="unknown channel"):
        kraken.subscribe_messages([Subscription("spread", "BTC/USD")])
    assert kraken.keepalive.client_ping == '{"method":"ping"}'
    assert kraken.keepalive.idle_timeout_s > kraken.keepalive.interval_s
    assert kraken.connect_url([], "ws://127.0.0.1:9") == "ws://127.0.0.1:9/v2"


def test_route_every_built_frame(kraken: KrakenExchange, built: list[tuple[int, str]]) -> None:
    counts: dict[tuple[str, str], int] = {}
    for _, frame in built:
        route = kraken.route(frame)
        msg = orjson.loads(frame)
        if "method" in msg or msg.get("channel") in ("heartbeat", "status"):
            assert route == ("control", "")
        else:
            assert route == (msg["channel"], msg["data"][0]["symbol"])
        counts[route[0]] = counts.get(route[0], 0) + 1
    # 30 acks, 31 heartbeats, 1 status
    assert counts == {"control": 62, "book": 4279, "trade": 8, "ticker": 18}
    # string operations only: it runs on every frame
    frames = [f for _, f in built] * 5
    seconds = min(timeit.repeat(lambda: [kraken.route(f) for f in frames], number=1, repeat=3))
    assert seconds / len(frames) < 5e-6
    # other key orders and spaces still route (decoded)
    assert kraken.route('{"type":"update","channel":"trade","data":[{"symbol":"BTC/USD"}]}') == ("trade", "BTC/USD")
    assert kraken.route('{ "channel": "book", "data": [ { "symbol": "X/Y" } ] }') == ("book", "X/Y")
    assert kraken.route('{"channel":"heartbeat"}') == ("control", "")
    ohlc = (
        '{"channel":"ohlc","type":"update","timestamp":"2023-10-04T16:26:30.524394914Z","data":[{"symbol":"MATIC/USD",'
        '"open":0.5624,"high":0.5628,"low":0.5622,"close":0.5627,"trades":12,"volume":30927.68066226,'
        '"vwap":0.5626,"interval_begin":"2023-10-04T16:25:00.000000000Z","interval":5,'
        '"timestamp":"2023-10-04T16:30:00.000000Z"}]}'
    )
    assert kraken.route(ohlc) == ("ohlc", "MATIC/USD")
    assert kraken.exchange_time(ohlc) == rfc3339_ns("2023-10-04T16:26:30.524394914Z")


def test_control_events(kraken: KrakenExchange) -> None:
    ack = (
        '{"method":"subscribe","req_id":2,"result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},'
        '"success":true,"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}'
    )
    assert kraken.control_events(ack) == [StreamEvent(SUBSCRIBED, "book", "BTC/USD")]
    assert kraken.control_events(ack.replace('"subscribe"', '"unsubscribe"')) == [
        StreamEvent(UNSUBSCRIBED, "book", "BTC/USD")
    ]
    refused = (
        '{"error":"Currency pair not supported BTC/USDX","method":"subscribe","req_id":1,"success":false,'
        '"symbol":"BTC/USDX","time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}'
    )
    assert kraken.control_events(refused) == [
        StreamEvent(SUB_ERROR, "trade", "BTC/USDX", "subscribe: Currency pair not supported BTC/USDX")
    ]
    for other in (
        '{"method":"pong","req_id":101,"time_in":"2023-09-24T14:10:23.799685Z","time_out":"2023-09-24T14:10:23.799703Z"}',
        '{"channel":"heartbeat"}',
        '{"channel":"status","type":"update","data":[{"api_version":"v2","system":"online","version":"2.0.0"}]}',
    ):
        assert kraken.route(other) == ("control", "") and kraken.control_events(other) == []


def test_exchange_times(kraken: KrakenExchange, built: list[tuple[int, str]]) -> None:
    frames = [f for _, f in built]
    one = [kraken.exchange_time(f) for f in frames]
    many = kraken.exchange_times(pl.Series(frames)).to_list()
    assert one == many
    assert one[0] is None  # the status message
    trade = next(f for f in frames if kraken.route(f)[0] == "trade")
    assert kraken.exchange_time(trade) == 1618678142557535000  # v1's "1618678142.557535"
    assert rfc3339_ns("2023-09-25T07:48:36.925533Z") == 1695628116925533000
    assert rfc3339_ns("2023-09-25T07:48:36Z") == 1695628116 * S
    assert rfc3339_ns("2023-09-25T07:48:36.925533+02:00") is None and rfc3339_ns("yesterday") is None


def test_exact_loads_keeps_digits() -> None:
    msg = exact_loads('{"data":[{"price":0.000022900,"qty":13355.87450757,"trade_id":7,"x":0.1}]}')
    assert msg["data"][0] == {"price": "0.000022900", "qty": "13355.87450757", "trade_id": 7, "x": 0.1}
    # more digits than a float holds
    assert exact_loads('{"price": 1234567.123456789012}')["price"] == "1234567.123456789012"


# -- trades --------------------------------------------------------------------------------------------------


def test_trades_are_the_recorded_ones(
    kraken: KrakenExchange, built: list[tuple[int, str]], to_raw: Callable[..., pl.DataFrame]
) -> None:
    trades, rejects = kraken.normalize_trades_with_rejects(to_raw(kraken, built))
    assert rejects.height == 0 and trades.schema == pl.Schema(NORMALIZED_TRADES)
    # the v1 recording's trades, one by one: price and volume texts, time, taker side
    v1 = [
        (pair, price, volume, t, side)
        for _, f in _received(DATA / "KRAKEN.ws.48.0.gz")
        if f.startswith("[")
        for msg in [json.loads(f)]
        for pair in [msg[-1].replace("XBT", "BTC")]
        for price, volume, t, side, *_ in msg[1]
    ]
    assert trades.height == len(v1) == 10
    assert trades.with_columns(pl.col("ts").dt.epoch("ns")).select("symbol", "price", "size", "ts", "side").rows() == [
        (
            pair.replace("/", "-"),
            Decimal(price),
            Decimal(volume),
            int(Decimal(t) * S),
            "buy" if side == "b" else "sell",
        )
        for pair, price, volume, t, side in v1
    ]
    first = trades.row(0, named=True)
    assert (first["symbol"], first["price"], first["size"], first["side"]) == (
        "XMR-USD",
        Decimal("354.11"),
        Decimal("0.89594024"),
        "sell",
    )
    # ids count up by one per pair: coverage proves completeness with them
    for _, group in trades.group_by("symbol"):
        ids = group.get_column("seq_id").to_list()
        assert ids == list(range(1_000_001, 1_000_001 + len(ids)))
        assert group.get_column("trade_id").to_list() == [str(i) for i in ids]
        assert group.get_column("fill_first").to_list() == ids == group.get_column("fill_last").to_list()
    assert set(trades.get_column("fills")) == {1}
    parsed = [t for _, f in built for t in kraken.parse_trades(f)]
    assert [(t.trade_id, t.price, t.size, t.side, t.ts) for t in parsed] == [
        (r["trade_id"], r["price"], r["size"], r["side"], r["ts"])
        for r in trades.with_columns(pl.col("ts").dt.epoch("ns")).iter_rows(named=True)
    ]
    assert kraken.capabilities.contiguous_ids == frozenset({"trade"})


def test_trade_snapshot_and_updates_exact_and_bad_rows_rejected(
    kraken: KrakenExchange, to_raw: Callable[..., pl.DataFrame]
) -> None:
    """The docs' trade example (snapshot of two MATIC/USD trades), a price with more digits than a float holds,
    and broken messages, each rejected with its reason."""
    snapshot = (
        '{"channel":"trade","type":"snapshot","data":[{"symbol":"MATIC/USD","side":"buy","price":0.5147,'
        '"qty":6423.46326,"ord_type":"limit","trade_id":4665846,"timestamp":"2023-09-25T07:48:36.925533Z"},'
        '{"symbol":"MATIC/USD","side":"sell","price":0.5147,"qty":1136.19677815,"ord_type":"market",'
        '"trade_id":4665847,"timestamp":"2023-09-25T07:49:36.925603Z"}]}'
    )
    precise = snapshot.replace("0.5147,", "1234567.123456789012,", 1)
    good = snapshot[: snapshot.index(',{"symbol":"MATIC/USD","side":"sell"')] + "]}"
    broken = [
        good[:70],
        good.replace('"data":[', '"data":[7,'),
        '{"channel":"trade","type":"update","data":[]}',
        '{"channel":"trade","type":"update"}',
        good.replace('"price":0.5147,"qty":6423.46326', '"price":"abc","qty":6423.46326'),
        good.replace('"price":0.5147,"qty":6423.46326', '"price":5.147e-1,"qty":6423.46326'),
        good.replace('"side":"buy"', '"side":"hold"'),
        good.replace('"trade_id":4665846', '"trade_id":"x1"'),
        good.replace('"2023-09-25T07:48:36.925533Z"', '"25/09/2023"'),
    ]
    rows = [(1, snapshot), (2, precise)] + [(3 + i, f) for i, f in enumerate(broken)]
    raw = to_raw(kraken, rows).with_columns(channel=pl.lit("trade"), symbol=pl.lit("MATIC/USD"))
    trades, rejects = kraken.normalize_trades_with_rejects(raw)
    assert trades.select("symbol", "trade_id", "price", "size", "side").rows() == [
        ("MATIC-USD", "4665846", Decimal("0.5147"), Decimal("6423.46326"), "buy"),
        ("MATIC-USD", "4665847", Decimal("0.5147"), Decimal("1136.19677815"), "sell"),
        ("MATIC-USD", "4665846", Decimal("1234567.123456789012"), Decimal("6423.46326"), "buy"),
        ("MATIC-USD", "4665847", Decimal("0.5147"), Decimal("1136.19677815"), "sell"),
    ]
    assert trades.get_column("ts").dt.epoch("ns").to_list()[:2] == [1695628116925533000, 1695628176925603000]
    assert rejects.schema == pl.Schema(REJECTS)
    assert rejects.get_column("reason").to_list() == [
        "payload is not a trade message in the documented layout",
        "payload is not a trade message in the documented layout",
        "no trades in data",
        "payload has no data list",
        "price is not a plain decimal number: abc",
        "price is not a plain decimal number: 5.147e-1",
        "invalid side",
        "trade_id is not an integer: x1",
        "missing or invalid trade time",
    ]


def test_symbols(kraken: KrakenExchange) -> None:
    assert kraken.normalize_symbol("BTC/USD") == "BTC-USD"
    assert kraken.exchange_symbol("BTC-USD") == "BTC/USD"
    assert (
        rest_pair("BTC/USD") == "XBTUSD" and rest_pair("DOGE/USDT") == "XDGUSDT" and rest_pair("ETH/USDC") == "ETHUSDC"
    )


def test_capture_detection_takes_v2_refuses_v1() -> None:
    assert detect_exchange(BUILT) == "kraken"
    for name in ("KRAKEN.ws.48.0.gz", "KRAKEN.ws.50.0.gz"):
        with pytest.raises(CaptureError, match=r"recorded from wss://ws\.kraken\.com, not a supported exchange"):
            detect_exchange(DATA / name)


# -- REST history over the replay ----------------------------------------------------------------------------


def test_history_over_the_replay_returns_every_trade_of_the_span(
    kraken: KrakenExchange, built: list[tuple[int, str]], to_raw: Callable[..., pl.DataFrame]
) -> None:
    """``GET /0/public/Trades`` served from the capture: every XMR/USD trade of the span, ids contiguous, times
    exact to the microsecond, encoded pages normalizing like live frames; a span beyond the last trade is proven only
    up to it; two pages when ``count`` is small."""
    live = [t for _, f in built for t in kraken.parse_trades(f) if t.symbol == "XMR/USD"]
    assert len(live) == 4
    start, end = live[0].ts, live[-1].ts + 1

    async def scenario() -> tuple[list[object], list[object], list[object], int]:
        async with ReplayServer([BUILT], verbose=False) as server, RestClient() as client:
            # the gap a lost frame leaves: between the trades received before and after it
            hole = [
                p
                async for p in KrakenTradeHistory().fetch(
                    client, "XMR/USD", live[0].ts + 1, live[2].ts, base_url=server.rest_base
                )
            ]
            whole = [
                p async for p in KrakenTradeHistory().fetch(client, "XMR/USD", start, end, base_url=server.rest_base)
            ]
            paged = [
                p
                async for p in KrakenTradeHistory(count=2).fetch(
                    client, "XMR/USD", start - S, end + 60 * S, base_url=server.rest_base
                )
            ]
            return hole, whole, paged, server.rest_requests

    hole, whole, paged, requests = asyncio.run(scenario())
    # healed: the one missing id comes back, and the later trade in the same reply proves the span whole
    assert [[r["trade_id"] for r in p.records] for p in hole] == [[1000002]]  # type: ignore[attr-defined]
    assert hole[-1].proven == (live[0].ts + 1, live[2].ts)  # type: ignore[attr-defined]
    records = [r for p in whole for r in p.records]  # type: ignore[attr-defined]
    assert [r["trade_id"] for r in records] == [int(t.trade_id) for t in live]
    assert [(r["price"], r["qty"], r["side"]) for r in records] == [(str(t.price), str(t.size), t.side) for t in live]
    assert [t for p in whole for t in p.times_ns] == [t.ts for t in live]  # type: ignore[attr-defined]
    assert whole[-1].proven == (start, live[-1].ts)  # type: ignore[attr-defined]
    assert [len(p.records) for p in paged] == [2, 2, 0]  # type: ignore[attr-defined]
    assert paged[-1].proven == (start - S, live[-1].ts)  # type: ignore[attr-defined]
    assert [len(p.records) for p in whole] == [4, 0] and requests == 1 + 2 + 3  # type: ignore[attr-defined]
    history = kraken.trade_history("trade")
    assert isinstance(history, KrakenTradeHistory) and kraken.trade_history("book") is None
    payload = history.encode(records)
    raw = to_raw(kraken, [(1, payload)])
    trades = kraken.normalize_trades(raw)
    assert trades.select("trade_id", "price", "size", "side").rows() == [
        (t.trade_id, t.price, t.size, t.side) for t in live
    ]
    assert trades.get_column("ts").dt.epoch("ns").to_list() == [t.ts for t in live]


# -- the replay's v2 protocol and trade de-duplication --------------------------------------------------------


async def _recv(ws: object, n: int) -> list[str]:
    """The next ``n`` text frames, as sent (JSON numbers keep their digits only in the text)."""
    return [str(await asyncio.wait_for(ws.recv(), 10)) for _ in range(n)]  # type: ignore[attr-defined]


def test_replay_speaks_v2_and_a_resubscribe_repeats_trades_kept_once(
    kraken: KrakenExchange, built: list[tuple[int, str]], to_raw: Callable[..., pl.DataFrame]
) -> None:
    """Over a socket: status on connect, ping/pong, per-pair acks, a refused pair; then, after the recording, a
    resubscribe gets a book snapshot whose checksum verifies and the last trades again as a trade snapshot; the
    trades of both connections normalized together keep each trade id once (``trades_for_window``)."""
    from websockets.asyncio.client import connect

    from mdplatform.transforms import HOUR_NS, floor_ns, registry_normalizer, trades_for_window

    xmr = [f for _, f in built if kraken.route(f) == ("trade", "XMR/USD")]

    async def scenario() -> tuple[list[str], list[str]]:
        async with ReplayServer([BUILT], verbose=False) as server:
            assert server.exchange == "kraken" and server.ws_url.endswith("/v2")
            async with connect(server.ws_url) as ws:
                status = orjson.loads(await ws.recv())
                assert status["channel"] == "status" and status["data"][0]["system"] == "online"
                await ws.send('{"method":"ping","req_id":7}')
                pong = orjson.loads(await ws.recv())
                assert (pong["method"], pong["req_id"]) == ("pong", 7)
                sub = Subscription("trade", "XMR/USD")
                (request,) = kraken.subscribe_messages([sub, Subscription("trade", "NOPE/USD")])
                await ws.send(request)
                acks = await _recv(ws, 2)
                assert [kraken.control_events(a) for a in acks] == [
                    [StreamEvent(SUBSCRIBED, "trade", "XMR/USD")],
                    [StreamEvent(SUB_ERROR, "trade", "NOPE/USD", "subscribe: Currency pair not supported NOPE/USD")],
                ]
                first = await _recv(ws, len(xmr))
                await server.wait_finished(10)
            async with connect(server.ws_url) as ws:
                await ws.recv()  # status
                await ws.send(kraken.subscribe_messages([Subscription("trade", "XMR/USD")])[0])
                await ws.send(KrakenExchange(book_depth=10).subscribe_messages([Subscription("book", "OMG/USD")])[0])
                again = await _recv(ws, 4)
            return again, first

    again, first = asyncio.run(scenario())
    assert first == xmr  # the recorded messages as recorded
    kinds = {(m.get("method") or m.get("channel"), m.get("type")): text for text in again for m in [orjson.loads(text)]}
    assert sorted(kinds, key=str) == sorted(
        [("book", "snapshot"), ("subscribe", None), ("trade", "snapshot")], key=str
    )  # two acks, two snapshots
    book_snapshot = kinds[("book", "snapshot")]
    # the book as the recording left it, at the depth asked, its checksum right
    session = kraken.new_session([Subscription("book", "OMG/USD")], None)
    action = session.on_frame("book", "OMG/USD", book_snapshot)
    assert action is not None and action.events == (StreamEvent(SYNCED, "book", "OMG/USD"),)
    assert len(exact_loads(book_snapshot)["data"][0]["bids"]) == 10
    # the trade snapshot repeats the four XMR/USD trades, numbers as JSON numbers with the recorded digits
    snapshot_text = kinds[("trade", "snapshot")]
    assert '"price":354.11000000,' in snapshot_text
    assert [t.trade_id for t in kraken.parse_trades(snapshot_text)] == ["1000001", "1000002", "1000003", "1000004"]
    rows = [(ts, f) for ts, f in built if kraken.route(f) == ("trade", "XMR/USD")]
    raw = pl.concat([to_raw(kraken, rows, "conn-1"), to_raw(kraken, [(rows[-1][0] + S, snapshot_text)], "conn-2")])
    hour = floor_ns(rows[0][0], HOUR_NS)
    window = trades_for_window(raw, hour, hour + HOUR_NS, HOUR_NS, normalize=registry_normalizer, skew_ns=10 * S)
    assert window.duplicates == 4
    assert window.trades.get_column("trade_id").to_list() == ["1000001", "1000002", "1000003", "1000004"]
    # the first receipt wins
    first_receipts = [ts for ts, f in rows for _ in kraken.parse_trades(f)]
    assert window.trades.get_column("recv_ts").dt.epoch("ns").to_list() == first_receipts
