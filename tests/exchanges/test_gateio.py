"""Gate.io v4 on real recordings, and on messages built from Gate.io's documentation.

Real (cryptofeed samples, MIT, copied with their LICENSE into tests/data/gateio/): ``GATEIO.ws.1.0`` + ``.http.0.0``
(2021-04-22, spot v4, 10 pairs: ``spot.order_book_update`` over REST ``with_id`` snapshots, ``spot.trades``,
``spot.candlesticks`` 1m, ``spot.tickers``) and ``GATEIO_FUTURES.ws.1.0`` + ``.http.0.0`` (2023-05-24, USDT futures:
``futures.order_book_update`` over snapshots, ``futures.book_ticker``, one ``futures.candlesticks``; no trade was
recorded). Built from the docs (the tests say so): ``futures.trades`` (Gate.io "Futures WebSocket v4", Trades
channel), a ``full`` push on ``spot.order_book_update`` (announcement 44678, 2025), acks/errors/pongs of today (Gate.io
"Spot WebSocket v4": "Application ping/pong", "Server response").
"""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import polars as pl
import pytest

from mdplatform.capture import read_capture
from mdplatform.contract import GAP, SUB_ERROR, SUBSCRIBED, SYNCED, StreamEvent, Subscription
from mdplatform.exchanges import get_exchange
from mdplatform.exchanges.gateio import GateioExchange, GateioSession, create_time_ns
from mdplatform.schemas import RAW

DATA = Path(__file__).parents[1] / "data" / "gateio"
SPOT = GateioExchange("spot")
FUT = GateioExchange("futures")

Frame = tuple[int, str, str, str]  # (recv_ns, "ws"|"rest", text, symbol of a REST reply)


def _ns(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 10**9 + int((frac + "000000000")[:9])


def load(base: str, x: GateioExchange) -> list[Frame]:
    """The WS frames and REST replies of one recording pair, in receive order (REST replies named by their URL)."""
    frames: list[Frame] = [(f.recv_ns, "ws", f.frame, "") for f in read_capture(DATA / f"{base}.ws.1.0.gz")]
    frames = [f for f in frames if f[1] == "ws"]
    with gzip.open(DATA / f"{base}.http.0.0.gz", "rt") as fh:
        for line in fh:
            if not line.strip():
                continue
            url, _, rest = line.rstrip("\n").partition(" -> ")
            ts, _, body = rest.partition(": ")
            frames.append((_ns(ts), "rest", body, parse_qs(urlsplit(url).query)[x.symbol_param][0]))
    return sorted(frames, key=lambda f: f[0])


@pytest.fixture(scope="module")
def spot_frames() -> list[Frame]:
    return load("GATEIO", SPOT)


@pytest.fixture(scope="module")
def fut_frames() -> list[Frame]:
    return load("GATEIO_FUTURES", FUT)


def _rebuild(x: GateioExchange, frames: list[Frame]) -> dict[str, object]:
    builders: dict[str, object] = {}
    for _, kind, text, symbol in frames:
        if kind == "rest":
            builders.setdefault(symbol, x.book_builder(symbol))
            builders[symbol].on_raw("depthSnapshot", text)  # type: ignore[attr-defined]
            continue
        channel, symbol = x.route(text)
        if channel == x.book_channel:
            builders.setdefault(symbol, x.book_builder(symbol))
            assert builders[symbol].on_raw(channel, text) is None or True  # type: ignore[attr-defined]
    return builders


def test_registry_and_urls() -> None:
    assert get_exchange("gateio").capabilities.book_sync == "rest-snapshot"
    assert get_exchange("gateio-futures").capabilities.markets == frozenset({"linear-perpetual"})
    assert SPOT.snapshot_url("BTC_USDT") == (
        "https://api.gateio.ws/api/v4/spot/order_book?currency_pair=BTC_USDT&limit=100&with_id=true"
    )
    assert FUT.snapshot_url("BTC_USDT", "http://127.0.0.1:9") == (
        "http://127.0.0.1:9/api/v4/futures/usdt/order_book?contract=BTC_USDT&limit=100&with_id=true"
    )
    assert SPOT.connect_url([], "ws://127.0.0.1:9") == "ws://127.0.0.1:9/ws/v4/"
    assert FUT.connect_url([], "ws://127.0.0.1:9") == "ws://127.0.0.1:9/v4/ws/usdt"
    assert SPOT.normalize_symbol("BTC_USDT") == "BTC-USDT" and FUT.normalize_symbol("BTC_USDT") == "BTC-USDT-PERP"
    assert SPOT.keepalive.client_ping == '{"channel":"spot.ping"}'
    assert FUT.keepalive.client_ping == '{"channel":"futures.ping"}'
    assert not SPOT.capabilities.contiguous_ids and not FUT.capabilities.contiguous_ids


def test_subscribe_requests_match_the_recorded_ones() -> None:
    """cryptofeed's requests (real): one per channel for trades, one per pair for books and candles."""
    with gzip.open(DATA / "GATEIO.ws.1.0.gz", "rt") as fh:
        sent = [orjson.loads(line.partition(": ")[2]) for line in fh if " <- " in line]
    pairs = sent[0]["payload"]
    subs = [Subscription("spot.trades", p) for p in pairs]
    subs += [Subscription(c, p) for c in ("spot.order_book_update", "spot.candlesticks") for p in pairs]
    mine = [orjson.loads(m) for m in SPOT.subscribe_messages(subs)]
    strip = [{k: v for k, v in m.items() if k != "time"} for m in mine]
    assert strip == [{k: v for k, v in m.items() if k != "time"} for m in sent[:21]]
    futures = [orjson.loads(m) for m in FUT.subscribe_messages([Subscription("futures.order_book_update", "X_USDT")])]
    assert futures[0]["payload"] == ["X_USDT", "100ms", "100"]


def test_route_every_recorded_frame(spot_frames: list[Frame], fut_frames: list[Frame]) -> None:
    routes: dict[tuple[str, str], int] = {}
    for _, kind, text, _ in spot_frames + fut_frames:
        if kind == "ws":
            key = (SPOT if '"spot.' in text else FUT).route(text)
            routes[key] = routes.get(key, 0) + 1
    assert routes[("control", "")] == 22 + 22  # the subscribe acks
    assert routes[("spot.trades", "NEO_BTC")] == 5 and routes[("spot.candlesticks", "DIS_USDT")] == 2
    assert routes[("spot.order_book_update", "OMG_USDT")] == 51 and routes[("spot.tickers", "NEO_BTC")] == 9
    assert routes[("futures.order_book_update", "OMG_USDT")] == 109
    assert routes[("futures.book_ticker", "WOO_USDT")] == 37 and routes[("futures.candlesticks", "FRONT_USDT")] == 1
    assert all(symbol for (channel, symbol) in routes if channel != "control")
    assert sum(n for (c, _), n in routes.items() if c == "futures.trades") == 0  # none was recorded


def test_spot_books_apply_with_no_gap(spot_frames: list[Frame]) -> None:
    """Every pair syncs on its REST snapshot (first applied diff U <= id+1 <= u) and every later diff has U = u+1."""
    builders = _rebuild(SPOT, spot_frames)
    assert len(builders) == 10
    assert {s: b.state for s, b in builders.items()} == dict.fromkeys(builders, "synced")  # type: ignore[attr-defined]
    assert sum(b.gaps for b in builders.values()) == 0  # type: ignore[attr-defined]
    applied = {s: b.applied for s, b in builders.items()}  # type: ignore[attr-defined]
    assert applied == {"HAI_ETH": 5, "QTUM3S_USDT": 16, "FAST_USDT": 20, "OMG_USDT": 50, "ZKS_ETH": 11,
                       "NEO_BTC": 36, "INK_USDT": 0, "DIS_USDT": 17, "BTC_USDC": 0, "NANO_USDT": 4}  # fmt: skip
    omg = builders["OMG_USDT"]
    assert omg.book.update_id == 59231949 or omg.book.update_id > 59231869  # type: ignore[attr-defined]
    assert omg.book.best_bid() == (7.899, 288.0) and omg.book.best_ask() == (7.927, 316.6)  # type: ignore[attr-defined]


def test_futures_books_apply_with_no_gap_and_match_book_ticker(fut_frames: list[Frame]) -> None:
    """The futures chains run unbroken over their snapshots; wherever a ``futures.book_ticker`` has the book's ``u``,
    its best bid/ask (price and contracts) equal the rebuilt book's."""
    builders: dict[str, object] = {}
    checked = 0
    for _, kind, text, symbol in fut_frames:
        if kind == "rest":
            builders.setdefault(symbol, FUT.book_builder(symbol)).on_raw("depthSnapshot", text)  # type: ignore[attr-defined]
            continue
        channel, symbol = FUT.route(text)
        if channel == FUT.book_channel:
            builders.setdefault(symbol, FUT.book_builder(symbol)).on_raw(channel, text)  # type: ignore[attr-defined]
        elif channel == FUT.ticker_channel and symbol in builders:
            b = builders[symbol]
            r = orjson.loads(text)["result"]
            if b.valid and b.book.update_id == r["u"]:  # type: ignore[attr-defined]
                assert b.book.best_bid() == (float(r["b"]), float(r["B"]))  # type: ignore[attr-defined]
                assert b.book.best_ask() == (float(r["a"]), float(r["A"]))  # type: ignore[attr-defined]
                checked += 1
    assert len(builders) == 10 and all(b.valid for b in builders.values())  # type: ignore[attr-defined]
    assert sum(b.gaps for b in builders.values()) == 0  # type: ignore[attr-defined]
    assert sum(b.applied for b in builders.values()) == 316  # type: ignore[attr-defined]
    assert checked == 4  # every ticker whose u is the book's agreed


def _diffs(frames: list[Frame], x: GateioExchange) -> list[tuple[str, str]]:
    return [(x.route(t)[1], t) for _, k, t, _ in frames if k == "ws" and x.route(t)[0] == x.book_channel]


def test_session_gap_resyncs_that_pair_only(spot_frames: list[Frame]) -> None:
    """One recorded OMG_USDT diff left out: the session reports GAP for OMG_USDT and asks for its snapshot only."""
    s = SPOT.new_session([Subscription("spot.order_book_update", p) for p in ("OMG_USDT", "NEO_BTC")], None)
    assert isinstance(s, GateioSession)
    omg = [t for sym, t in _diffs(spot_frames, SPOT) if sym == "OMG_USDT"]
    snaps = {sym: t for _, k, t, sym in spot_frames if k == "rest"}
    first = s.on_frame("spot.order_book_update", "OMG_USDT", omg[0])
    assert first is not None and first.fetch_snapshot == ("OMG_USDT", SPOT.snapshot_url("OMG_USDT"))
    done = s.on_snapshot("OMG_USDT", snaps["OMG_USDT"])
    assert done is not None and done.events == (StreamEvent(SYNCED, "spot.order_book_update", "OMG_USDT"),)
    for t in omg[1:10]:
        assert s.on_frame("spot.order_book_update", "OMG_USDT", t) is None
    gap = s.on_frame("spot.order_book_update", "OMG_USDT", omg[11])  # omg[10] lost
    assert gap is not None and gap.fetch_snapshot is not None and gap.fetch_snapshot[0] == "OMG_USDT"
    (event,) = gap.events
    assert (event.kind, event.symbol) == (GAP, "OMG_USDT") and event.detail.startswith("U=")
    assert s.sync_state() == {"OMG_USDT": "resyncing", "NEO_BTC": "buffering"}


def test_full_push_replaces_the_book() -> None:
    """``"full":true`` on spot.order_book_update (built from announcement 44678, 2025): the book is replaced and the
    chain continues from its ``u``, even after a gap."""
    b = SPOT.book_builder("BTC_USDT")
    full = {"time": 1, "channel": "spot.order_book_update", "event": "update",
            "result": {"t": 1748572394325, "full": True, "s": "BTC_USDT", "U": 1, "u": 500,
                       "b": [["100.5", "2"]], "a": [["101", "1.5"]]}}  # fmt: skip
    assert b.on_raw("spot.order_book_update", orjson.dumps(full).decode()) == StreamEvent(
        SYNCED, "spot.order_book_update", "BTC_USDT"
    )
    nxt = {**full, "result": {"t": 1748572394425, "s": "BTC_USDT", "U": 501, "u": 503, "b": [["100.5", "0"]], "a": []}}
    assert b.on_raw("spot.order_book_update", orjson.dumps(nxt).decode()) is None
    assert b.valid and b.book.best_bid() is None and b.book.best_ask() == (101.0, 1.5)
    s = SPOT.new_session([Subscription("spot.order_book_update", "BTC_USDT")], None)
    act = s.on_frame("spot.order_book_update", "BTC_USDT", orjson.dumps(full).decode())
    assert act is not None and act.events[0].kind == SYNCED and s.sync_state() == {"BTC_USDT": "synced"}


def _raw(exchange: str, channel: str, payloads: list[str]) -> pl.DataFrame:
    n = len(payloads)
    return pl.DataFrame(
        {
            "recv_ts": [10**18 + i for i in range(n)],
            "exchange": [exchange] * n,
            "channel": [channel] * n,
            "symbol": [""] * n,
            "conn_id": ["c"] * n,
            "seq": list(range(1, n + 1)),
            "payload": payloads,
        },
        schema_overrides={"recv_ts": pl.Datetime("ns", "UTC")},
    ).select([pl.col(c).cast(t) for c, t in RAW.items()])


def test_spot_trades_exact(spot_frames: list[Frame]) -> None:
    """The 9 recorded spot trades: taker side as sent, exact decimals, the fractional ms of ``create_time_ms``."""
    payloads = [t for _, k, t, _ in spot_frames if k == "ws" and SPOT.route(t)[0] == "spot.trades"]
    trades, rejects = SPOT.normalize_trades_with_rejects(_raw("gateio", "spot.trades", payloads))
    assert rejects.height == 0 and trades.height == 9
    first = trades.row(0, named=True)
    assert (first["symbol"], first["trade_id"], first["side"]) == ("DIS-USDT", "816995772", "sell")
    assert (first["price"], first["size"]) == (Decimal("121.58"), Decimal("0.201"))
    assert trades["ts"].dt.epoch("ns").to_list()[0] == 1619093543708264200 == create_time_ns("1619093543708.2642")
    assert trades["side"].to_list().count("buy") == 2
    # ids are one counter over every pair: not contiguous per pair
    ids = [int(i) for i in trades.filter(pl.col("symbol") == "NEO-BTC")["trade_id"]]
    assert ids == [816995970, 816995982, 816996982, 816996983, 816997068]


def test_futures_trades_from_the_docs() -> None:
    """``futures.trades`` as documented ("Futures WebSocket v4", Trades notification): ``size`` signed contracts."""
    push = {"channel": "futures.trades", "event": "update", "time": 1541503698, "time_ms": 1541503698123,
            "result": [{"size": -108, "id": 27753479, "create_time": 1545136464, "create_time_ms": 1545136464123,
                        "price": "96.4", "contract": "BTC_USD"},
                       {"size": 3, "id": 27753480, "create_time": 1545136464, "create_time_ms": 1545136464124,
                        "price": "96.5", "contract": "BTC_USD"},
                       {"size": 5, "id": 27753481, "create_time": 1545136464, "create_time_ms": 1545136464125,
                        "price": "96.5", "contract": "BTC_USD", "is_internal": True}]}  # fmt: skip
    bad = {**push, "result": [{"size": 1.5, "id": 1, "create_time_ms": 1545136464123, "price": "96.4",
                               "contract": "BTC_USD"}]}  # fmt: skip
    raw = _raw("gateio-futures", "futures.trades", [orjson.dumps(push).decode(), orjson.dumps(bad).decode()])
    trades, rejects = FUT.normalize_trades_with_rejects(raw)
    assert trades.select("symbol", "trade_id", "price", "size", "side").rows() == [
        ("BTC-USD-PERP", "27753479", Decimal("96.4"), Decimal("108"), "sell"),
        ("BTC-USD-PERP", "27753480", Decimal("96.5"), Decimal("3"), "buy"),
    ]
    assert trades["ts"].dt.epoch("ns").to_list() == [1545136464123000000, 1545136464124000000]
    assert sorted(rejects["reason"].to_list()) == [
        "internal trade (insurance fund / ADL takeover): not matched on the book, not in candles",
        "price or size is a JSON number with a fraction (or a spot price/amount not a string)",
    ]


def test_spot_rejects_name_their_reason() -> None:
    good = {"time": 1, "channel": "spot.trades", "event": "update",
            "result": {"id": 5, "create_time_ms": "1606292218213.4578", "side": "buy", "currency_pair": "BTC_USDT",
                       "amount": "1", "price": "2"}}  # fmt: skip
    cases = {
        "payload is not a spot.trades push in the documented layout": "not json",
        "price or size is a JSON number with a fraction (or a spot price/amount not a string)": orjson.dumps(
            {**good, "result": {**good["result"], "price": 2.5}}  # type: ignore[dict-item]
        ).decode(),
        "invalid side": orjson.dumps({**good, "result": {**good["result"], "side": "up"}}).decode(),  # type: ignore[dict-item]
        "missing or invalid trade time": orjson.dumps(
            {**good, "result": {**good["result"], "create_time_ms": "x"}}  # type: ignore[dict-item]
        ).decode(),
    }
    trades, rejects = SPOT.normalize_trades_with_rejects(
        _raw("gateio", "spot.trades", [orjson.dumps(good).decode(), *cases.values()])
    )
    assert trades.height == 1 and trades["ts"].dt.epoch("ns")[0] == 1606292218213457800
    assert sorted(rejects["reason"].to_list()) == sorted(cases)


def test_control_frames() -> None:
    """Recorded acks (2021: no payload) name no stream; today's acks echo ``payload`` ("Spot WebSocket v4",
    Server response); errors are refusals; pongs are nothing."""
    ack_2021 = '{"time":1619093532,"channel":"spot.trades","event":"subscribe","result":{"status":"success"}}'
    assert SPOT.route(ack_2021) == ("control", "") and SPOT.control_events(ack_2021) == []
    ack = ('{"time":1606292218,"time_ms":1606292218231,"id":1,"conn_id":"x","channel":"spot.order_book_update",'
           '"event":"subscribe","payload":["BTC_USDT","100ms"],"result":{"status":"success"}}')  # fmt: skip
    assert SPOT.control_events(ack) == [StreamEvent(SUBSCRIBED, "spot.order_book_update", "BTC_USDT")]
    err = ('{"time":1606292218,"channel":"spot.trades","event":"subscribe","payload":["NOPE_USDT"],'
           '"error":{"code":2,"message":"unknown currency pair NOPE_USDT"},"result":{"status":"fail"}}')  # fmt: skip
    assert SPOT.control_events(err) == [
        StreamEvent(SUB_ERROR, "spot.trades", "NOPE_USDT", "2: unknown currency pair NOPE_USDT")
    ]
    pong = '{"time":1545404023,"time_ms":1545404023123,"channel":"spot.pong","event":"","result":null}'
    assert SPOT.route(pong) == ("control", "") and SPOT.control_events(pong) == []


def test_exchange_time() -> None:
    old = '{"time":1619093543,"channel":"spot.trades","event":"update","result":{"id":1,"create_time":1619093543}}'
    new = '{"time":1684930165,"time_ms":1684930165254,"channel":"futures.order_book_update","event":"update"}'
    ack = '{"time":1684930165,"time_ms":0,"channel":"futures.trades","event":"subscribe"}'
    assert SPOT.exchange_time(old) == 1619093543 * 10**9
    assert FUT.exchange_time(new) == 1684930165254 * 10**6
    assert FUT.exchange_time(ack) == 1684930165 * 10**9  # time_ms 0 in acks: the seconds
    assert FUT.exchange_times(pl.Series([old, new, ack, "pong"])).to_list() == [
        1619093543 * 10**9, 1684930165254 * 10**6, 1684930165 * 10**9, None]  # fmt: skip


def test_candles_from_trades_agree_with_gateio_candlesticks(spot_frames: list[Frame]) -> None:
    """Where the recording holds a minute whole up to a candlestick push (the minute's first push seen says
    ``v`` 0: no trade before the recording began), the candle built from the recorded trades up to that push equals
    Gate.io's: open/high/low/close and ``v`` = the quote volume sum(price x amount). A pair whose first push already
    had volume (FAST_USDT, NANO_USDT: trades before the recording) does not, and is not claimed."""
    payloads = [t for _, k, t, _ in spot_frames if k == "ws" and SPOT.route(t)[0] == "spot.trades"]
    trades = SPOT.normalize_trades(_raw("gateio", "spot.trades", payloads))
    pushes = [orjson.loads(t) for _, k, t, _ in spot_frames if k == "ws" and SPOT.route(t)[0] == "spot.candlesticks"]
    first_v: dict[tuple[str, str], str] = {}
    agreed, differ = [], []
    flat = 0
    for push in pushes:
        r = push["result"]
        pair, minute = r["n"].partition("_")[2], r["t"]
        first_v.setdefault((pair, minute), r["v"])
        mine = trades.filter(
            (pl.col("symbol") == SPOT.normalize_symbol(pair))
            & (pl.col("ts").dt.epoch("s") >= int(minute))
            & (pl.col("ts").dt.epoch("s") < push["time"])
        )
        if mine.height == 0:
            if first_v[(pair, minute)] == "0":
                assert r["v"] == "0" and r["o"] == r["h"] == r["l"] == r["c"]  # flat at the previous close
                flat += 1
            continue
        prices = mine["price"].to_list()
        built = (
            prices[0],
            max(prices),
            min(prices),
            prices[-1],
            sum(p * s for p, s in mine.select("price", "size").rows()),
        )
        theirs = tuple(Decimal(r[k]) for k in ("o", "h", "l", "c", "v"))
        (agreed if first_v[(pair, minute)] == "0" else differ).append(pair)
        if first_v[(pair, minute)] == "0":
            assert built == theirs, pair
        else:
            assert built != theirs, pair
    assert sorted(agreed) == ["DIS_USDT", "NEO_BTC", "ZKS_ETH"] and sorted(differ) == ["FAST_USDT"]
    assert flat == 8  # pushes of minutes without a trade yet: v 0, o = h = l = c


def test_futures_candle_without_trades_is_flat(fut_frames: list[Frame]) -> None:
    """The one recorded futures candlestick (FRONT_USDT) says no trade in its minute so far (v 0, flat), and the
    recording holds no futures trade: built and Gate.io's candles agree (none traded)."""
    (push,) = [orjson.loads(t) for _, k, t, _ in fut_frames if k == "ws" and FUT.route(t)[0] == "futures.candlesticks"]
    (r,) = push["result"]
    assert r["v"] == 0 and r["o"] == r["h"] == r["l"] == r["c"] == "0.1701" and r["n"] == "1m_FRONT_USDT"
    assert not [t for _, k, t, _ in fut_frames if k == "ws" and FUT.route(t)[0] == "futures.trades"]


# -- the replay's protocol and the REST history ------------------------------------------------------------------


def test_replay_answers_subscribe_ping_and_errors() -> None:
    """Server side of "Spot WebSocket v4": acks echo the payload, ``spot.ping`` gets ``spot.pong``, an unknown channel
    is refused with an ``error`` and ``result.status`` "fail" (which the exchange module reads as a refusal)."""
    from mdplatform.contract import ReplayClient

    proto = SPOT.replay_protocol()
    client = ReplayClient(None, 1)  # type: ignore[arg-type]
    (ack,) = proto.on_message(client, SPOT.subscribe_messages([Subscription("spot.order_book_update", "BTC_USDT")])[0])
    assert SPOT.control_events(ack.decode()) == [StreamEvent(SUBSCRIBED, "spot.order_book_update", "BTC_USDT")]
    assert client.keys == {"spot.order_book_update:BTC_USDT"}
    (pong,) = proto.on_message(client, SPOT.keepalive.client_ping or "")
    assert orjson.loads(pong)["channel"] == "spot.pong" and SPOT.route(pong.decode()) == ("control", "")
    (refused,) = proto.on_message(client, '{"time":1,"channel":"spot.nope","event":"subscribe","payload":["X"]}')
    assert [e.kind for e in SPOT.control_events(refused.decode())] == [SUB_ERROR]
    assert proto.accepts("/ws/v4/") and not proto.accepts("/v4/ws/usdt")
    assert FUT.replay_protocol().accepts("/v4/ws/usdt")


def _history(base: str, x: GateioExchange, symbol: str, start: int, end: int, limit: int) -> list[object]:
    import asyncio

    from mdplatform.exchanges.gateio import GateioTradeHistory
    from mdplatform.history import RestClient
    from mdplatform.replay import ReplayServer

    async def run() -> list[object]:
        async with ReplayServer([DATA / f"{base}.ws.1.0.gz"], speed=0, verbose=False) as server:
            history = GateioTradeHistory(x.market, x.trade_channel, limit=limit)
            async with RestClient() as client:
                return [p async for p in history.fetch(client, symbol, start, end, base_url=server.rest_base)]

    return asyncio.run(run())


def test_history_heals_through_the_replay_rest(spot_frames: list[Frame]) -> None:
    """``GET /api/v4/spot/trades`` (from/to + page) served by the replay from the recorded trades: NEO_BTC's five
    trades come back over three pages of 2, the last one short, which proves the span; the pages, encoded as the
    lake keeps them, normalize to the same trades the live pushes give."""
    start, end = 1619093540 * 10**9, 1619093563 * 10**9
    pages = _history("GATEIO", SPOT, "NEO_BTC", start, end, limit=2)
    assert [len(p.records) for p in pages] == [2, 2, 1]  # type: ignore[attr-defined]
    assert [p.proven for p in pages] == [None, None, (start, end)]  # type: ignore[attr-defined]
    assert "currency_pair=NEO_BTC" in pages[0].request and "page=1" in pages[0].request  # type: ignore[attr-defined]
    records = [r for p in pages for r in p.records]  # type: ignore[attr-defined]
    times = [t for p in pages for t in p.times_ns]  # type: ignore[attr-defined]
    # newest page first (the walk goes back from ``to``), each page oldest first
    assert all(list(p.times_ns) == sorted(p.times_ns) for p in pages)  # type: ignore[attr-defined]
    assert min(times) == 1619093546958116000 and max(times) == 1619093562050357200
    history = SPOT.trade_history("spot.trades")
    assert history is not None
    healed = SPOT.normalize_trades(_raw("gateio", "spot.trades", [history.encode(records)]))
    payloads = [t for _, k, t, _ in spot_frames if k == "ws" and SPOT.route(t)[0] == "spot.trades"]
    live = SPOT.normalize_trades(_raw("gateio", "spot.trades", payloads)).filter(pl.col("symbol") == "NEO-BTC")
    cols = ["symbol", "ts", "trade_id", "price", "size", "side"]
    assert healed.sort("trade_id").select(cols).equals(live.sort("trade_id").select(cols))


def test_futures_history_says_when_it_proves_nothing() -> None:
    """The futures recording holds no trade: ``GET /api/v4/futures/usdt/trades`` answers an empty list, and an empty
    first page proves nothing (Gate.io's history may not reach back that far)."""
    pages = _history("GATEIO_FUTURES", FUT, "OMG_USDT", 1684930160 * 10**9, 1684930200 * 10**9, limit=1000)
    assert len(pages) == 1 and pages[0].records == () and pages[0].proven is None  # type: ignore[attr-defined]
    assert "contract=OMG_USDT" in pages[0].request and "offset=0" in pages[0].request  # type: ignore[attr-defined]
