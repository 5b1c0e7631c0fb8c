"""MEXC spot v3 (``mexc``): protobuf frames landed as JSON, wire format, book sync, trades, REST history, the replay.

There is **no recording of MEXC**: every message here is **built from MEXC's spot v3 documentation** (2026: "Websocket
Market Streams", "Trade Streams", "Diff.Depth Stream", "Individual Symbol Book Ticker Streams", "How to Properly
Maintain a Local Copy of the Order Book"; market data "Order Book" and "Recent Trades List"), pushes encoded with the
``.proto`` definitions MEXC publishes (github.com/mexcdevelop/websocket-proto, declared in
``mdplatform/exchanges/mexc/_proto.py``); the docs' example values are used where they give some. So is
``tests/data/mexc/mexc_spot.ws.gz`` (``build_capture.py`` alongside). The candle check against the exchange's own
klines ("Must show") cannot be made: no MEXC kline was ever recorded.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from mdplatform.backfill import Gap, heal_gaps
from mdplatform.capture import detect_exchange
from mdplatform.contract import GAP, SUB_ERROR, SYNCED, BinaryFrames, StreamEvent, Subscription
from mdplatform.exchanges import get_exchange
from mdplatform.exchanges.mexc import (
    DEALS,
    DEPTH,
    KLINE,
    HistoryHorizon,
    MexcBookBuilder,
    MexcExchange,
    MexcSession,
    MexcTradeHistory,
    decode_push,
    encode_push,
    stream_name,
)
from mdplatform.history import RestClient
from mdplatform.replay import ReplayServer
from mdplatform.schemas import RAW

DATA = Path(__file__).parents[1] / "data" / "mexc"
CAPTURE = DATA / "mexc_spot.ws.gz"
MS = 1_000_000
TRADE = DEALS["100ms"]
BOOK = DEPTH["100ms"]
TICKER = "spot@public.aggre.bookTicker.v3.api.pb@100ms"

#: the "Trade Streams" example (price, quantity, tradeType, time, sendTime as the docs give them; a tradeId in the
#: shape the .proto's string field carries) plus a second, selling trade
DEALS_PUSH: dict[str, Any] = {
    "channel": f"{TRADE}@BTCUSDT",
    "symbol": "BTCUSDT",
    "sendTime": "1736409765052",
    "publicAggreDeals": {
        "deals": [
            {"price": "93220.00", "quantity": "0.04438243", "tradeType": 2, "time": "1736409765051",
             "tradeId": "731579883561406466X0_731579883561406467X0"},
            {"price": "93220.01", "quantity": "0.000000000001", "tradeType": 1, "time": "1736409765052",
             "tradeId": "731579883561406468X1_731579883561406469X1"},
        ],
        "eventType": TRADE,
    },
}  # fmt: skip


def depth_push(
    first: int, last: int, bids: list[list[str]], asks: list[list[str]], t: int, sym: str = "BTCUSDT"
) -> str:
    """A "Diff.Depth Stream" push as the lake keeps it (the docs' example: a bid at 92877.58 removed, 10589632359)."""
    body: dict[str, Any] = {}
    if asks:
        body["asks"] = [{"price": p, "quantity": q} for p, q in asks]
    if bids:
        body["bids"] = [{"price": p, "quantity": q} for p, q in bids]
    body |= {"eventType": BOOK, "fromVersion": str(first), "toVersion": str(last)}
    push = {"channel": f"{BOOK}@{sym}", "symbol": sym, "sendTime": str(t), "publicAggreDepths": body}
    return decode_push(encode_push(push))


def snapshot(last: int, bids: list[list[str]], asks: list[list[str]], t: int = 1736411507000) -> str:
    """An "Order Book" (``GET /api/v3/depth``) reply."""
    return orjson.dumps({"lastUpdateId": last, "bids": bids, "asks": asks, "timestamp": t}).decode()


@pytest.fixture(scope="module")
def mexc() -> MexcExchange:
    x = get_exchange("mexc")
    assert isinstance(x, MexcExchange)
    return x


def _raw(payloads: list[str], channel: str = TRADE, symbol: str = "BTCUSDT") -> pl.DataFrame:
    n = len(payloads)
    return pl.DataFrame(
        {
            "recv_ts": [datetime(2025, 1, 9, 8, 2, 46, tzinfo=UTC)] * n,
            "exchange": ["mexc"] * n,
            "channel": [channel] * n,
            "symbol": [symbol] * n,
            "conn_id": ["c1"] * n,
            "seq": list(range(1, n + 1)),
            "payload": payloads,
        },
        schema=RAW,
    )


# -- protobuf frames ------------------------------------------------------------------------------------------
def test_push_decodes_to_canonical_json_and_back_byte_for_byte(mexc: MexcExchange) -> None:
    data = encode_push(DEALS_PUSH)
    assert isinstance(mexc, BinaryFrames)
    text = mexc.decode_binary(data)
    assert text is not None and orjson.loads(text) == DEALS_PUSH
    assert text.startswith('{"channel":"spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT","symbol":"BTCUSDT",')
    assert encode_push(text) == data  # the JSON the lake keeps is the frame, nothing lost
    # the collector tells a push by its content: the body's field tag (314 -> 0xD2 0x13) is never UTF-8
    with pytest.raises(UnicodeDecodeError):
        data.decode()
    assert b"\xd2\x13" in data


def test_unknown_fields_are_kept(mexc: MexcExchange) -> None:
    """Field 6 of a deal (upstream declares ``isRpi`` and ``version`` on it) and a header field the definitions do
    not name land under ``_unknown``, and go back to the same bytes."""
    item = encode_push({"channel": "x@BTCUSDT", "publicAggreDeals": {"deals": [{"price": "1", "quantity": "2"}]}})
    # hand-made: a deal carrying field 6 = 1 (varint), and the wrapper a field 7 = 3
    deal = b"\n\x011\x12\x012" + b"\x30\x01"
    body = b"\n" + bytes([len(deal)]) + deal
    data = b"\n\tx@BTCUSDT" + b"\xd2\x13" + bytes([len(body)]) + body + b"\x38\x03"
    text = mexc.decode_binary(data)
    assert text is not None
    obj = orjson.loads(text)
    assert obj["publicAggreDeals"]["deals"][0]["_unknown"] == [{"field": 6, "wireType": 0, "value": 1}]
    assert obj["_unknown"] == [{"field": 7, "wireType": 0, "value": 3}]
    assert item.startswith(b"\n\tx@BTCUSDT")
    with pytest.raises(ValueError, match="not a PushDataV3ApiWrapper"):
        mexc.decode_binary(b"\xd2\x13\xff\xff\xff")


def test_route_and_exchange_time(mexc: MexcExchange) -> None:
    text = decode_push(encode_push(DEALS_PUSH))
    assert mexc.route(text) == (TRADE, "BTCUSDT")
    assert mexc.route_key(f"{BOOK}@ETHUSDT") == (BOOK, "ETHUSDT")
    assert mexc.exchange_time(text) == 1736409765052 * MS
    ticker = decode_push(
        encode_push(
            {
                "channel": f"{TICKER}@BTCUSDT",
                "symbol": "BTCUSDT",
                "sendTime": "1736412092433",
                "publicAggreBookTicker": {
                    "bidPrice": "93387.28",
                    "bidQuantity": "3.73485",
                    "askPrice": "93387.29",
                    "askQuantity": "7.669875",
                },
            }
        )
    )
    assert mexc.route(ticker) == (TICKER, "BTCUSDT")
    # "K-line Streams": the docs' example; the stream names the interval after the symbol
    kline = decode_push(encode_push({
        "channel": "spot@public.kline.v3.api.pb@BTCUSDT@Min15", "symbol": "BTCUSDT",
        "symbolId": "2fb942154ef44a4ab2ef98c8afb6a4a7", "createTime": "1736410707571",
        "publicSpotKline": {"interval": "Min15", "windowStart": "1736410500", "openingPrice": "92925",
                            "closingPrice": "93158.47", "highestPrice": "93158.47", "lowestPrice": "92800",
                            "volume": "36.83803224", "amount": "3424811.05", "windowEnd": "1736411400"}}))  # fmt: skip
    assert mexc.route(kline) == ("spot@public.kline.v3.api.pb@Min15", "BTCUSDT")
    assert mexc.exchange_time(kline) == 1736410707571 * MS
    assert stream_name(Subscription(KLINE, "btcusdt")) == "spot@public.kline.v3.api.pb@BTCUSDT@Min1"
    pong, ack = '{"id":0,"code":0,"msg":"PONG"}', f'{{"id":0,"code":0,"msg":"{TRADE}@BTCUSDT"}}'
    assert mexc.route(pong) == mexc.route(ack) == ("control", "")
    assert mexc.exchange_time(pong) is None
    times = mexc.exchange_times(pl.Series([text, ticker, pong, '{"channel":"c@X","createTime":"5"}']))
    assert times.to_list() == [1736409765052 * MS, 1736412092433 * MS, None, 5 * MS]


def test_subscribe_messages_limits_and_capabilities(mexc: MexcExchange) -> None:
    subs = [Subscription(TRADE, "btcusdt"), Subscription(BOOK, "BTCUSDT"), Subscription(TRADE, "btcusdt")]
    assert mexc.subscribe_messages(subs) == [
        f'{{"method":"SUBSCRIPTION","params":["{TRADE}@BTCUSDT","{BOOK}@BTCUSDT"]}}'
    ]
    assert mexc.unsubscribe_messages(subs[:1]) == [f'{{"method":"UNSUBSCRIPTION","params":["{TRADE}@BTCUSDT"]}}']
    many = [Subscription(TRADE, f"S{i}USDT") for i in range(31)]
    assert [len(orjson.loads(m)["params"]) for m in mexc.subscribe_messages(many)] == [30, 1]
    caps = mexc.capabilities
    assert caps.streams_per_connection == 30 and caps.subscribe_ack is False
    assert caps.book_sync == "rest-snapshot" and caps.sequence_check and not caps.checksum
    assert caps.contiguous_ids == frozenset() and caps.markets == frozenset({"spot"})
    assert caps.trade_channels == frozenset(DEALS.values()) and caps.book_channels == frozenset(DEPTH.values())
    keep = mexc.keepalive
    assert (keep.client_ping, keep.interval_s) == ('{"method":"PING"}', 20.0) and keep.idle_timeout_s < 60
    assert mexc.ws_url == "wss://wbs-api.mexc.com/ws"
    assert mexc.snapshot_url("btcusdt") == "https://api.mexc.com/api/v3/depth?symbol=BTCUSDT&limit=5000"
    assert (
        mexc.snapshot_url("BTCUSDT", "http://127.0.0.1:9")
        == "http://127.0.0.1:9/api/v3/depth?symbol=BTCUSDT&limit=5000"
    )
    assert mexc.rest_cost("https://api.mexc.com/api/v3/depth?symbol=BTCUSDT&limit=5000")[0] == 1


def test_control_events_refusals(mexc: MexcExchange) -> None:
    refused = (
        '{"id":0,"code":0,"msg":"Not Subscribed successfully! '
        f'[{TRADE}@BTCUSD,{BOOK}@XYZUSDT].  Reason\uff1a Blocked! "}}'
    )
    events = mexc.control_events(refused)
    assert [(e.kind, e.channel, e.symbol) for e in events] == [
        (SUB_ERROR, TRADE, "BTCUSD"), (SUB_ERROR, BOOK, "XYZUSDT")]  # fmt: skip
    assert mexc.control_events('{"id":0,"code":0,"msg":"PONG"}') == []
    assert mexc.control_events(f'{{"id":0,"code":0,"msg":"{TRADE}@BTCUSDT"}}') == []
    assert mexc.control_events('{"id":0,"code":400,"msg":"bad request"}') == [
        StreamEvent(SUB_ERROR, "", "", "400: bad request")
    ]


# -- book sync --------------------------------------------------------------------------------------------------
BIDS = [["92877.58", "1.5"], ["92877.00", "2"]]
ASKS = [["92878.00", "0.5"], ["92879.00", "3"]]


def test_session_buffers_fetches_syncs_and_resyncs_that_symbol_only(mexc: MexcExchange) -> None:
    subs = [Subscription(BOOK, "BTCUSDT"), Subscription(BOOK, "ETHUSDT"), Subscription(TRADE, "BTCUSDT")]
    session = mexc.new_session(subs, "http://replay:1")
    assert isinstance(session, MexcSession) and session.sync_state() == dict.fromkeys(
        ["BTCUSDT", "ETHUSDT"], "buffering"
    )
    first = session.on_frame(BOOK, "BTCUSDT", depth_push(10589632359, 10589632359, [["92877.58", "0"]], [], 1))
    assert first is not None and first.fetch_snapshot == (
        "BTCUSDT", "http://replay:1/api/v3/depth?symbol=BTCUSDT&limit=5000")  # fmt: skip
    assert session.on_frame(BOOK, "BTCUSDT", depth_push(10589632360, 10589632362, [], ASKS, 2)) is None
    # a snapshot older than the first push buffered: fetched again
    again = session.on_snapshot("BTCUSDT", snapshot(10589632357, BIDS, ASKS))
    assert again is not None and again.fetch_snapshot is not None and again.events == ()
    synced = session.on_snapshot("BTCUSDT", snapshot(10589632360, BIDS, ASKS))
    assert synced is not None and synced.events == (StreamEvent(SYNCED, BOOK, "BTCUSDT"),)
    assert session.version("BTCUSDT") == 10589632362  # the buffered push beyond the snapshot applied
    assert session.on_frame(BOOK, "BTCUSDT", depth_push(10589632363, 10589632363, BIDS[:1], [], 3)) is None
    assert session.on_frame(TRADE, "BTCUSDT", "{}") is None  # not a book channel
    # the other push rate of the same symbol is another chain: left alone
    assert session.on_frame(DEPTH["10ms"], "BTCUSDT", depth_push(5, 9, [], [], 3)) is None
    gap = session.on_frame(BOOK, "BTCUSDT", depth_push(10589632365, 10589632366, BIDS[:1], [], 4))
    detail = "fromVersion=10589632365 > previous toVersion+1=10589632364 (toVersion=10589632366)"
    assert gap is not None and gap.events == (StreamEvent(GAP, BOOK, "BTCUSDT", detail),)
    assert gap.fetch_snapshot is not None and gap.fetch_snapshot[0] == "BTCUSDT"
    assert session.sync_state() == {"BTCUSDT": "resyncing", "ETHUSDT": "buffering"}
    healed = session.on_snapshot("BTCUSDT", snapshot(10589632366, BIDS, ASKS))
    assert healed is not None and healed.events == (StreamEvent(SYNCED, BOOK, "BTCUSDT"),)
    with pytest.raises(ValueError, match="without fromVersion/toVersion"):
        session.on_frame(BOOK, "ETHUSDT", '{"channel":"x","publicAggreDepths":{}}')
    bad = session.on_snapshot("ETHUSDT", '{"code":-1121,"msg":"Invalid symbol."}')
    assert bad is not None and bad.error is not None and bad.fetch_snapshot is None


def test_builder_applies_the_documented_rules_and_restores(mexc: MexcExchange) -> None:
    b = mexc.book_builder("BTCUSDT", keep_raw=True)
    assert isinstance(b, MexcBookBuilder) and not b.valid
    assert b.on_raw(BOOK, depth_push(100, 101, [["92877.58", "0"]], [], 1000)) is None  # buffered
    assert b.on_raw(BOOK, depth_push(102, 102, [["92876.00", "4"]], [["92878.00", "0"]], 1001)) is None
    assert b.on_raw("depthSnapshot", snapshot(101, BIDS, ASKS)) == StreamEvent(SYNCED, BOOK, "BTCUSDT")
    assert b.valid and b.book.raw_bids() == [("92877.58", "1.5"), ("92877.00", "2"), ("92876.00", "4")]
    assert b.book.raw_asks() == [("92879.00", "3")]  # 92878.00 removed by the buffered push beyond the snapshot
    state = copy.deepcopy(b.checkpoint())
    assert state == {"version": 102, "channel": BOOK}
    again = mexc.book_builder("BTCUSDT", keep_raw=True)
    again.restore(b.book.raw_bids(), b.book.raw_asks(), state)
    for builder in (b, again):
        assert builder.on_raw(BOOK, depth_push(103, 104, [["92877.00", "0"]], [], 1002)) is None
        assert builder.on_raw(DEPTH["10ms"], depth_push(1, 2, [["1", "1"]], [], 1002)) is None  # other chain
        event = builder.on_raw(BOOK, depth_push(106, 106, [], [], 1003))
        assert event is not None and event.kind == GAP and not builder.valid
        assert builder.book.raw_bids() == []
    assert mexc.book_time_patterns[0] == r'"sendTime":"(\d+)"'


# -- trades ---------------------------------------------------------------------------------------------------
def test_trades_exact_side_time_and_ids(mexc: MexcExchange) -> None:
    trades, rejects = mexc.normalize_trades_with_rejects(_raw([decode_push(encode_push(DEALS_PUSH))]))
    assert rejects.height == 0
    assert trades.select("trade_id", "price", "size", "side", "fills").rows() == [
        ("731579883561406466X0_731579883561406467X0", Decimal("93220.00"), Decimal("0.04438243"), "sell", 1),
        ("731579883561406468X1_731579883561406469X1", Decimal("93220.01"), Decimal("0.000000000001"), "buy", 1),
    ]
    assert trades["symbol"].to_list() == ["BTC-USDT"] * 2
    assert trades["ts"].dt.epoch("ns").to_list() == [1736409765051 * MS, 1736409765052 * MS]
    assert trades["seq_id"].null_count() == 2


def test_bad_trade_rows_are_rejected_with_a_reason(mexc: MexcExchange) -> None:
    def push(**item: Any) -> str:
        deal = {"price": "93220.00", "quantity": "1", "tradeType": 1, "time": "1736409765051", "tradeId": "a_b"}
        deal.update(item)
        deal = {k: v for k, v in deal.items() if v is not None}
        msg = {"channel": f"{TRADE}@BTCUSDT", "symbol": "BTCUSDT", "publicAggreDeals": {"deals": [deal]}}
        return decode_push(encode_push(msg))

    payloads = [
        push(tradeType=None),  # proto3 omits 0: no side
        push(tradeType=3),
        push(price="9.3E4"),
        push(quantity="-1"),
        push(price="0.0000000000001"),
        push(time=None),
        '{"channel":"x@BTCUSDT","symbol":"BTCUSDT"}',
        "not json",
    ]
    trades, rejects = mexc.normalize_trades_with_rejects(_raw(payloads))
    assert trades.height == 0
    assert rejects["reason"].to_list() == [
        "tradeType missing (proto3 default 0: neither buy nor sell)",
        "tradeType is neither 1 (buy) nor 2 (sell): 3",
        "price is not a plain decimal number: 9.3E4",
        "size is not positive: -1",
        "price has more than 12 decimal places: 0.0000000000001",
        "missing or invalid trade time",
        "payload has no publicAggreDeals body",
        "payload is not a deals push in the documented layout",
    ]


def test_rest_records_normalize_like_the_push_and_ids_stand_in(mexc: MexcExchange) -> None:
    """A ``/api/v3/trades`` reply (the docs' example: ``id`` null, ``isBuyerMaker`` true = a taker sell) landed by the
    backfill, and a push without ``tradeId`` (the .proto before it): ids made of time, price, size, side and rank."""
    reply = (
        '[{"id":null,"price":"63530","qty":"0.00317906","quoteQty":"201.96568180","time":1781226399689,'
        '"isBuyerMaker":true,"isBestMatch":true,"tradeType":"ASK"},'
        '{"id":null,"price":"63530","qty":"0.00317906","quoteQty":"201.96568180","time":1781226399689,'
        '"isBuyerMaker":true,"isBestMatch":true,"tradeType":"ASK"},'
        '{"id":null,"price":"63529.99","qty":"0.00232318","quoteQty":"147.5916021682","time":1781226399687,'
        '"isBuyerMaker":false,"isBestMatch":true,"tradeType":"BID"}]'
    )
    no_id = {"channel": f"{TRADE}@BTCUSDT", "symbol": "BTCUSDT", "publicAggreDeals": {"deals": [
        {"price": "63530", "quantity": "0.00317906", "tradeType": 2, "time": "1781226399689"}]}}  # fmt: skip
    trades, rejects = mexc.normalize_trades_with_rejects(
        _raw([reply, decode_push(encode_push(no_id)), '[{"price":63530,"qty":"1","time":1,"isBuyerMaker":true}]'])
    )
    assert trades.select("trade_id", "price", "side").rows() == [
        ("t1781226399689-63530-0.00317906-s-0", Decimal("63530"), "sell"),
        ("t1781226399689-63530-0.00317906-s-1", Decimal("63530"), "sell"),  # the same values twice: two trades
        ("t1781226399687-63529.99-0.00232318-b-0", Decimal("63529.99"), "buy"),
        ("t1781226399689-63530-0.00317906-s-0", Decimal("63530"), "sell"),  # the push: the same trade as the first
    ]
    assert rejects["reason"].to_list() == ["a price or size is a JSON number, not a decimal string"]


def test_symbols(mexc: MexcExchange) -> None:
    assert [mexc.normalize_symbol(s) for s in ("BTCUSDT", "ethbtc", "PEPEUSDC", "BTCFDUSD", "MXUSDT", "ODD")] == [
        "BTC-USDT", "ETH-BTC", "PEPE-USDC", "BTC-FDUSD", "MX-USDT", "ODD"]  # fmt: skip


def test_capture_detection() -> None:
    assert detect_exchange(CAPTURE) == "mexc"
    assert get_exchange("mexc").capture_hints.feeds == ("MEXC",)


# -- REST history over the replay -----------------------------------------------------------------------------
T0 = 1767571200 * 10**9  # the capture's first second (2026-01-05 00:00:00 UTC)


def _fetch(history: MexcTradeHistory, start: int, end: int) -> tuple[list[Any], Exception | None]:
    async def run() -> tuple[list[Any], Exception | None]:
        pages = []
        async with ReplayServer([CAPTURE], speed=0) as server:
            client = RestClient(timeout_s=10.0)
            try:
                async for page in history.fetch(client, "BTCUSDT", start, end, base_url=server.rest_base):
                    pages.append(page)
            except HistoryHorizon as exc:
                return pages, exc
            finally:
                await client.aclose()
        return pages, None

    return asyncio.run(run())


def test_history_fetches_the_span_but_proves_nothing() -> None:
    """All 99 recorded BTCUSDT trades are within the last 1000: the trades of 00:00:30-00:01:00 come back, oldest
    first, as the replay answers ``/api/v3/trades`` (ids null); the page proves nothing (no ids, no server time)."""
    pages, horizon = _fetch(MexcTradeHistory(TRADE), T0 + 30 * 10**9, T0 + 60 * 10**9)
    assert horizon is None and len(pages) == 1
    page = pages[0]
    assert page.proven is None and page.channel == TRADE
    assert page.request.startswith("GET /api/v3/trades?symbol=BTCUSDT&limit=1000")
    assert len(page.records) == 20 and list(page.times_ns) == sorted(page.times_ns)
    assert all(T0 + 30 * 10**9 <= t < T0 + 60 * 10**9 for t in page.times_ns)
    assert all(r["id"] is None and r["isBuyerMaker"] == (r["tradeType"] == "ASK") for r in page.records)


def test_history_says_it_does_not_reach_back() -> None:
    pages, horizon = _fetch(MexcTradeHistory(TRADE, limit=20), T0 + 30 * 10**9, T0 + 170 * 10**9)
    assert len(pages) == 1 and len(pages[0].records) == 20 and pages[0].proven is None
    assert isinstance(horizon, HistoryHorizon)
    assert str(horizon).startswith("no history beyond the last 20 trades: MEXC's /api/v3/trades reaches back to 2026")
    assert str(horizon).endswith("the gap starts 2026-01-05 00:00:30.000 UTC")


def test_backfill_lands_the_trades_and_claims_nothing(tmp_path: Path, mexc: MexcExchange) -> None:
    """``mdp backfill`` over the replay: the gap's trades are fetched and landed (they normalize like the push's,
    same ids as the deals would get without ``tradeId``), but no span is claimed complete."""
    start, end = T0 + 30 * 10**9, T0 + 60 * 10**9
    gap = Gap("mexc", "BTC-USDT", "BTCUSDT", TRADE, start, end, None)

    async def run() -> object:
        async with ReplayServer([CAPTURE], speed=0) as server:
            return await heal_gaps(str(tmp_path / "lake"), [gap], rest_url=server.rest_base)

    report = asyncio.run(run())
    (healed,) = report.healed  # type: ignore[attr-defined]
    assert healed.trades == 20 and healed.proven is None and not healed.whole and healed.error is None
    assert "nothing proven" in healed.describe()


# -- the replay speaking MEXC's WebSocket protocol --------------------------------------------------------------
def test_replay_answers_pings_refusals_and_unsubscribes() -> None:
    from websockets.asyncio.client import connect

    async def run() -> list[Any]:
        got: list[Any] = []
        async with ReplayServer([CAPTURE], speed=0) as server, connect(server.ws_url) as ws:
            await ws.send(orjson.dumps({"method": "SUBSCRIPTION", "params": [f"{TRADE}@BTCUSDT"]}).decode())
            got.append(orjson.loads(await ws.recv()))
            # the replay sends the pushes' bytes in text frames (its one frame kind): read without UTF-8 decoding
            got.append(await ws.recv(decode=False))
            await server.wait_finished(timeout=30)
            await ws.send('{"method":"PING"}')
            while b"PONG" not in (msg := await ws.recv(decode=False)):
                pass  # the deals the cursor sent before
            got.append(orjson.loads(msg))
            refused = [f"{TRADE}@XYZUSDT", "spot@public.kline.v3.api.pb@BTCUSDT@Min5"]
            await ws.send(orjson.dumps({"method": "SUBSCRIPTION", "params": refused}).decode())
            got.append(orjson.loads(await ws.recv()))
            await ws.send(orjson.dumps({"method": "UNSUBSCRIPTION", "params": [f"{TRADE}@BTCUSDT"]}).decode())
            got.append(orjson.loads(await ws.recv()))
        return got

    ack, first, pong, refused, unsub = asyncio.run(run())
    assert ack == {"id": 0, "code": 0, "msg": f"{TRADE}@BTCUSDT"}
    x = get_exchange("mexc")
    assert isinstance(first, bytes) and isinstance(x, MexcExchange)
    push = orjson.loads(x.decode_binary(first) or "")
    assert push["publicAggreDeals"]["deals"][0]["tradeId"] == "731579883561406468X1_731579883561406469X1"
    assert pong == {"id": 0, "code": 0, "msg": "PONG"}
    assert refused["msg"].startswith(f"Not Subscribed successfully! [{TRADE}@XYZUSDT,spot@public.kline")
    assert [(e.kind, e.symbol) for e in x.control_events(orjson.dumps(refused).decode())] == [
        (SUB_ERROR, "XYZUSDT"), (SUB_ERROR, "BTCUSDT")]  # fmt: skip
    assert unsub == {"id": 0, "code": 0, "msg": f"{TRADE}@BTCUSDT"}


def test_replay_serves_the_depth_snapshot_it_keeps() -> None:
    """Before any push beyond it, the recorded reply; the symbol unknown: MEXC's -1121."""
    import httpx

    async def run() -> tuple[Any, Any]:
        async with ReplayServer([CAPTURE], speed=0) as server, httpx.AsyncClient() as client:
            ok = await client.get(f"{server.rest_base}/api/v3/depth", params={"symbol": "ETHUSDT", "limit": "3"})
            bad = await client.get(f"{server.rest_base}/api/v3/depth", params={"symbol": "XYZUSDT"})
            return ok.json(), (bad.status_code, bad.json())

    ok, bad = asyncio.run(run())
    assert ok["lastUpdateId"] == 4410772003 and len(ok["bids"]) == len(ok["asks"]) == 3
    assert ok["bids"][0] == ["3310.49", "0.12500000"]
    assert bad == (400, {"code": -1121, "msg": "Invalid symbol."})
