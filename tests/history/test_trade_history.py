"""REST trade history against the replay of real recordings: exactly the recorded trades of a span, the same
normalized rows as their live frames, and ``proven`` right at the span's ends, past the end of the recording,
before its start and around a missing id."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import math
from pathlib import Path

import orjson
import polars as pl
import pytest
from _history_util import (
    COINM,
    FUTURES_AGG,
    MS,
    OKX,
    SAME,
    SPOT,
    USDM,
    Recorded,
    fetch_all,
    paths,
    raw_rows,
    recorded,
    run,
)
from websockets.asyncio.client import connect

from mdplatform.exchanges import BinanceExchange, HistoryPage, OkxExchange, get_exchange
from mdplatform.exchanges.binance._history import BinanceTradeHistory
from mdplatform.exchanges.okx._history import OkxTradeHistory
from mdplatform.history import RestClient, RestError
from mdplatform.replay import ReplayServer


def _binance(xid: str) -> BinanceExchange:
    x = get_exchange(xid)
    assert isinstance(x, BinanceExchange)
    return x


def _records(pages: list[HistoryPage]) -> list[dict[str, object]]:
    return [dict(r) for page in pages for r in page.records]


def _in_span(trades: tuple[Recorded, ...], start_ns: int, end_ns: int) -> list[Recorded]:
    return [t for t in trades if start_ns <= t.time_ms * MS < end_ns]


def _same_rows(
    exchange: BinanceExchange | OkxExchange, channel: str, symbol: str, pages: list[HistoryPage], live: list[Recorded]
) -> None:
    """The pages' records, stored as ``encode`` payloads, normalize to exactly the rows of their live frames."""
    history = exchange.trade_history(channel)
    assert history is not None
    payloads = [history.encode(page.records) for page in pages if page.records]
    rest, rest_rejects = exchange.normalize_trades_with_rejects(raw_rows(exchange, channel, symbol, payloads))
    frames = list(dict.fromkeys(t.frame for t in live))
    wire, wire_rejects = exchange.normalize_trades_with_rejects(raw_rows(exchange, channel, symbol, frames))
    assert rest_rejects.height == wire_rejects.height == 0
    wire = wire.filter(pl.col("trade_id").is_in(rest.get_column("trade_id").to_list()))
    assert rest.height == len(live) == wire.height
    assert rest.select(SAME).sort("trade_id").equals(wire.select(SAME).sort("trade_id"))


@pytest.mark.parametrize(
    ("names", "xid", "symbol", "start_ms", "span_s"),
    [
        (SPOT, "binance", "BTCUSDT", 1_723_161_300_000, 100),
        (USDM, "binance-usdm", "BTCUSDT", 1_723_161_400_000, 40),
        (COINM, "binance-coinm", "BTCUSD_PERP", 1_723_161_500_000, 150),
    ],
)
def test_trade_history_returns_exactly_the_recorded_trades(
    shared_data: Path, names: tuple[str, ...], xid: str, symbol: str, start_ms: int, span_s: int
) -> None:
    exchange = _binance(xid)
    history = exchange.trade_history("trade")
    assert isinstance(history, BinanceTradeHistory)
    trades = recorded(shared_data, names, "trade")[symbol]
    start, end = start_ms * MS + 123_456, (start_ms + span_s * 1000) * MS
    expected = _in_span(trades, start, end)
    before = [t for t in trades if t.time_ms * MS < start][-1]
    assert len(expected) > history.limit  # several pages
    path = history.spec.trades_path

    async def scenario() -> None:
        async with ReplayServer(paths(shared_data, names), verbose=False) as server, RestClient() as client:
            for after_id in (before.id, None):
                pages = await fetch_all(
                    history, client, symbol, start, end, base_url=server.rest_base, after_id=after_id
                )
                got = _records(pages)
                assert [r["id"] for r in got] == [t.id for t in expected]
                for record, trade in zip(got, expected, strict=True):
                    d = trade.data
                    assert (record["price"], record["qty"], record["time"], record["isBuyerMaker"]) == (
                        d["p"],
                        d["q"],
                        d["T"],
                        d["m"],
                    )
                assert [t for p in pages for t in p.times_ns] == [t.time_ms * MS for t in expected]
                # paged by contiguous ids from the trade right after the last one before the span
                data = [
                    p
                    for p in pages
                    if p.request.startswith(f"GET {path}?symbol={symbol}&fromId=")
                    and not p.request.endswith("&limit=1")
                ]
                assert data[0].request == f"GET {path}?symbol={symbol}&fromId={before.id + 1}&limit={history.limit}"
                assert len(data) == math.ceil((len(expected) + 1) / history.limit)
                assert all(p.channel == "trade" and p.symbol == symbol for p in pages)
                # proven grows page by page and ends at exactly the span asked for
                proven = [p.proven for p in data if p.proven is not None]
                assert proven[-1] == (start, end) == pages[-1].proven
                assert all(a[0] == start and a[1] <= b[1] for a, b in itertools.pairwise(proven))
                if after_id is not None:
                    assert pages == data  # no locating
                else:
                    # no aggTrade frames in these captures: located by bisecting historicalTrades ids
                    locate = pages[: len(pages) - len(data)]
                    assert locate and all(p.records == () and p.proven is None for p in locate)
                    assert all(p.request.endswith("&limit=1") for p in locate)
                    assert len(locate) <= 2 + math.ceil(math.log2(len(trades)))
                _same_rows(exchange, "trade", symbol, pages, expected)
            assert server.rest_throttled == 0 and client.stats.throttled == 0

    run(scenario)


def test_spans_reaching_past_either_end_of_the_recording(shared_data: Path) -> None:
    history = _binance("binance").trade_history("trade")
    assert isinstance(history, BinanceTradeHistory)
    trades = recorded(shared_data, SPOT, "trade")["BTCUSDT"]
    first, last = trades[0], trades[-1]

    async def scenario() -> None:
        async with ReplayServer(paths(shared_data, SPOT), verbose=False) as server, RestClient() as client:
            base = server.rest_base
            # past the end: the short page says the history ends at its last trade
            start = (last.time_ms - 30_000) * MS
            pages = await fetch_all(history, client, "BTCUSDT", start, start + 3_600 * 10**9, base_url=base)
            assert [r["id"] for r in _records(pages)] == [t.id for t in trades if t.time_ms * MS >= start]
            assert pages[-1].proven == (start, last.time_ms * MS + 1)
            # a trade id known before the recording: its successors are not served, the span is proven only
            # from the first trade the replay has (trades sharing its millisecond may be missing)
            start, end = (first.time_ms - 60_000) * MS, (first.time_ms + 20_000) * MS
            pages = await fetch_all(history, client, "BTCUSDT", start, end, base_url=base, after_id=first.id - 50)
            assert pages[0].request.endswith(f"&fromId={first.id - 49}&limit=1000")
            assert [r["id"] for r in _records(pages)] == [t.id for t in _in_span(trades, start, end)]
            assert pages[-1].proven == (first.time_ms * MS + 1, end)
            # located before the recording: the history's first trade is already in the span, what came
            # before it is unknown
            pages = await fetch_all(history, client, "BTCUSDT", start, end, base_url=base)
            assert [r["id"] for r in _records(pages)] == [t.id for t in _in_span(trades, start, end)]
            assert pages[-1].proven == (first.time_ms * MS + 1, end)
            # a span before any recorded trade proves nothing; one after every trade is not proven either
            pages = await fetch_all(history, client, "BTCUSDT", start, first.time_ms * MS, base_url=base)
            assert _records(pages) == [] and pages[-1].proven is None
            late = (last.time_ms + 1) * MS
            pages = await fetch_all(history, client, "BTCUSDT", late, late + 10**9, base_url=base)
            assert _records(pages) == [] and pages[-1].proven is None
            # an empty span asks nothing
            assert await fetch_all(history, client, "BTCUSDT", late, late, base_url=base) == []

    run(scenario)


def test_a_missing_trade_id_proves_only_up_to_before_it(shared_data: Path, tmp_path: Path) -> None:
    """A capture with one trade line removed: the history has a hole there, and the fetch stops at it."""
    source = paths(shared_data, SPOT)[0]
    trades = recorded(shared_data, SPOT, "trade")["BTCUSDT"]
    hole = trades[3000]
    capture = tmp_path / "btcusdt_hole.gz"
    with gzip.open(source, "rt") as src, gzip.open(capture, "wt") as dst:
        for line in src:
            if f'"t":{hole.id},' not in line:
                dst.write(line)
    prev = trades[2999]
    start, end = (trades[2000].time_ms + 1) * MS, trades[4000].time_ms * MS
    history = BinanceTradeHistory("spot", "trade", limit=400)

    async def scenario() -> None:
        async with ReplayServer([capture], verbose=False) as server, RestClient() as client:
            pages = await fetch_all(history, client, "BTCUSDT", start, end, base_url=server.rest_base)
        got = [r["id"] for r in _records(pages)]
        assert got == [t.id for t in _in_span(trades, start, end) if t.id < hole.id]
        # the trades before the hole may share the last one's millisecond with the missing one
        assert pages[-1].proven == (start, prev.time_ms * MS)

    run(scenario)


def test_agg_trade_history_from_recorded_agg_trades(shared_data: Path) -> None:
    exchange = _binance("binance-usdm")
    agg = recorded(shared_data, FUTURES_AGG, "aggTrade")["SUSHIUSDT"]
    assert len(agg) == 40 and [a.id for a in agg] == list(range(agg[0].id, agg[0].id + 40))
    start, end = agg[5].time_ms * MS, agg[35].time_ms * MS
    expected = _in_span(agg, start, end)
    history = BinanceTradeHistory("usdm", "aggTrade", limit=7)

    async def scenario() -> None:
        async with ReplayServer(paths(shared_data, FUTURES_AGG), verbose=False) as server, RestClient() as client:
            for after_id in (agg[4].id, None):
                pages = await fetch_all(
                    history, client, "SUSHIUSDT", start, end, base_url=server.rest_base, after_id=after_id
                )
                got = _records(pages)
                assert got == [{k: t.data[k] for k in ("a", "p", "q", "f", "l", "T", "m")} for t in expected]
                assert pages[-1].proven == (start, end)
                if after_id is None:
                    # located with aggTrades?startTime (its first aggregate at/after start)
                    assert pages[0].request == (
                        f"GET /fapi/v1/aggTrades?symbol=SUSHIUSDT&startTime={start // MS}&limit=1"
                    )
                    assert pages[0].records == () and pages[0].proven is None
                    pages = pages[1:]
                assert pages[0].request == f"GET /fapi/v1/aggTrades?symbol=SUSHIUSDT&fromId={agg[5].id}&limit=7"
                assert len(pages) == math.ceil((len(expected) + 1) / 7)
                _same_rows(exchange, "aggTrade", "SUSHIUSDT", pages, expected)
            # a capture without aggTrade frames: an error that says so, never aggregates made up from trades
            async with ReplayServer(paths(shared_data, USDM), verbose=False) as hft:
                with pytest.raises(RestError) as err:
                    await fetch_all(history, client, "BTCUSDT", start, end, base_url=hft.rest_base)
                assert err.value.status == 400 and "no aggTrade frames of BTCUSDT" in err.value.message

    run(scenario)


def test_okx_history_walks_back_from_the_end(shared_data: Path) -> None:
    exchange = get_exchange("okx")
    assert isinstance(exchange, OkxExchange)
    trades = recorded(shared_data, OKX, "trades")["BTC-USDT"]
    assert len(trades) == 69
    start, end = trades[10].time_ms * MS, trades[60].time_ms * MS + 1
    expected = _in_span(trades, start, end)
    history = OkxTradeHistory(limit=10)

    async def scenario() -> None:
        async with ReplayServer(paths(shared_data, OKX), verbose=False) as server, RestClient() as client:
            base = server.rest_base
            pages = await fetch_all(history, client, "BTC-USDT", start, end, base_url=base)
            assert pages[0].request == (
                f"GET /api/v5/market/history-trades?instId=BTC-USDT&type=2&after={trades[60].time_ms + 1}&limit=10"
            )
            oldest = [min(int(r["tradeId"]) for r in p.records) for p in pages[:-1]]
            assert [p.request.rsplit("after=", 1)[1] for p in pages[1:]] == [f"{i}&limit=10" for i in oldest]
            # each page oldest first; the pages walk back in time
            for page in pages:
                assert list(page.times_ns) == sorted(page.times_ns)
                assert [int(r["tradeId"]) for r in page.records] == sorted(int(r["tradeId"]) for r in page.records)
            got = sorted(_records(pages), key=lambda r: int(str(r["tradeId"])))
            assert got == [t.data for t in expected]
            assert pages[-1].proven == (start, end)
            assert all(p.proven is None or p.proven[1] == end for p in pages)
            _same_rows(exchange, "trades", "BTC-USDT", pages, expected)
            # after_id means nothing on OKX
            again = await fetch_all(history, client, "BTC-USDT", start, end, base_url=base, after_id=12345)
            assert [p.records for p in again] == [p.records for p in pages]
            # before the recording: the history ends (an empty page) at its oldest trade
            early = (trades[0].time_ms - 60_000) * MS
            pages = await fetch_all(history, client, "BTC-USDT", early, end, base_url=base)
            assert pages[-1].records == () and pages[-1].request.endswith(f"type=1&after={trades[0].id}&limit=10")
            assert pages[-1].proven == (trades[0].time_ms * MS, end)
            assert sorted(int(str(r["tradeId"])) for r in _records(pages)) == [t.id for t in trades[:61]]

    run(scenario)


def test_okx_encode_reads_back_like_a_push(shared_data: Path) -> None:
    exchange = get_exchange("okx")
    history = exchange.trade_history("trades")
    assert isinstance(history, OkxTradeHistory) and exchange.trade_history("books") is None
    items = [t.data for t in recorded(shared_data, OKX, "trades")["BTC-USDT"][:5]]
    payload = orjson.loads(history.encode(items))
    assert payload["code"] == "0" and payload["msg"] == "" and "arg" not in payload
    assert [d["tradeId"] for d in payload["data"]] == [d["tradeId"] for d in reversed(items)]  # newest first
    trades, rejects = exchange.normalize_trades_with_rejects(
        raw_rows(exchange, "trades", "BTC-USDT", [history.encode(items), '{"code":"0","msg":"","data":[]}'])
    )
    assert trades.height == 5 and rejects.get_column("reason").to_list() == ["no trades in data"]


def test_binance_rest_payloads_reject_bad_records(shared_data: Path) -> None:
    x = _binance("binance")
    history = x.trade_history("trade")
    assert history is not None and x.trade_history("depth") is None
    good = {"id": 7, "price": "61837.63000000", "qty": "0.02000000", "time": 1723161255342, "isBuyerMaker": True}
    payloads = [
        history.encode([good]),
        '[{"id":8,"price":61837.63,"qty":"0.02","time":1723161255342,"isBuyerMaker":true}]',
        "[]",
        "[null]",
        '[{"price":"1","qty":"1","time":1723161255342,"isBuyerMaker":true}]',
        '[{"id":9,"price":"1","qty":"1","time":1723161255342}]',
        "[1,2",
    ]
    trades, rejects = x.normalize_trades_with_rejects(raw_rows(x, "trade", "BTCUSDT", payloads))
    assert trades.get_column("trade_id").to_list() == ["7"]
    assert trades.row(0, named=True)["symbol"] == "BTC-USDT"
    assert rejects.get_column("reason").to_list() == [
        "price or size is a JSON number, not a decimal string",
        "no trades in the REST reply",
        "null trade in the REST reply",
        "historicalTrades record lacks its id",
        "invalid side",
        "payload is not a REST trade list in the documented layout",
    ]
    assert rejects.get_column("payload").to_list() == payloads[1:]
    agg = [
        {"a": 1, "p": "1.5", "q": "2", "f": 10, "l": 12, "T": 1723161255342, "m": False},
        {"a": 2, "p": "1.5", "q": "2", "f": 13, "l": 11, "T": 1723161255342, "m": False},
        {"p": "1.5", "q": "2", "f": 14, "l": 14, "T": 1723161255342, "m": False},
    ]
    trades, rejects = x.normalize_trades_with_rejects(raw_rows(x, "aggTrade", "BTCUSDT", [orjson.dumps(agg).decode()]))
    assert trades.select("trade_id", "fills", "seq_id", "fill_first", "fill_last", "side").rows() == [
        ("10-12", 3, 1, 10, 12, "buy")
    ]
    assert rejects.get_column("reason").to_list() == [
        "aggTrades record's last trade id l=11 is before its first f=13",
        "aggTrades record lacks its id a or its trade ids f/l",
    ]


def test_history_serves_what_the_cursor_passed_once_a_client_subscribed(shared_data: Path) -> None:
    history = _binance("binance").trade_history("trade")
    trades = recorded(shared_data, SPOT, "trade")["BTCUSDT"]
    start, end = trades[0].time_ms * MS, (trades[-1].time_ms + 1) * MS

    async def scenario() -> None:
        async with ReplayServer(paths(shared_data, SPOT), verbose=False) as server, RestClient() as client:
            assert history is not None and server.protocol is not None
            base = server.rest_base
            # nobody subscribed yet: the whole recording is the past
            pages = await fetch_all(history, client, "BTCUSDT", start, end, base_url=base, after_id=trades[0].id - 1)
            assert len(_records(pages)) == len(trades)
            async with connect(f"{server.ws_url}/stream?streams=btcusdt@trade", max_queue=None) as ws:
                for _ in range(300):
                    await ws.recv()
            while server.clients:  # the cursor pauses once nobody is subscribed
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            passed = server.protocol.passed_ns
            pages = await fetch_all(history, client, "BTCUSDT", start, end, base_url=base, after_id=trades[0].id - 1)
            assert server.protocol.passed_ns == passed
            served = [t for t in trades if t.recv_ns <= passed]
            assert 300 <= len(served) < len(trades)
            assert [r["id"] for r in _records(pages)] == [t.id for t in served]
            # the replay's history ends at the cursor: proven up to its last trade
            assert pages[-1].proven == (start, served[-1].time_ms * MS + 1)

    run(scenario)


def test_rebased_history_is_shifted_like_the_frames(shared_data: Path) -> None:
    history = _binance("binance-coinm").trade_history("trade")
    trades = recorded(shared_data, COINM, "trade")["BTCUSD_PERP"]

    async def scenario() -> None:
        async with (
            ReplayServer(paths(shared_data, COINM), rebase=True, verbose=False) as server,
            RestClient() as client,
        ):
            assert history is not None
            shift_ms = server.shift_ns // MS
            assert shift_ms > 0
            start = (trades[100].time_ms + shift_ms) * MS
            end = (trades[400].time_ms + shift_ms) * MS
            pages = await fetch_all(history, client, "BTCUSD_PERP", start, end, base_url=server.rest_base)
            got = _records(pages)
            expected = [t for t in trades if start <= (t.time_ms + shift_ms) * MS < end]
            assert trades[100] == expected[0] and len(expected) > 250
            assert [r["id"] for r in got] == [t.id for t in expected]
            assert [r["time"] for r in got] == [t.time_ms + shift_ms for t in expected]
            assert pages[-1].proven == (start, end)
            # COIN-M records carry baseQty (contracts x 100 USD / price), not quoteQty
            first = got[0]
            assert set(first) == {"id", "price", "qty", "baseQty", "time", "isBuyerMaker"}

    run(scenario)
