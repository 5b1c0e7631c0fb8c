"""KuCoin spot: wire format, token handshake, book sync, trades, REST history, replay protocol.

Real recordings: ``tests/data/kucoin/KUCOIN.ws.1.0.gz`` + ``KUCOIN.http.0.0.gz`` (cryptofeed sample data, 2021-04-25,
10 illiquid symbols, 30 s, licence beside them) for parsing, the book rules, tickers, taker side and candles. Today's
message shapes (topic first, level2 ``time`` in ms, numeric ``tradeId``, the ``bullet-public`` reply, acks and errors)
are built from KuCoin's documentation (https://www.kucoin.com/docs-new: "WebSocket / Base Info / Introduction", "Get
Public Token - Classic Spot/Margin", "Orderbook - Increment", "Trade", "Ticker", "Klines", "Get Trade Histories"),
where the test says so.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import orjson
import polars as pl
import pytest

from mdplatform.capture import detect_exchange, merge_captures
from mdplatform.contract import (
    GAP,
    SUB_ERROR,
    SUBSCRIBED,
    SYNCED,
    UNSUBSCRIBED,
    Negotiating,
    ReplayClient,
    StreamEvent,
    Subscription,
)
from mdplatform.exchanges._depth_sync import DiffVerdict
from mdplatform.exchanges.kucoin import (
    PING,
    KucoinExchange,
    KucoinNegotiationError,
    KucoinTradeHistory,
)
from mdplatform.exchanges.kucoin._replay import KucoinReplay
from mdplatform.history import RestClient
from mdplatform.replay import ReplayServer
from mdplatform.schemas import RAW

DATA = Path(__file__).parents[1] / "data" / "kucoin"
WS, HTTP = DATA / "KUCOIN.ws.1.0.gz", DATA / "KUCOIN.http.0.0.gz"
X = KucoinExchange()


def _raw(rows: list[tuple[str, str]], symbol: str = "") -> pl.DataFrame:
    """Lake raw rows (channel, payload) of kucoin."""
    n = len(rows)
    return pl.DataFrame(
        {
            "recv_ts": [1_700_000_000_000_000_000 + i for i in range(n)],
            "exchange": ["kucoin"] * n,
            "channel": [c for c, _ in rows],
            "symbol": [symbol] * n,
            "conn_id": ["c"] * n,
            "seq": list(range(1, n + 1)),
            "payload": [p for _, p in rows],
        }
    ).cast(RAW)  # type: ignore[arg-type]


def _recording() -> list[Any]:
    return list(merge_captures([WS, HTTP]))


# -- the recording: book, tickers, taker side, candles -----------------------------------------------------------


def test_recording_snapshot_and_3805_diffs_apply_without_a_gap_and_tickers_equal_the_book() -> None:
    builders: dict[str, Any] = {}
    checked = equal = 0
    stale = 0
    for f in _recording():
        if f.kind == "rest":
            b = builders.setdefault(f.symbol, X.book_builder(f.symbol, keep_raw=True))
            assert b.on_raw("depthSnapshot", f.frame) == StreamEvent(SYNCED, "level2", f.symbol)
            continue
        if f.kind != "ws":
            continue
        channel, symbol = X.route(f.frame)
        if channel == "level2":
            b = builders.setdefault(symbol, X.book_builder(symbol, keep_raw=True))
            verdict = b.on_diff(f.frame)
            assert verdict != DiffVerdict.GAP
            stale += verdict == DiffVerdict.STALE
        elif channel == "ticker" and symbol in builders and builders[symbol].valid:
            b, d = builders[symbol], orjson.loads(f.frame)["data"]
            if int(d["sequence"]) == b.sequence:
                checked += 1
                (bid,), (ask,) = b.book.raw_bids(1), b.book.raw_asks(1)
                equal += (bid, ask) == ((d["bestBid"], d["bestBidSize"]), (d["bestAsk"], d["bestAskSize"]))
    assert sum(b.applied for b in builders.values()) == 3805
    # the other 48 of the 3,853 pushes are in the snapshots already: 39 came after the snapshot was asked for
    # (stale), 9 were buffered before it and dropped when it came
    assert sum(b.gaps for b in builders.values()) == 0 and stale == 39
    assert {s: b.state for s, b in builders.items()} == dict.fromkeys(builders, "synced")
    assert len(builders) == 9  # LTX-USDT sent no level2 push (and has no snapshot)
    assert builders["BCHSV-USDT"].applied == 2342
    # price and size of best bid and ask, exactly as strings, at every ticker carrying the book's sequence
    assert (checked, equal) == (766, 766)


def test_match_side_is_the_taker_side() -> None:
    """A trade whose sequence is beyond the book's when it arrives meets the book before it: a "buy" trades at the
    best ask, a "sell" at the best bid (KuCoin docs "Get Trade Histories": the side is the taker order's)."""
    builders: dict[str, Any] = {}
    seen = []
    for f in _recording():
        if f.kind == "rest":
            builders.setdefault(f.symbol, X.book_builder(f.symbol, keep_raw=True)).on_snapshot(f.frame)
        elif f.kind == "ws":
            channel, symbol = X.route(f.frame)
            if channel == "level2":
                builders.setdefault(symbol, X.book_builder(symbol, keep_raw=True)).on_diff(f.frame)
            elif channel == "match":
                d, b = orjson.loads(f.frame)["data"], builders[symbol]
                if int(d["sequence"]) > b.sequence:
                    best = b.book.raw_asks(1) if d["side"] == "buy" else b.book.raw_bids(1)
                    seen.append((symbol, d["side"], d["price"] == best[0][0]))
    assert seen == [
        ("DAPPT-BTC", "buy", True),
        ("BCHSV-USDT", "sell", True),
        ("BCHSV-USDT", "sell", True),
        ("BCHSV-USDT", "sell", True),
    ]


def test_candles_from_trades_agree_with_kucoin_candles() -> None:
    """Each KuCoin candle message ``[start s, open, close, high, low, volume, turnover]`` (at its time T) against the
    candle of the recorded trades of that minute up to T. BCHSV-USDT 19:19 began after the recording did: fully
    recorded. For the others KuCoin's own volume equals the recorded trades' (so none was missed) and the whole candle
    agrees; the flat 0-volume minute has no trade."""
    frames = [f for f in _recording() if f.kind == "ws"]
    trades = X.normalize_trades(_raw([(X.route(f.frame)[0], f.frame) for f in frames]))
    start_ns = frames[0].recv_ns
    assert trades.height == 18
    results = []
    for f in frames:
        if X.route(f.frame)[0] != "candles":
            continue
        d = orjson.loads(f.frame)["data"]
        minute = int(d["candles"][0]) * 10**9
        mine = trades.filter(
            (pl.col("symbol") == d["symbol"])
            & (pl.col("ts").dt.epoch("ns") >= minute)
            & (pl.col("ts").dt.epoch("ns") < minute + 60 * 10**9)
            & (pl.col("ts").dt.epoch("ns") <= int(d["time"]))
        ).sort("ts")
        _, o, c, h, lo, vol, turnover = (Decimal(v) for v in d["candles"])
        if vol == 0:
            assert mine.height == 0
            results.append((d["symbol"], "flat"))
            continue
        built = (
            mine["price"][0],
            mine["price"][-1],
            mine["price"].max(),
            mine["price"].min(),
            mine["size"].sum(),
            sum(p * s for p, s in mine.select("price", "size").iter_rows()),
        )
        assert built == (o, c, h, lo, vol, turnover)
        results.append((d["symbol"], "whole minute" if minute >= start_ns else "same volume"))
    assert results == [
        ("DAPPT-BTC", "flat"),
        ("DAPPT-BTC", "same volume"),
        ("DAPPT-BTC", "same volume"),
        ("BCHSV-USDT", "same volume"),
        ("FET-BTC", "same volume"),
        ("BCHSV-USDT", "whole minute"),
    ]


def test_recording_trades_normalize_exactly() -> None:
    frames = [f.frame for f in _recording() if f.kind == "ws" and X.route(f.frame)[0] == "match"]
    trades, rejects = X.normalize_trades_with_rejects(_raw([("match", f) for f in frames]))
    assert rejects.height == 0 and trades.height == 18
    first = trades.row(0, named=True)
    assert (first["symbol"], first["trade_id"], first["side"]) == ("DAPPT-BTC", "1612701563869", "buy")
    assert (first["price"], first["size"], first["fills"]) == (Decimal("0.0000001117"), Decimal("81.8814"), 1)
    assert trades.select(pl.col("ts").dt.epoch("ns")).row(0)[0] == 1619378327739050725
    assert trades["seq_id"].null_count() == 18


# -- wire format -----------------------------------------------------------------------------------------------


#: today's layouts, from KuCoin's documentation examples ("Trade", "Orderbook - Increment", "Ticker", "Klines")
DOC_MATCH = (
    '{"topic":"/market/match:BTC-USDT","type":"message","subject":"trade.l3match","data":{"makerOrderId":'
    '"671b5007389355000701b1d3","price":"67523","sequence":"11067996711960577","side":"buy","size":"0.003","symbol":'
    '"BTC-USDT","takerOrderId":"671b50161777ff00074c168d","time":"1729843222921000000","tradeId":"11067996711960577",'
    '"type":"match"}}'
)
DOC_LEVEL2 = (
    '{"topic":"/market/level2:BTC-USDT","type":"message","subject":"trade.l2update","data":{"changes":{"asks":'
    '[["67993.3","1.21427407","14701689783"]],"bids":[]},"sequenceEnd":14701689783,"sequenceStart":14701689783,'
    '"symbol":"BTC-USDT","time":1729816425625}}'
)
DOC_TICKER = (
    '{"type":"message","topic":"/market/ticker:BTC-USDT","subject":"trade.ticker","data":{"sequence":"1545896668986",'
    '"price":"0.08","size":"0.011","bestAsk":"0.08","bestAskSize":"0.18","bestBid":"0.049","bestBidSize":"0.036",'
    '"time":1704873323416}}'
)
DOC_CANDLE = (
    '{"topic":"/market/candles:BTC-USDT_1min","type":"message","subject":"trade.candles.update","data":{"symbol":'
    '"BTC-USDT","candles":["1729839600","67644.9","67437.6","67724.8","67243.8","44.88321441","3027558.991928447"],'
    '"time":1729842192785164840}}'
)


def test_route_and_exchange_time_in_both_layouts() -> None:
    assert X.route(DOC_MATCH) == ("match", "BTC-USDT")
    assert X.route(DOC_LEVEL2) == ("level2", "BTC-USDT")
    assert X.route(DOC_TICKER) == ("ticker", "BTC-USDT")
    assert X.route(DOC_CANDLE) == ("candles", "BTC-USDT")
    # the compiled receive path: a frame starting with the prefix is routed by its topic alone, as route() does
    prefix, quotes = X.route_prefix
    for frame in (DOC_MATCH, DOC_LEVEL2, DOC_CANDLE):
        assert frame.startswith(prefix) and quotes == 1
        key = frame[len(prefix) : frame.index('"', len(prefix))]
        assert X.route_key(key) == X.route(frame)
    for control in ('{"id":"hQvf8jkno","type":"welcome"}', '{"id":"1","type":"ack"}', '{"id":"ping","type":"pong"}'):
        assert X.route(control) == ("control", "")
        assert X.exchange_time(control) is None
    # units: match and candles ns, level2 and ticker ms
    assert X.exchange_time(DOC_MATCH) == 1729843222921000000
    assert X.exchange_time(DOC_CANDLE) == 1729842192785164840
    assert X.exchange_time(DOC_LEVEL2) == 1729816425625 * 10**6
    assert X.exchange_time(DOC_TICKER) == 1704873323416 * 10**6
    # the 2021 recording: data first, topic last; every frame's time the same one by one and vectorized
    frames = [f.frame for f in merge_captures([WS]) if f.kind == "ws"]
    routes = {X.route(f) for f in frames}
    assert {c for c, _ in routes} == {"control", "level2", "match", "ticker", "candles"}
    assert len({s for c, s in routes if c == "ticker"}) == 9  # LTX-USDT: not one push in 30 s
    one_by_one = [X.exchange_time(f) for f in frames]
    assert X.exchange_times(pl.Series(frames)).to_list() == one_by_one
    assert sum(t is None for t in one_by_one) == 14 + 3853  # control frames, and 2021's level2 had no time


def test_subscribe_messages_acks_and_errors() -> None:
    x = KucoinExchange()
    symbols = [f"S{i}-USDT" for i in range(150)]
    subs = [Subscription(c, s) for c in ("level2", "candles") for s in symbols]
    msgs = [orjson.loads(m) for m in x.subscribe_messages(subs)]
    assert [len(m["topic"].split(",")) for m in msgs] == [100, 50, 100, 50]  # at most 100 symbols per topic
    assert msgs[0]["topic"].startswith("/market/level2:S0-USDT,S1-USDT,")
    assert msgs[2]["topic"].startswith("/market/candles:S0-USDT_1min,S1-USDT_1min,")
    assert all(m["type"] == "subscribe" and m["response"] is True and m["privateChannel"] is False for m in msgs)
    assert len({m["id"] for m in msgs}) == 4
    acked = x.control_events(orjson.dumps({"id": msgs[1]["id"], "type": "ack"}).decode())
    assert acked == [StreamEvent(SUBSCRIBED, "level2", s) for s in symbols[100:]]
    candle_ack = x.control_events(orjson.dumps({"id": msgs[3]["id"], "type": "ack"}).decode())
    assert candle_ack[0] == StreamEvent(SUBSCRIBED, "candles", "S100-USDT")
    (unsub,) = [orjson.loads(m) for m in x.unsubscribe_messages([Subscription("match", "BTC-USDT")])]
    assert unsub["type"] == "unsubscribe" and unsub["topic"] == "/market/match:BTC-USDT"
    assert x.control_events(f'{{"id":"{unsub["id"]}","type":"ack"}}') == [
        StreamEvent(UNSUBSCRIBED, "match", "BTC-USDT")
    ]
    limit = "exceed max subscription count limitation of 400 per session"
    refused = orjson.dumps({"id": msgs[0]["id"], "type": "error", "code": 509, "data": limit}).decode()
    events = x.control_events(refused)
    assert len(events) == 100 and events[0] == StreamEvent(
        SUB_ERROR, "level2", "S0-USDT", "509: exceed max subscription count limitation of 400 per session"
    )
    # a recording's ack (2021: every request id 1) names nothing this process asked for; pongs and welcome: nothing
    assert x.control_events('{"id":"1","type":"ack"}') == []
    assert x.control_events('{"id":"ping","type":"pong"}') == []
    with pytest.raises(ValueError, match="unsupported channel"):
        x.subscribe_messages([Subscription("level3", "BTC-USDT")])
    assert x.capabilities.streams_per_connection == 400 and x.capabilities.subscribe_ack


def test_negotiated_connection_from_the_bullet_public_reply() -> None:
    """The reply of "Get Public Token - Classic Spot/Margin" (documentation example)."""
    assert isinstance(X, Negotiating)
    body = orjson.dumps(
        {
            "code": "200000",
            "data": {
                "token": "2neAiuYvAU61ZDXANAGAsiL4-iAExhsBXZxftpOeh_55i3Ysy2q2LEsEWU64mdzUOPusi34M_wGoSf7iNyEWJ4a",
                "instanceServers": [
                    {
                        "endpoint": "wss://ws-api-spot.kucoin.com/",
                        "encrypt": True,
                        "protocol": "websocket",
                        "pingInterval": 18000,
                        "pingTimeout": 10000,
                    }
                ],
            },
        }
    )
    told = X.negotiated(body)
    head, _, connect_id = told.url.partition("&connectId=")
    assert (
        head
        == "wss://ws-api-spot.kucoin.com/?token=2neAiuYvAU61ZDXANAGAsiL4-iAExhsBXZxftpOeh_55i3Ysy2q2LEsEWU64mdzUOPusi34M_wGoSf7iNyEWJ4a"
    )
    assert len(connect_id) == 32 and X.negotiated(body).url != told.url  # a new connectId per connection
    assert told.keepalive is not None
    assert (told.keepalive.client_ping, told.keepalive.interval_s, told.keepalive.idle_timeout_s) == (PING, 18.0, 28.0)
    assert orjson.loads(PING) == {"id": "ping", "type": "ping"}
    for bad in (
        b'{"code":"400100","msg":"x"}',
        b"<html>",
        b'{"code":"200000","data":{"token":"t","instanceServers":[]}}',
    ):
        with pytest.raises(KucoinNegotiationError):
            X.negotiated(bad)


# -- book sync -------------------------------------------------------------------------------------------------


def _diff(symbol: str, start: int, end: int, asks: list[list[str]], bids: list[list[str]] | None = None) -> str:
    return orjson.dumps(
        {
            "topic": f"/market/level2:{symbol}",
            "type": "message",
            "subject": "trade.l2update",
            "data": {
                "changes": {"asks": asks, "bids": bids or []},
                "sequenceEnd": end,
                "sequenceStart": start,
                "symbol": symbol,
                "time": 1729816425625,
            },
        }
    ).decode()


def _snapshot(seq: int, bids: list[list[str]], asks: list[list[str]]) -> str:
    return orjson.dumps(
        {"code": "200000", "data": {"time": 1729816425000, "sequence": str(seq), "bids": bids, "asks": asks}}
    ).decode()


def test_builder_follows_the_documented_example() -> None:
    """ "Orderbook - Increment": a snapshot at sequence 16, then a push whose changes at sequences 15 and 16 are
    ignored, 19 removes 3988.61 and 18 sets 3988.50 to 44."""
    b = X.book_builder("BTC-USDT", keep_raw=True)
    assert (
        b.on_raw(
            "level2",
            _diff(
                "BTC-USDT",
                15,
                19,
                [["3988.59", "3", "16"], ["3988.61", "0", "19"], ["3988.62", "8", "15"]],
                [["3988.50", "44", "18"]],
            ),
        )
        is None
    )
    snap = _snapshot(
        16,
        [["3988.51", "56"], ["3988.50", "15"], ["3988.49", "100"], ["3988.48", "10"]],
        [["3988.62", "8"], ["3988.61", "32"], ["3988.60", "47"], ["3988.59", "3"]],
    )
    assert b.on_raw("depthSnapshot", snap) == StreamEvent(SYNCED, "level2", "BTC-USDT")
    assert b.book.raw_asks() == [("3988.59", "3"), ("3988.60", "47"), ("3988.62", "8")]
    assert b.book.raw_bids() == [("3988.51", "56"), ("3988.50", "44"), ("3988.49", "100"), ("3988.48", "10")]
    assert b.sequence == 19 and b.book.ts == 1729816425625 * 10**6
    # a price "0" change moves the sequence only; a push continuing it applies; one skipping a sequence is a gap
    assert b.on_raw("level2", _diff("BTC-USDT", 20, 20, [["0", "0", "20"]])) is None
    assert b.on_raw("level2", _diff("BTC-USDT", 21, 21, [["3988.60", "0", "21"]])) is None
    assert b.book.raw_asks() == [("3988.59", "3"), ("3988.62", "8")]
    event = b.on_raw("level2", _diff("BTC-USDT", 23, 23, [["3988.7", "1", "23"]]))
    assert event == StreamEvent(
        GAP, "level2", "BTC-USDT", "sequenceStart=23 > previous sequenceEnd+1=22 (sequenceEnd=23)"
    )
    assert not b.valid
    # checkpoint/restore continue the chain
    c = X.book_builder("BTC-USDT")
    c.restore([("1", "2")], [("3", "4")], {"sequence": 30})
    assert c.valid and c.on_diff(_diff("BTC-USDT", 31, 31, [["3", "5", "31"]])) == DiffVerdict.APPLY


def test_session_gap_resyncs_that_symbol_only() -> None:
    x = KucoinExchange()
    s = x.new_session([Subscription("level2", "A-USDT"), Subscription("level2", "B-USDT")], "http://127.0.0.1:9/x")
    first = s.on_frame("level2", "A-USDT", _diff("A-USDT", 5, 6, []))
    assert first is not None and first.fetch_snapshot == (
        "A-USDT",
        "http://127.0.0.1:9/api/v1/market/orderbook/level2_100?symbol=A-USDT",
    )
    assert s.on_frame("level2", "B-USDT", _diff("B-USDT", 5, 6, [])) is not None
    for sym in ("A-USDT", "B-USDT"):
        done = s.on_snapshot(sym, _snapshot(5, [], []))
        assert done is not None and done.events == (StreamEvent(SYNCED, "level2", sym),)
    assert s.on_frame("level2", "A-USDT", _diff("A-USDT", 7, 7, [])) is None
    gap = s.on_frame("level2", "A-USDT", _diff("A-USDT", 9, 9, []))
    assert gap is not None and gap.fetch_snapshot is not None and gap.fetch_snapshot[0] == "A-USDT"
    assert gap.events == (
        StreamEvent(GAP, "level2", "A-USDT", "sequenceStart=9 > previous sequenceEnd+1=8 (sequenceEnd=9)"),
    )
    assert s.sync_state() == {"A-USDT": "resyncing", "B-USDT": "synced"}
    assert s.on_frame("level2", "B-USDT", _diff("B-USDT", 7, 7, [])) is None
    refused = s.on_snapshot("A-USDT", '{"code":"429000","msg":"Too Many Requests"}')
    assert refused is not None and refused.error is not None and "without a sequence" in refused.error
    with pytest.raises(ValueError, match="sequenceStart"):
        s.on_frame("level2", "A-USDT", '{"topic":"/market/level2:A-USDT","data":{}}')
    assert s.on_frame("match", "A-USDT", DOC_MATCH) is None


# -- trades ------------------------------------------------------------------------------------------------------


def test_normalize_documented_match_and_rejects() -> None:
    bad_number = DOC_MATCH.replace('"price":"67523"', '"price":67523')
    not_match = DOC_MATCH.replace('"type":"match"', '"type":"received"')
    bad_side = DOC_MATCH.replace('"side":"buy"', '"side":"taker"')
    rows = [("match", DOC_MATCH), ("match", bad_number), ("match", not_match), ("match", bad_side), ("match", "{]")]
    trades, rejects = X.normalize_trades_with_rejects(_raw(rows))
    (t,) = trades.iter_rows(named=True)
    assert (t["symbol"], t["trade_id"], t["side"], t["price"], t["size"]) == (
        "BTC-USDT",
        "11067996711960577",
        "buy",
        Decimal("67523"),
        Decimal("0.003"),
    )
    assert trades.select(pl.col("ts").dt.epoch("ns")).item() == 1729843222921000000
    assert rejects["reason"].to_list() == [
        "price or size is a JSON number, not a decimal string",
        "data.type is not match",
        "invalid side",
        "payload is not a match push in the documented layout",
    ]
    # other channels are not trades
    assert X.normalize_trades(_raw([("ticker", DOC_TICKER), ("candles", DOC_CANDLE)])).height == 0
    (ev,) = X.parse(DOC_TICKER)
    assert (ev.bid_price, ev.ask_size, ev.update_id) == (0.049, 0.18, 1545896668986)  # type: ignore[union-attr]


def test_rest_history_heals_within_the_last_100_trades_and_says_when_it_cannot(tmp_path: Path) -> None:
    """``GET /api/v1/market/histories`` served by the replay from the recorded match pushes (no client subscribed:
    the whole recording is the past)."""
    history = X.trade_history("match")
    assert isinstance(history, KucoinTradeHistory) and X.trade_history("ticker") is None
    recorded = [
        orjson.loads(f.frame)["data"]
        for f in merge_captures([WS])
        if f.kind == "ws" and '"/market/match:DAPPT-BTC"' in f.frame
    ]
    times = [int(d["time"]) for d in recorded]
    assert len(recorded) == 12

    async def fetch(start: int, end: int) -> list[Any]:
        async with ReplayServer([WS], speed=0, verbose=False) as server, RestClient() as client:
            return [p async for p in history.fetch(client, "DAPPT-BTC", start, end, base_url=server.rest_base)]

    # a gap inside the recorded trades: the reply reaches back before it, so the span is proven whole
    (page,) = asyncio.run(fetch(times[3], times[9]))
    assert page.proven == (times[3], times[9]) and page.request == "GET /api/v1/market/histories?symbol=DAPPT-BTC"
    assert [r["sequence"] for r in page.records] == [
        d["sequence"] for d in recorded if times[3] <= int(d["time"]) < times[9]
    ]
    # a gap reaching back before the oldest trade the history holds: only what it covers is proven
    (early,) = asyncio.run(fetch(times[0] - 10**9, times[-1] + 1))
    assert early.proven == (times[0] + 1, times[-1] + 1) and len(early.records) == 12
    # the records normalize like the live pushes of the same trades (trade id = sequence, taker side, ns time)
    payload = history.encode(early.records)
    rest_rows = X.normalize_trades(_raw([("match", payload)], "DAPPT-BTC"))
    live_rows = X.normalize_trades(
        _raw([("match", f.frame) for f in merge_captures([WS]) if '"/market/match:DAPPT-BTC"' in f.frame])
    )
    cols = ["symbol", "ts", "trade_id", "price", "size", "side"]
    assert rest_rows.select(cols).equals(live_rows.select(cols))


# -- replay protocol and capture detection -------------------------------------------------------------------------


def test_replay_speaks_kucoin() -> None:
    replay = X.replay_protocol()
    assert isinstance(replay, KucoinReplay)
    replay.base_url = "http://127.0.0.1:8123"
    status, body = replay.http_get("/api/v1/bullet-public", {}) or (0, b"")
    reply = orjson.loads(body)
    (server,) = reply["data"]["instanceServers"]
    assert status == 200 and reply["code"] == "200000" and reply["data"]["token"] == replay.token
    assert (server["endpoint"], server["pingInterval"], server["pingTimeout"]) == (
        "ws://127.0.0.1:8123/endpoint",
        18000,
        10000,
    )
    assert replay.rest_weight("/api/v1/bullet-public", {}) == 10 and replay.rest_weight("/nope", {}) is None

    client = ReplayClient(cast(Any, None), 1)  # the socket is the server's business, not the adapter's
    assert replay.on_open(client, "/endpoint", {"token": ["nope"]}) == [
        b'{"id":"00000001","type":"error","code":401,"data":"token is invalid"}'
    ]
    assert replay.on_open(client, "/endpoint", {"token": [replay.token], "connectId": ["abc"]}) == [
        b'{"id":"abc","type":"welcome"}'
    ]
    assert replay.on_message(client, PING) == [b'{"id":"ping","type":"pong"}']
    (sub,) = X.subscribe_messages([Subscription("level2", "BTC-USDT"), Subscription("level2", "ETH-USDT")])
    assert replay.on_message(client, sub) == [orjson.dumps({"id": orjson.loads(sub)["id"], "type": "ack"})]
    assert client.keys == {"level2:BTC-USDT", "level2:ETH-USDT"}
    many = orjson.dumps(
        {
            "id": 7,
            "type": "subscribe",
            "topic": "/market/match:" + ",".join(f"S{i}" for i in range(101)),
            "response": True,
        }
    )
    assert orjson.loads(replay.on_message(client, many.decode())[0])["code"] == 509
    assert (
        orjson.loads(replay.on_message(client, '{"id":8,"type":"subscribe","topic":"/market/nope:X"}')[0])["code"]
        == 404
    )
    assert detect_exchange(WS) == detect_exchange(HTTP) == "kucoin"
