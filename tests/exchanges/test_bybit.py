"""Bybit v5 (``bybit`` spot, ``bybit-linear``): wire format, book sync, trades, REST history, capture detection.

Real messages: ``tests/data/bybit/2024-12-01_XRPUSDT_ob500.data``, a recording of ``orderbook.500.XRPUSDT`` (one
snapshot and 49 deltas, nautilus_trader test data, LGPL-3.0, LICENSE alongside). Everything else (publicTrade,
tickers, kline, acks, pongs, refusals, ``u`` = 1 restarts, REST replies) is built from Bybit's v5 documentation:
the pages websocket/public/trade, websocket/public/orderbook, websocket/public/ticker, ws/connect and
market/recent-trade (see ``mdplatform/exchanges/bybit``), and so is ``bybit_linear_xrpusdt.ws.gz``
(``tests/data/bybit/build_capture.py`` says which of its frames are real).
"""

from __future__ import annotations

import asyncio
import copy
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl
import pytest

from mdplatform.backfill import Gap, heal_gaps
from mdplatform.capture import CaptureError, check_exchange, detect_exchange
from mdplatform.contract import GAP, SUB_ERROR, SYNCED, StreamEvent, Subscription
from mdplatform.exchanges import get_exchange
from mdplatform.exchanges.bybit import (
    BybitBookBuilder,
    BybitExchange,
    BybitSession,
    BybitTradeHistory,
    HistoryHorizon,
)
from mdplatform.history import RestClient
from mdplatform.lake import read_backfill_events
from mdplatform.replay import ReplayServer
from mdplatform.schemas import RAW
from mdplatform.transforms import compute_coverage, registry_stream_kinds

DATA = Path(__file__).parents[1] / "data" / "bybit"
OB500 = DATA / "2024-12-01_XRPUSDT_ob500.data"
CAPTURE = DATA / "bybit_linear_xrpusdt.ws.gz"
MS = 1_000_000

#: the publicTrade push of the docs' example (websocket/public/trade), two trades
TRADE_PUSH = {
    "topic": "publicTrade.BTCUSDT",
    "type": "snapshot",
    "ts": 1672304486868,
    "data": [
        {"T": 1672304486865, "s": "BTCUSDT", "S": "Buy", "v": "0.001", "p": "16578.50", "L": "PlusTick",
         "i": "20f43950-d8dd-5b31-9112-a178eb6023af", "BT": False},
        {"T": 1672304486866, "s": "BTCUSDT", "S": "Sell", "v": "0.123456789012", "p": "16578.49", "L": "MinusTick",
         "i": "b1a2c3d4-0000-5b31-9112-a178eb6023b0", "BT": True},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def spot() -> BybitExchange:
    x = get_exchange("bybit")
    assert isinstance(x, BybitExchange)
    return x


@pytest.fixture(scope="module")
def linear() -> BybitExchange:
    x = get_exchange("bybit-linear")
    assert isinstance(x, BybitExchange)
    return x


@pytest.fixture(scope="module")
def ob500() -> list[str]:
    return OB500.read_text().splitlines()


def raw(exchange: BybitExchange, frames: list[str], route: tuple[str, str] | None = None) -> pl.DataFrame:
    """Lake rows of ``frames``, routed as the collector does (``route``: as the backfill lands REST replies)."""
    routes = [route or exchange.route(f) for f in frames]
    return pl.DataFrame(
        {
            "recv_ts": [1_700_000_000_000_000_000 + i for i in range(len(frames))],
            "exchange": [exchange.id] * len(frames),
            "channel": [c for c, _ in routes],
            "symbol": [s for _, s in routes],
            "conn_id": ["c"] * len(frames),
            "seq": list(range(1, len(frames) + 1)),
            "payload": frames,
        },
        schema=RAW,
    )


def with_u(frame: str, u: int, kind: str | None = None) -> str:
    msg = orjson.loads(frame)
    msg["data"]["u"] = u
    if kind is not None:
        msg["type"] = kind
    return orjson.dumps(msg).decode()


# -- the real orderbook.500 recording -------------------------------------------------------------------------
def test_real_book_rebuilds_without_sequence_error(linear: BybitExchange, ob500: list[str]) -> None:
    builder = linear.book_builder("XRPUSDT")
    events = [builder.on_raw("orderbook.500", frame) for frame in ob500]
    assert events[0] == StreamEvent(SYNCED, "orderbook.500", "XRPUSDT", "snapshot")
    assert events[1:] == [None] * 49  # 49 deltas, each u = previous u + 1
    assert builder.valid and builder.u == 20254918 and builder.seq is not None
    book = builder.book
    assert book.depth() == (500, 500)
    # the top of the book, against a plain dict rebuild of the same frames (prices and sizes as sent)
    assert book.raw_bids(3) == [("1.9537", "10605"), ("1.9536", "3515"), ("1.9535", "5094")]
    assert book.raw_asks(3) == [("1.9538", "6702"), ("1.9539", "18558"), ("1.9540", "19825")]
    # the live session applies the same rules: one synced event, no error, no request
    session = linear.new_session([Subscription("orderbook.500", "XRPUSDT")], None)
    actions = [session.on_frame("orderbook.500", "XRPUSDT", f) for f in ob500]
    assert actions[0] is not None and actions[0].events == (StreamEvent(SYNCED, "orderbook.500", "XRPUSDT"),)
    assert actions[1:] == [None] * 49
    assert session.sync_state() == {"XRPUSDT": "synced"} and session.errors == 0
    live = session.book("XRPUSDT")
    assert live is not None and live.best_bid() == (1.9537, 10605.0) and live.best_ask() == (1.9538, 6702.0)


def test_gap_resubscribes_that_topic_only(linear: BybitExchange, ob500: list[str]) -> None:
    subs = [Subscription("orderbook.500", "XRPUSDT"), Subscription("orderbook.500", "BTCUSDT")]
    session = linear.new_session(subs, None)
    assert session.sync_state() == {"XRPUSDT": "buffering", "BTCUSDT": "buffering"}
    btc = with_u(ob500[0], 7).replace("XRPUSDT", "BTCUSDT")
    assert session.on_frame("orderbook.500", "BTCUSDT", btc) is not None
    for frame in ob500[:10]:
        session.on_frame("orderbook.500", "XRPUSDT", frame)
    action = session.on_frame("orderbook.500", "XRPUSDT", ob500[11])  # ob500[10] (u=20254879) lost
    assert action is not None
    assert action.events == (
        StreamEvent(GAP, "orderbook.500", "XRPUSDT", "update id gap: u=20254880 after u=20254878"),
    )
    assert [orjson.loads(m) for m in action.send] == [
        {"op": "unsubscribe", "args": ["orderbook.500.XRPUSDT"]},
        {"op": "subscribe", "args": ["orderbook.500.XRPUSDT"]},
    ]
    assert action.error is not None and "resubscribing" in action.error
    assert session.sync_state() == {"XRPUSDT": "resyncing", "BTCUSDT": "synced"}
    assert session.book("XRPUSDT") is None and session.book("BTCUSDT") is not None
    # deltas before the fresh snapshot are ignored; the other symbol goes on
    assert session.on_frame("orderbook.500", "XRPUSDT", ob500[12]) is None
    btc_delta = with_u(ob500[1], 8).replace("XRPUSDT", "BTCUSDT")
    assert session.on_frame("orderbook.500", "BTCUSDT", btc_delta) is None
    fresh = with_u(ob500[12], 20254881, "snapshot")
    again = session.on_frame("orderbook.500", "XRPUSDT", fresh)
    assert again is not None and again.events == (StreamEvent(SYNCED, "orderbook.500", "XRPUSDT"),)
    assert session.on_frame("orderbook.500", "XRPUSDT", ob500[13]) is None  # u=20254882 continues the snapshot
    assert session.sync_state() == {"XRPUSDT": "synced", "BTCUSDT": "synced"} and session.errors == 1


def test_u_1_is_a_restart_and_replaces_the_book(linear: BybitExchange) -> None:
    """websocket/public/orderbook: "occasionally you'll receive u=1, which is a snapshot data due to the restart
    of the service. So please overwrite your local orderbook"."""
    builder = linear.book_builder("BTCUSDT")
    snap = {"s": "BTCUSDT", "b": [["100.0", "1"], ["99.5", "2"]], "a": [["100.5", "3"]], "u": 500, "seq": 9}
    builder.apply("snapshot", snap)
    builder.apply("delta", {"s": "BTCUSDT", "b": [["99.5", "0"]], "a": [], "u": 501, "seq": 10})
    assert builder.book.raw_bids() == [("100.0", "1")]
    # a push with u=1 after u=501 is no gap: it is the whole new book
    assert builder.apply("delta", {"s": "BTCUSDT", "b": [["98.0", "4"]], "a": [["98.5", "5"]], "u": 1}) is None
    assert builder.valid and builder.restarts == 1
    assert builder.book.raw_bids() == [("98.0", "4")] and builder.book.raw_asks() == [("98.5", "5")]
    assert builder.apply("delta", {"s": "BTCUSDT", "b": [], "a": [["99.0", "1"]], "u": 2}) is None
    assert builder.book.raw_asks() == [("98.5", "5"), ("99.0", "1")]
    # a snapshot resets the book whatever its u; a delta skipping one is a gap
    assert builder.apply("snapshot", {"b": [["1.0", "1"]], "a": [["2.0", "1"]], "u": 40}) is None
    assert builder.apply("delta", {"b": [], "a": [], "u": 42}) == (GAP, "update id gap: u=42 after u=40")
    assert not builder.valid and builder.book.depth() == (0, 0)
    assert builder.apply("delta", {"b": [], "a": [], "u": 43}) is None  # ignored until the next snapshot
    with pytest.raises(ValueError, match="without an integer u"):
        builder.apply("delta", {"b": []})


def test_depth_1_resends_the_same_snapshot(spot: BybitExchange) -> None:
    """Depth 1 pushes snapshots only, and the same one again (same u) after 3 s without change."""
    session = spot.new_session([Subscription("orderbook.1", "BTCUSDT")], None)
    frame = orjson.dumps(
        {"topic": "orderbook.1.BTCUSDT", "type": "snapshot", "ts": 1672304484978,
         "data": {"s": "BTCUSDT", "b": [["16493.50", "0.006"]], "a": [["16611.00", "0.029"]], "u": 18521288,
                  "seq": 7961638724}, "cts": 1672304484976}
    ).decode()  # fmt: skip
    first = session.on_frame("orderbook.1", "BTCUSDT", frame)
    assert first is not None and first.events[0].kind == SYNCED
    assert session.on_frame("orderbook.1", "BTCUSDT", frame) is None  # same u again: nothing to report
    book = session.book("BTCUSDT")
    assert book is not None and book.best_bid() == (16493.5, 0.006) and session.errors == 0


# -- connecting, routing, control ----------------------------------------------------------------------------
def test_subscribe_in_batches_of_10_and_capabilities(spot: BybitExchange, linear: BybitExchange) -> None:
    symbols = [f"S{i}USDT" for i in range(5)]
    subs = [
        Subscription(c, s)
        for s in symbols
        for c in ("publicTrade", "orderbook.50", "tickers", "kline.1", "orderbook.1")
    ]
    messages = [orjson.loads(m) for m in spot.subscribe_messages(subs)]
    assert [len(m["args"]) for m in messages] == [10, 10, 5]
    assert messages[0] == {"op": "subscribe", "args": [
        "publicTrade.S0USDT", "orderbook.50.S0USDT", "tickers.S0USDT", "kline.1.S0USDT", "orderbook.1.S0USDT",
        "publicTrade.S1USDT", "orderbook.50.S1USDT", "tickers.S1USDT", "kline.1.S1USDT", "orderbook.1.S1USDT",
    ]}  # fmt: skip
    assert orjson.loads(spot.unsubscribe_messages(subs[:1])[0]) == {"op": "unsubscribe", "args": ["publicTrade.S0USDT"]}
    for x, url in (
        (spot, "wss://stream.bybit.com/v5/public/spot"),
        (linear, "wss://stream.bybit.com/v5/public/linear"),
    ):
        caps = x.capabilities
        assert x.ws_url == url and x.connect_url([], "ws://127.0.0.1:9") == "ws://127.0.0.1:9" + url[22:]
        assert caps.contiguous_ids == frozenset() and caps.trade_channels == {"publicTrade"}
        assert caps.streams_per_connection == 500 and caps.subscribe_ack is False and caps.checksum is False
        assert x.keepalive.client_ping == '{"op":"ping"}' and x.keepalive.interval_s == 20.0
        assert x.trade_history("publicTrade") is not None and x.trade_history("tickers") is None
    assert "orderbook.500" in linear.capabilities.book_channels and "orderbook.500" not in spot.capabilities.channels
    with pytest.raises(ValueError, match="needs a channel and a symbol"):
        spot.subscribe_messages([Subscription("tickers", "")])


def test_route_and_exchange_time(linear: BybitExchange, ob500: list[str]) -> None:
    frames = {
        ob500[0]: ("orderbook.500", "XRPUSDT", 1733011200691),
        orjson.dumps(TRADE_PUSH).decode(): ("publicTrade", "BTCUSDT", 1672304486868),
        '{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","bid1Price":"17215.50"},'
        '"cs":24987956059,"ts":1673272861686}': ("tickers", "BTCUSDT", 1673272861686),
        '{"topic":"kline.1.BTCUSDT","data":[{"start":1672324800000,"end":1672324859999,"interval":"1",'
        '"open":"16649.5","close":"16677","high":"16677","low":"16608","volume":"2.081","turnover":"34666.4005",'
        '"confirm":false,"timestamp":1672324988882}],"ts":1672324988882,"type":"snapshot"}': (
            "kline.1",
            "BTCUSDT",
            1672324988882,
        ),
        # spaced JSON (Bybit sends compact JSON): routed by decoding it; its time is not read by the string scan
        '{"type": "snapshot", "topic": "tickers.ETHUSDT", "ts": 1673853746003, "data": {}}': (
            "tickers",
            "ETHUSDT",
            None,
        ),
        '{"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a","op":"ping"}': (
            "control",
            "",
            None,
        ),
        '{"success":true,"ret_msg":"","conn_id":"cejreaspqfh3sjdnldmg-p","req_id":"","op":"subscribe"}': (
            "control",
            "",
            None,
        ),
    }
    for frame, (channel, symbol, ms) in frames.items():
        assert linear.route(frame) == (channel, symbol), frame
        assert linear.exchange_time(frame) == (None if ms is None else ms * MS), frame
    times = linear.exchange_times(pl.Series(list(frames)))
    assert times.to_list() == [None if ms is None else ms * MS for _, _, ms in frames.values()]
    assert linear.route_key("orderbook.500.XRPUSDT") == ("orderbook.500", "XRPUSDT")
    assert linear.route_prefix == ('{"topic":"', 1)


def test_control_events_acks_pongs_and_refusals(spot: BybitExchange) -> None:
    ack = '{"success":true,"ret_msg":"subscribe","conn_id":"2324d924-aa4d","req_id":"10001","op":"subscribe"}'
    pong = '{"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a","op":"ping"}'
    assert spot.control_events(ack) == [] and spot.control_events(pong) == []
    refused = '{"success":false,"ret_msg":"Invalid symbol :[orderbook.50.BTCUSDX]","conn_id":"x","op":"subscribe"}'
    assert spot.control_events(refused) == [
        StreamEvent(SUB_ERROR, "orderbook.50", "BTCUSDX", "subscribe: Invalid symbol :[orderbook.50.BTCUSDX]")
    ]
    again = (
        '{"success":false,"ret_msg":"error:already subscribed,topic:tickers.BTCUSDT","conn_id":"x","op":"subscribe"}'
    )
    assert spot.control_events(again) == []  # the stream is live: not a refusal of it
    vague = '{"success":false,"ret_msg":"args size >10","conn_id":"x","op":"subscribe"}'
    assert spot.control_events(vague) == [StreamEvent(SUB_ERROR, "", "", "subscribe: args size >10")]


# -- trades ----------------------------------------------------------------------------------------------------
def test_trades_exact_side_time_and_ids(spot: BybitExchange, linear: BybitExchange) -> None:
    push = orjson.dumps(TRADE_PUSH).decode()
    trades, rejects = linear.normalize_trades_with_rejects(raw(linear, [push]))
    assert rejects.height == 0
    assert trades.select("exchange", "symbol", "trade_id", "price", "size", "side", "fills").rows() == [
        ("bybit-linear", "BTC-USDT-PERP", "20f43950-d8dd-5b31-9112-a178eb6023af", Decimal("16578.5"),
         Decimal("0.001"), "buy", 1),
        ("bybit-linear", "BTC-USDT-PERP", "b1a2c3d4-0000-5b31-9112-a178eb6023b0", Decimal("16578.49"),
         Decimal("0.123456789012"), "sell", 1),
    ]  # fmt: skip
    assert trades["ts"].cast(pl.Int64).to_list() == [1672304486865 * MS, 1672304486866 * MS]
    assert trades["seq_id"].null_count() == 2 and trades["channel"].to_list() == ["publicTrade"] * 2
    # the typed parse agrees, field by field
    typed = [(t.trade_id, t.price, t.size, t.side, t.ts) for t in linear.parse_trades(push)]
    rows = trades.select("trade_id", "price", "size", "side", pl.col("ts").cast(pl.Int64)).rows()
    assert typed == rows
    # spot: numeric ids in strings, BASE-QUOTE symbols
    spot_push = push.replace("publicTrade.BTCUSDT", "publicTrade.BTCUSDC").replace('"s":"BTCUSDT"', '"s":"BTCUSDC"')
    spot_push = spot_push.replace("20f43950-d8dd-5b31-9112-a178eb6023af", "2290000000036455162")
    got = spot.normalize_trades(raw(spot, [spot_push]))
    assert got["symbol"].to_list() == ["BTC-USDC", "BTC-USDC"] and got["trade_id"][0] == "2290000000036455162"


def test_bad_trade_rows_are_rejected_with_a_reason(linear: BybitExchange) -> None:
    good = orjson.dumps(TRADE_PUSH).decode()
    numeric = good.replace('"p":"16578.50"', '"p":16578.50')
    side = good.replace('"S":"Buy"', '"S":"buy"')
    empty = '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[]}'
    broken = '{"topic":"publicTrade.BTCUSDT","type":"snap'
    no_data = '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1}'
    zero = good.replace('"v":"0.001"', '"v":"0"')
    trades, rejects = linear.normalize_trades_with_rejects(
        raw(linear, [good, numeric, side, empty, broken, no_data, zero])
    )
    assert trades.height == 2 + 1 + 1  # the good push, and the sound trade of the side and zero pushes
    reasons = dict(zip(rejects["seq"].to_list(), rejects["reason"].to_list(), strict=True))
    assert reasons == {
        2: "a price or size is a JSON number, not a decimal string",
        3: "taker side S is neither Buy nor Sell: buy",
        4: "no trades in data",
        5: "payload is not a publicTrade push in the documented layout",
        6: "payload has no data list (nor result.list)",
        7: "size is not positive: 0",
    }
    assert set(rejects.columns) == {*RAW, "reason"}


def test_rest_history_records_normalize_like_the_push(linear: BybitExchange) -> None:
    """market/recent-trade records (execId, symbol, price, size, side, time as a string, isBlockTrade), landed by
    the backfill through ``encode``, give the same trades as the push that carried them."""
    history = linear.trade_history("publicTrade")
    assert isinstance(history, BybitTradeHistory)
    records = [
        {"execId": d["i"], "symbol": d["s"], "price": d["p"], "size": d["v"], "side": d["S"], "time": str(d["T"]),
         "isBlockTrade": d["BT"]}
        for d in TRADE_PUSH["data"]  # type: ignore[attr-defined]
    ]  # fmt: skip
    body = history.encode(records)
    assert [r["execId"] for r in orjson.loads(body)["result"]["list"]] == [records[1]["execId"], records[0]["execId"]]
    cols = ["symbol", "ts", "trade_id", "price", "size", "side"]
    pushed = linear.normalize_trades(raw(linear, [orjson.dumps(TRADE_PUSH).decode()])).select(cols).sort("ts")
    fetched = linear.normalize_trades(raw(linear, [body], ("publicTrade", "BTCUSDT"))).select(cols).sort("ts")
    assert fetched.equals(pushed)


def test_symbols(spot: BybitExchange, linear: BybitExchange) -> None:
    assert [spot.normalize_symbol(s) for s in ("BTCUSDT", "ETHUSDC", "PEPEUSDT", "TONUSDT", "ETHBTC", "XYZ")] == [
        "BTC-USDT", "ETH-USDC", "PEPE-USDT", "TON-USDT", "ETH-BTC", "XYZ"]  # fmt: skip
    perps = ("BTCUSDT", "1000PEPEUSDT", "ETHPERP", "BTCUSDT-27DEC24", "BTC-27DEC24")
    assert [linear.normalize_symbol(s) for s in perps] == [
        "BTC-USDT-PERP", "1000PEPE-USDT-PERP", "ETH-USDC-PERP", "BTC-USDT-27DEC24", "BTC-USDC-27DEC24"]  # fmt: skip
    inverse = BybitExchange("inverse")
    assert inverse.id == "bybit-inverse" and inverse.ws_url == "wss://stream.bybit.com/v5/public/inverse"
    assert [inverse.normalize_symbol(s) for s in ("BTCUSD", "ETHUSDH25")] == ["BTC-USD-PERP", "ETH-USD-H25"]


# -- capture detection --------------------------------------------------------------------------------------
def test_capture_detection_v5_market_and_legacy_refused(shared_data: Path) -> None:
    assert detect_exchange(CAPTURE) == "bybit-linear"
    with pytest.raises(CaptureError, match="is a bybit-linear capture"):
        check_exchange(CAPTURE, "bybit")
    legacy = shared_data / "cryptofeed-samples/BYBIT.ws.25.0.gz"
    # the pre-v5 API on the same host: never read as v5
    with pytest.raises(CaptureError, match=r"recorded from wss://stream\.bybit\.com/realtime_public, not a supported"):
        detect_exchange(legacy)


# -- REST history over the replay ---------------------------------------------------------------------------
T0 = 1733011200 * 10**9  # the capture's first second (2024-12-01 00:00:00 UTC)


def _fetch(history: BybitTradeHistory, start: int, end: int) -> tuple[list, Exception | None]:  # type: ignore[type-arg]
    async def run() -> tuple[list, Exception | None]:  # type: ignore[type-arg]
        pages = []
        async with ReplayServer([CAPTURE], speed=0) as server:
            client = RestClient(timeout_s=10.0)
            try:
                async for page in history.fetch(client, "XRPUSDT", start, end, base_url=server.rest_base):
                    pages.append(page)
            except HistoryHorizon as exc:
                return pages, exc
            finally:
                await client.aclose()
        return pages, None

    return asyncio.run(run())


def test_history_heals_within_its_reach() -> None:
    """All 87 recorded XRPUSDT trades are within the last 1,000: a gap of 00:00:30-00:01:00 is fetched whole."""
    pages, horizon = _fetch(BybitTradeHistory("linear"), T0 + 30 * 10**9, T0 + 60 * 10**9)
    assert horizon is None and len(pages) == 1
    page = pages[0]
    assert page.proven == (T0 + 30 * 10**9, T0 + 60 * 10**9)
    assert page.request.startswith("GET /v5/market/recent-trade?category=linear&symbol=XRPUSDT&limit=1000")
    assert len(page.records) == 18 and list(page.times_ns) == sorted(page.times_ns)
    assert all(T0 + 30 * 10**9 <= t < T0 + 60 * 10**9 for t in page.times_ns)


def test_history_says_it_does_not_reach_back() -> None:
    """Asking for the last 20 trades only: the reply reaches back to 00:02:06.500, the gap starts at 00:00:30; the
    page proves just [00:02:06.501, end) and the fetch then says there is no history beyond."""
    end = T0 + 170 * 10**9
    pages, horizon = _fetch(BybitTradeHistory("linear", limit=20), T0 + 30 * 10**9, end)
    assert len(pages) == 1 and len(pages[0].records) == 20
    oldest = min(pages[0].times_ns)
    assert oldest == T0 + 126_500 * MS
    assert pages[0].proven == (oldest + MS, end)  # never the oldest's millisecond, never before it
    assert isinstance(horizon, HistoryHorizon)
    assert str(horizon) == (
        "no history beyond the last 20 trades: Bybit's /v5/market/recent-trade (linear) reaches back to "
        "2024-12-01 00:02:06.500 UTC, the gap starts 2024-12-01 00:00:30.000 UTC"
    )


def test_backfill_reports_no_history_beyond(tmp_path: Path) -> None:
    """``mdp backfill``'s healing over the replay: a gap beyond the reach is reported failed with the reason, and
    only the part the reply proved is claimed."""
    x = get_exchange("bybit-linear")
    assert isinstance(x, BybitExchange)
    start, end = T0 + 30 * 10**9, T0 + 170 * 10**9
    gap = Gap("bybit-linear", "XRP-USDT-PERP", "XRPUSDT", "publicTrade", start, end, None)

    async def run() -> object:
        async with ReplayServer([CAPTURE], speed=0) as server:
            history = x._history
            x._history = BybitTradeHistory("linear", limit=20)
            try:
                return await heal_gaps(str(tmp_path / "lake"), [gap], rest_url=server.rest_base)
            finally:
                x._history = history

    report = asyncio.run(run())
    (healed,) = report.healed  # type: ignore[attr-defined]
    assert healed.trades == 20 and healed.proven == (T0 + 126_501 * MS, end) and not healed.whole
    assert healed.error.startswith("no history beyond the last 20 trades")
    assert "failed: no history beyond the last 20 trades" in healed.describe()
    # the part it could not reach is recorded, and coverage says so on the gap it leaves (it stays a gap)
    events = read_backfill_events(str(tmp_path / "lake"), 0, 1 << 62)
    unreachable = events.filter(pl.col("kind") == "unreachable")
    assert unreachable.height == 1 and unreachable["symbol"].to_list() == ["XRPUSDT"]
    assert unreachable["exchange_ts"].dt.epoch("ns").to_list() == [start]
    assert orjson.loads(unreachable["detail"][0])["end"] == T0 + 126_501 * MS
    hour = start - start % (3600 * 10**9)
    coverage = compute_coverage(
        unreachable, x.normalize_trades(pl.DataFrame(schema=RAW)), hour, hour + 3600 * 10**9,
        kinds=registry_stream_kinds(),
    )  # fmt: skip
    (row,) = coverage.filter(pl.col("end_time").dt.epoch("ns") == T0 + 126_501 * MS).iter_rows(named=True)
    assert row["status"] == "gap" and "no history beyond the last 20 trades" in row["detail"]


def test_builder_checkpoint_restores(linear: BybitExchange, ob500: list[str]) -> None:
    first = linear.book_builder("XRPUSDT")
    for frame in ob500[:20]:
        first.on_raw("orderbook.500", frame)
    state = copy.deepcopy(first.checkpoint())
    second = BybitBookBuilder("XRPUSDT", linear.capabilities.book_channels)
    second.restore(first.book.raw_bids(), first.book.raw_asks(), state)
    for frame in ob500[20:]:
        assert first.on_raw("orderbook.500", frame) is None
        assert second.on_raw("orderbook.500", frame) is None
    assert second.book.raw_bids() == first.book.raw_bids() and second.u == 20254918
    assert isinstance(linear.new_session([], None), BybitSession)


# -- the replay speaking Bybit's WebSocket protocol ----------------------------------------------------------
def test_replay_acks_pongs_refusals_and_snapshot_on_subscribe() -> None:
    """Built from ws/connect: acks and pongs carry success/ret_msg/conn_id/op; refusals are success false with the
    reason (the unknown topic named); a subscriber joining mid-stream gets the book's snapshot at once."""
    from websockets.asyncio.client import connect

    async def run() -> list[dict[str, object]]:
        got: list[dict[str, object]] = []
        async with ReplayServer([CAPTURE], speed=0) as server, connect(server.ws_url) as ws:
            await ws.send('{"op":"subscribe","args":["publicTrade.XRPUSDT"]}')
            got.append(orjson.loads(await ws.recv()))
            await server.wait_finished(timeout=30)
            await ws.send('{"req_id":"7","op":"ping"}')
            while "topic" in (msg := orjson.loads(await ws.recv())):
                pass  # the trades the cursor sent before
            got.append(msg)
            await ws.send('{"op":"subscribe","args":["orderbook.500.XRPUSDT","orderbook.40.XRPUSDT","tickers.XYZ"]}')
            got.append(orjson.loads(await ws.recv()))
            got.append(orjson.loads(await ws.recv()))  # the snapshot of the book the cursor has kept
            await ws.send('{"op":"unsubscribe","args":["orderbook.500.XRPUSDT"]}')
            while (msg := orjson.loads(await ws.recv())).get("op") != "unsubscribe":
                pass
            got.append(msg)
        return got

    ack, pong, refused, snapshot, unsub = asyncio.run(run())
    assert {k: ack[k] for k in ("success", "ret_msg", "op")} == {"success": True, "ret_msg": "", "op": "subscribe"}
    assert {k: pong[k] for k in ("success", "ret_msg", "req_id", "op")} == {
        "success": True, "ret_msg": "pong", "req_id": "7", "op": "ping"}  # fmt: skip
    assert refused["success"] is False and refused["ret_msg"] == (
        "error:handler not found,topic:orderbook.40.XRPUSDT; Invalid symbol :[tickers.XYZ]"
    )
    x = get_exchange("bybit-linear")
    assert [(e.channel, e.symbol) for e in x.control_events(orjson.dumps(refused).decode())] == [
        ("orderbook.40", "XRPUSDT"), ("tickers", "XYZ")]  # fmt: skip
    assert snapshot["topic"] == "orderbook.500.XRPUSDT" and snapshot["type"] == "snapshot"
    data = snapshot["data"]
    assert isinstance(data, dict) and data["u"] == 20254918 and len(data["b"]) == 500
    assert unsub["success"] is True


def test_replay_spot_refuses_more_than_10_args(tmp_path: Path) -> None:
    import gzip

    from websockets.asyncio.client import connect

    capture = tmp_path / "spot.ws.gz"
    push = orjson.dumps(TRADE_PUSH).decode()
    with gzip.open(capture, "wt") as fh:
        fh.write(f"wss://stream.bybit.com/v5/public/spot <-> 1672304486.000\n1672304486.870: {push}\n")
    assert detect_exchange(capture) == "bybit"
    args = [f"kline.1.BTCUSDT{i}" for i in range(11)]

    async def run() -> dict[str, object]:
        async with ReplayServer([capture], speed=0) as server, connect(server.ws_url) as ws:
            await ws.send(orjson.dumps({"op": "subscribe", "args": args}).decode())
            return orjson.loads(await ws.recv())  # type: ignore[no-any-return]

    refused = asyncio.run(run())
    assert refused["success"] is False and refused["ret_msg"] == "args size >10"
