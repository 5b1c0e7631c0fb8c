"""HTX (Huobi) market WebSocket: gzip frames, ping/pong, routes, acks, exact trades, MBP and high_freq book sync, the
replay adapter and the REST history.

Real recordings (cryptofeed sample data, LICENSE in tests/data/htx/ and the shared folder): ``HUOBI.ws.44.0.gz``
(2021-04-17, spot, copied to tests/data/htx/), ``HUOBI_SWAP.ws.1.0.gz`` (coin-margined swaps) and
``HUOBI_SWAP.ws.2.0.gz`` (USDT-margined swaps, 2022-02-19) from ../shared/data: gzip frames, ``depth.step0``
whole books, ``trade.detail``.
They prove: every frame decodes, every trade lands (counted from the frames themselves), spot trade ids run without a
hole per symbol, exponent-written numbers stay exact. They hold no candle (kline) messages, so the agreement of
candles with HTX's own cannot be shown on them (candles built from their trades: tests/e2e/test_htx_live.py).
Messages built from HTX's documentation (named in each test): MBP updates and ``rep`` refreshes ("Market By Price
(incremental update)"), swap high_freq depth ("[General] Subscribe Incremental Market Depth Data"), acks, errors,
pings ("Websocket Market Data / Introduction"); ``tests/data/htx/HTX_SWAP.ws.hf.gz`` (``make_capture.py``).
"""

from __future__ import annotations

import ast
import asyncio
import gzip
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from mdplatform.book import book_samples
from mdplatform.capture import detect_exchange, import_capture, read_capture
from mdplatform.contract import (
    GAP,
    SUB_ERROR,
    SUBSCRIBED,
    SYNCED,
    UNSUBSCRIBED,
    EventKind,
    HistoryPage,
    ReplayClient,
    StreamEvent,
    Subscription,
)
from mdplatform.exchanges.htx import (
    HtxBookBuilder,
    HtxExchange,
    HtxMbpBuilder,
    HtxStepBuilder,
    HtxTradeHistory,
    gunzip_text,
    gzip_text,
    plain_decimal,
)
from mdplatform.exchanges.htx._replay import HtxReplay
from mdplatform.history import RestClient
from mdplatform.lake import read_raw
from mdplatform.replay import ReplayServer

DATA = Path(__file__).resolve().parents[1] / "data" / "htx"
SPOT_REC = DATA / "HUOBI.ws.44.0.gz"
SWAP_HF = DATA / "HTX_SWAP.ws.hf.gz"
SPOT = HtxExchange("spot")
LINEAR = HtxExchange("linear")
COINM = HtxExchange("inverse")


def _frames(path: Path) -> list[tuple[int, str]]:
    """(recv_ns, text) of every received frame, decoded here independently of the exchange module."""
    return [
        (f.recv_ns, gzip.decompress(ast.literal_eval(f.frame)).decode()) for f in read_capture(path) if f.kind == "ws"
    ]


def _raw(rows: list[tuple[str, str, str]], exchange: str = "htx") -> pl.DataFrame:
    """Raw rows (lake layout) of (channel, symbol, payload)."""
    n = len(rows)
    return pl.DataFrame(
        {
            "recv_ts": pl.Series([1_618_678_070_000_000_000 + i for i in range(n)], dtype=pl.Int64).cast(
                pl.Datetime("ns", "UTC")
            ),
            "exchange": [exchange] * n,
            "channel": [r[0] for r in rows],
            "symbol": [r[1] for r in rows],
            "conn_id": ["c"] * n,
            "seq": list(range(1, n + 1)),
            "payload": [r[2] for r in rows],
        }
    )


# -- real recordings ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "exchange", "frames", "trades"),
    [
        ("HUOBI.ws.44.0.gz", "htx", 362, 73),
        ("HUOBI_SWAP.ws.1.0.gz", "htx-coinm", 1296, 8),
        ("HUOBI_SWAP.ws.2.0.gz", "htx-swap", 1617, 17),
    ],
)
def test_recordings_decode_and_every_trade_lands(
    shared_data: Path, tmp_path: Path, name: str, exchange: str, frames: int, trades: int
) -> None:
    path = shared_data / "cryptofeed-samples" / name
    assert detect_exchange(path) == exchange  # by the recorded connect URL's host and path
    recorded = _frames(path)
    trade_frames = [t for _, t in recorded if t.startswith('{"ch"') and ".trade.detail" in t]
    expected = sum(len(json.loads(t)["tick"]["data"]) for t in trade_frames)
    stats = import_capture([path], exchange, str(tmp_path))
    assert stats is not None and not stats.read.bad
    raw = read_raw(str(tmp_path), 0, 2**62)
    assert raw.height == len(recorded) == frames  # every gzip frame landed as its text
    assert set(raw["channel"]) == {"trade.detail", "depth.step0", "control"}
    assert raw.filter(pl.col("channel") == "trade.detail")["payload"].to_list() == trade_frames
    x = HtxExchange({"htx": "spot", "htx-swap": "linear", "htx-coinm": "inverse"}[exchange])  # type: ignore[arg-type]
    got, rejects = x.normalize_trades_with_rejects(raw)
    assert got.height == expected == trades and rejects.height == 0
    # each trade as recorded: id, taker side, exchange time, exact price and size
    items = [d for t in trade_frames for d in json.loads(t, parse_float=str)["tick"]["data"]]
    size_key = {"htx": "amount", "htx-swap": "quantity", "htx-coinm": "amount"}[exchange]
    want = sorted(
        (str(d.get("tradeId", d["id"])), d["direction"], d["ts"], Decimal(str(d["price"])), Decimal(str(d[size_key])))
        for d in items
    )
    have = sorted(
        (r["trade_id"], r["side"], int(r["ts"].timestamp() * 1000 + 0.5), r["price"], r["size"])
        for r in got.iter_rows(named=True)
    )
    assert have == want


def test_spot_trade_ids_run_without_a_hole_per_symbol() -> None:
    """Why spot "trade.detail" claims contiguous ids: per symbol, the recorded tradeIds are consecutive (HTX's page
    says only "unique"); a push may list them out of order."""
    by_symbol: dict[str, list[int]] = defaultdict(list)
    for _, text in _frames(SPOT_REC):
        if text.startswith('{"ch"') and ".trade.detail" in text:
            msg = json.loads(text)
            by_symbol[msg["ch"].split(".")[1]] += [d["tradeId"] for d in msg["tick"]["data"]]
    assert len(by_symbol) == 10
    for ids in by_symbol.values():
        assert sorted(ids) == list(range(min(ids), max(ids) + 1))
    assert len(by_symbol["fil3susdt"]) == 56
    assert by_symbol["zeneth"] == [100039973212, 100039973211, 100039973213]
    assert SPOT.capabilities.contiguous_ids == {"trade.detail"} and not LINEAR.capabilities.contiguous_ids
    norm = SPOT.normalize_trades(
        _raw([("trade.detail", "zeneth", t) for _, t in _frames(SPOT_REC) if "zeneth.trade" in t])
    )
    assert norm["seq_id"].to_list() == [int(t) for t in norm["trade_id"]] and norm["fills"].to_list() == [1, 1, 1]


def test_depth_step0_whole_books_from_the_recording() -> None:
    frames = [t for _, t in _frames(SPOT_REC) if t.startswith('{"ch":"market.trioeth.depth.step0"')]
    builder = HtxStepBuilder("trioeth")
    events = [builder.on_raw("depth.step0", t) for t in frames]
    assert [e.kind for e in events if e is not None] == [SYNCED] and builder.valid
    last = json.loads(frames[-1], parse_float=str)["tick"]
    assert builder.book.raw_bids(2) == [(str(p), str(q)) for p, q in last["bids"][:2]]
    assert builder.book.raw_asks(1) == [(str(last["asks"][0][0]), str(last["asks"][0][1]))]
    assert builder.book.raw_bids(1)[0][0] == "9.121E-7"  # kept as HTX wrote it


# -- wire: frames, routes, acks, pings ------------------------------------------------------------------------------


def test_gzip_frames_and_the_ping_answer() -> None:
    """ "Websocket Market Data / Introduction": gzip frames; {"ping": t} is answered {"pong": t}."""
    text = '{"ping":1492420473027}'
    assert SPOT.decode_binary(gzip_text(text)) == text == gunzip_text(gzip.compress(text.encode()))
    assert SPOT.decode_binary(b"not gzip") is None
    assert SPOT.route(text) == ("control", "")
    assert SPOT.answer(text) == '{"pong":1492420473027}'
    assert LINEAR.answer('{"ping": 1645289389594}') == '{"pong":1645289389594}'
    assert SPOT.answer('{"id":"1","status":"ok","subbed":"market.btcusdt.bbo","ts":1}') is None
    assert SPOT.control_events(text) == [] and SPOT.exchange_time(text) is None


def test_routes_acks_and_errors() -> None:
    assert SPOT.route('{"ch":"market.btcusdt.trade.detail","ts":1630994963175,"tick":{}}') == (
        "trade.detail",
        "btcusdt",
    )
    assert SPOT.route('{"ch":"market.btcusdt.mbp.150","ts":1,"tick":{}}') == ("mbp.150", "btcusdt")
    assert SPOT.route('{"id":"x","rep":"market.btcusdt.mbp.150","status":"ok","data":{}}') == ("mbp.150", "btcusdt")
    assert LINEAR.route('{"ch":"market.BTC-USDT.depth.size_150.high_freq","tick":{}}') == (
        "depth.size_150.high_freq",
        "BTC-USDT",
    )
    assert SPOT.route('{"tick":{},"ch":"market.ethbtc.bbo"}') == ("bbo", "ethbtc")  # keys in another order
    ack = '{"id":"id1","status":"ok","subbed":"market.btcusdt.mbp.150","ts":1489474081631}'
    assert SPOT.route(ack) == ("control", "")
    assert SPOT.control_events(ack) == [_ev(SUBSCRIBED, "mbp.150", "btcusdt")]
    unsub = '{"id":"id4","status":"ok","unsubbed":"market.btcusdt.trade.detail","ts":1494326028889}'
    assert SPOT.control_events(unsub) == [_ev(UNSUBSCRIBED, "trade.detail", "btcusdt")]
    err = '{"status":"error","err-code":"bad-request","err-msg":"invalid topic","id":"market.nope.mbp.150","ts":1}'
    assert SPOT.control_events(err) == [_ev(SUB_ERROR, "mbp.150", "nope", "bad-request: invalid topic")]
    assert SPOT.exchange_time(ack) == 1489474081631 * 1_000_000
    frames = pl.Series(['{"ch":"market.a.bbo","ts":5,"tick":{}}', '{"ping":7}'])
    assert SPOT.exchange_times(frames).to_list() == [5_000_000, None]


def _ev(kind: EventKind, channel: str, symbol: str, detail: str = "") -> StreamEvent:
    return StreamEvent(kind, channel, symbol, detail)


def test_subscribe_messages_urls_and_symbols() -> None:
    subs = [Subscription("trade.detail", "btcusdt"), Subscription("mbp.150", "btcusdt")]
    assert SPOT.subscribe_messages(subs[:1]) == [
        '{"sub":"market.btcusdt.trade.detail","id":"market.btcusdt.trade.detail"}'
    ]
    assert LINEAR.subscribe_messages([Subscription("depth.size_150.high_freq", "BTC-USDT")]) == [
        '{"sub":"market.BTC-USDT.depth.size_150.high_freq","id":"market.BTC-USDT.depth.size_150.high_freq",'
        '"data_type":"incremental"}'
    ]
    assert SPOT.unsubscribe_messages(subs[:1]) == [
        '{"unsub":"market.btcusdt.trade.detail","id":"market.btcusdt.trade.detail"}'
    ]
    # MBP books are served on /feed: a connection of MBP streams alone goes there; mixed ones stay on /ws
    assert SPOT.connect_url(subs[1:], SPOT.ws_url) == "wss://api.huobi.pro/feed"
    assert SPOT.connect_url(subs, SPOT.ws_url) == "wss://api.huobi.pro/ws"
    assert SPOT.connect_url(subs[1:], "ws://127.0.0.1:9/ws") == "ws://127.0.0.1:9/feed"
    assert SPOT.connect_url(subs[1:], "ws://127.0.0.1:9") == "ws://127.0.0.1:9/feed"
    assert LINEAR.connect_url(subs[:1], "ws://127.0.0.1:9") == "ws://127.0.0.1:9/linear-swap-ws"
    assert [SPOT.normalize_symbol(s) for s in ("btcusdt", "yfihusd", "trioeth", "fil3susdt", "omgbtc")] == [
        "BTC-USDT",
        "YFI-HUSD",
        "TRIO-ETH",
        "FIL3S-USDT",
        "OMG-BTC",
    ]
    assert (
        LINEAR.normalize_symbol("BTC-USDT") == "BTC-USDT-PERP" and COINM.normalize_symbol("BTC-USD") == "BTC-USD-PERP"
    )
    assert [x.id for x in (SPOT, LINEAR, COINM)] == ["htx", "htx-swap", "htx-coinm"]
    assert SPOT.keepalive.client_ping is None and SPOT.capabilities.subscribe_ack


# -- exact numbers and rejects ---------------------------------------------------------------------------------------


def test_plain_decimal_writes_exponents_out_digit_for_digit() -> None:
    cases = {
        "9.2E-7": "0.00000092",
        "4.0E7": "40000000",
        "3.358149508E7": "33581495.08",
        "1.0E-10": "0.00000000010",
        "12.5e1": "125",
        "1.3700544510935929e+26": "137005445109359290000000000",
        "20995.88": "20995.88",
        "6": "6",
    }
    got = pl.DataFrame({"v": list(cases)}).select(plain_decimal(pl.col("v")))["v"].to_list()
    assert got == list(cases.values())


def test_trades_exact_and_every_bad_row_a_reject() -> None:
    """Spot "market.$symbol.trade.detail" pushes as documented (numbers as JSON numbers); swaps' REST layout (values
    as strings) normalizes alike."""
    good = (
        '{"ch":"market.btcusdt.trade.detail","ts":1630994963175,"tick":{"id":137005445109,"ts":1630994963173,'
        '"data":[{"id":1.3700544510935929e+26,"ts":1630994963173,"tradeId":102523573486,"amount":0.006754,'
        '"price":52648.62,"direction":"buy"},{"id":1.3700544510935929e+26,"ts":1630994963174,'
        '"tradeId":102523573487,"amount":1.0E-5,"price":52648.61,"direction":"sell"}]}}'
    )
    bad = [
        ("not json", "payload is not a JSON object"),
        ('{"ch":"market.btcusdt.trade.detail","ts":1,"tick":{"data":[]}}', "no trades in payload"),
        (good.replace('"direction":"buy"', '"direction":"up"'), "invalid side"),
        (good.replace("52648.62", "-52648.62"), "price is not positive: -52648.62"),
        (good.replace("0.006754", "0.0000000000001"), "size has more than 12 decimal places"),
        (good.replace("102523573486", "1025235734861025235734861"), "tradeId does not fit 64 bits"),
        (good.replace('"tradeId":102523573486,', ""), "missing trade id"),
    ]
    trades, rejects = SPOT.normalize_trades_with_rejects(
        _raw([("trade.detail", "btcusdt", good)] + [("trade.detail", "btcusdt", p) for p, _ in bad])
    )
    assert trades.height == 2 + 5  # the good push, and the other (good) trade of each of the five bad pushes with two
    first = trades.filter(pl.col("trade_id") == "102523573486").row(0, named=True)
    assert (first["symbol"], first["side"], first["price"], first["size"]) == (
        "BTC-USDT",
        "buy",
        Decimal("52648.62"),
        Decimal("0.006754"),
    )
    assert first["ts"].timestamp() * 1000 == 1630994963173
    second = trades.filter(pl.col("trade_id") == "102523573487").row(0, named=True)
    assert second["size"] == Decimal("0.00001") and second["side"] == "sell"  # "amount":1.0E-5
    reasons = rejects["reason"].to_list()
    for _, reason in bad:
        assert any(r.startswith(reason) for r in reasons), reason
    rest = (
        '{"status":"ok","data":[{"id":1315909430000,"ts":1603706947767,"data":[{"amount":"2","ts":1603706947767,'
        '"id":1315909430000,"price":"13068.5","direction":"buy","quantity":"0.002","trade_turnover":"26.334"}]}]}'
    )
    (row,) = LINEAR.normalize_trades(_raw([("trade.detail", "BTC-USDT", rest)], "htx-swap")).iter_rows(named=True)
    assert (row["symbol"], row["trade_id"], row["price"], row["size"], row["seq_id"]) == (
        "BTC-USDT-PERP",
        "1315909430000",
        Decimal("13068.5"),
        Decimal("0.002"),  # quantity (coin), not amount (contracts)
        None,
    )
    (coin,) = COINM.normalize_trades(_raw([("trade.detail", "BTC-USD", rest)], "htx-coinm")).iter_rows(named=True)
    assert coin["size"] == Decimal("2")  # contracts


# -- books: MBP (spot) and high_freq (swaps) -----------------------------------------------------------------------


def _mbp(symbol: str, prev: int, seq: int, bids: str = "[]", asks: str = "[]", ts: int = 1573199608679) -> str:
    return (
        f'{{"ch":"market.{symbol}.mbp.150","ts":{ts},"tick":{{"seqNum":{seq},"prevSeqNum":{prev},'
        f'"bids":{bids},"asks":{asks}}}}}'
    )


def _rep(symbol: str, seq: int, bids: str, asks: str) -> str:
    name = f"market.{symbol}.mbp.150"
    return f'{{"id":"{name}","rep":"{name}","status":"ok","data":{{"seqNum":{seq},"bids":{bids},"asks":{asks}}}}}'


def test_mbp_session_refresh_splice_gap_and_resync_of_that_symbol_only() -> None:
    """ "Market By Price (incremental update)": cache updates, req a refresh, splice where prevSeqNum equals its
    seqNum; a broken chain asks a new refresh for that symbol only."""
    subs = [Subscription("mbp.150", "btcusdt"), Subscription("mbp.150", "ethusdt")]
    session = SPOT.new_session(subs, None)
    assert session.sync_state() == {"btcusdt": "buffering", "ethusdt": "buffering"}
    first = session.on_frame("mbp.150", "btcusdt", _mbp("btcusdt", 100, 105, asks="[[645.14,26.75]]"))
    assert first is not None and first.send == ('{"req":"market.btcusdt.mbp.150","id":"market.btcusdt.mbp.150"}',)
    assert session.on_frame("mbp.150", "btcusdt", _mbp("btcusdt", 105, 107, bids="[[618.37,0]]")) is None
    synced = session.on_frame("mbp.150", "btcusdt", _rep("btcusdt", 105, "[[618.37,71.594],[423.33,77.726]]", "[]"))
    assert synced is not None and [e.kind for e in synced.events] == [SYNCED]
    assert synced.events[0].detail == "refresh seqNum=105, 1 kept updates applied"
    book = session.book("btcusdt")
    assert book is not None and book.raw_bids() == [("423.33", "77.726")] and book.update_id == 107
    ok = session.on_frame("mbp.150", "btcusdt", _mbp("btcusdt", 107, 110, asks="[[650.59,1.4909733438479636E-4]]"))
    assert ok is None and book.raw_asks() == [("650.59", "1.4909733438479636E-4")]
    # ethusdt syncs on its own
    session.on_frame("mbp.150", "ethusdt", _mbp("ethusdt", 7, 9))
    session.on_frame("mbp.150", "ethusdt", _rep("ethusdt", 9, "[[1,2]]", "[[3,4]]"))
    assert session.sync_state() == {"btcusdt": "synced", "ethusdt": "synced"}
    # a gap: btcusdt only
    gap = session.on_frame("mbp.150", "btcusdt", _mbp("btcusdt", 111, 115))
    assert gap is not None and [(e.kind, e.symbol) for e in gap.events] == [(GAP, "btcusdt")]
    assert gap.events[0].detail == "sequence gap: prevSeqNum=111 != previous seqNum=110"
    assert gap.send == ('{"req":"market.btcusdt.mbp.150","id":"market.btcusdt.mbp.150"}',)
    assert session.sync_state() == {"btcusdt": "resyncing", "ethusdt": "synced"} and session.book("btcusdt") is None
    # a refresh older than the kept updates is asked again; a matching one resyncs
    session.on_frame("mbp.150", "btcusdt", _mbp("btcusdt", 115, 116))
    again = session.on_frame("mbp.150", "btcusdt", _rep("btcusdt", 112, "[]", "[]"))
    assert again is not None and again.send and again.error is not None and "does not meet" in again.error
    done = session.on_frame("mbp.150", "btcusdt", _rep("btcusdt", 115, "[[1,1]]", "[]"))
    assert done is not None and [e.kind for e in done.events] == [SYNCED]
    assert session.sync_state()["btcusdt"] == "synced" and session.book("btcusdt").update_id == 116  # type: ignore[union-attr]


def test_mbp_builder_offline_and_checkpoint() -> None:
    builder = HtxMbpBuilder("btcusdt")
    assert builder.channels == {"mbp.5", "mbp.20", "mbp.150", "mbp.400"}
    assert builder.on_raw("mbp.150", _mbp("btcusdt", 1, 2)) is None and not builder.valid
    event = builder.on_raw("mbp.150", _rep("btcusdt", 2, "[[10,1]]", "[[11,1]]"))
    assert event is not None and event.kind == SYNCED
    assert builder.on_raw("mbp.150", _mbp("btcusdt", 2, 3, bids="[[10,0],[9.5,2]]")) is None
    assert builder.book.raw_bids() == [("9.5", "2")] and builder.checkpoint() == {"seq": 3}
    other = HtxMbpBuilder("btcusdt")
    other.restore([("9.5", "2")], [("11", "1")], {"seq": 3})
    assert other.on_raw("mbp.150", _mbp("btcusdt", 3, 4, asks="[[11,3]]")) is None
    assert other.book.raw_asks() == [("11", "3")]
    gap = other.on_raw("mbp.150", _mbp("btcusdt", 5, 6))
    assert gap is not None and gap.kind == GAP and not other.valid


def _hf(event: str, version: int, bids: str = "[]", asks: str = "[]") -> str:
    ch = "market.BTC-USDT.depth.size_150.high_freq"
    return (
        f'{{"ch":"{ch}","tick":{{"asks":{asks},"bids":{bids},"ch":"{ch}","event":"{event}","id":131597620,'
        f'"mrid":131597620,"ts":1603707712356,"version":{version}}},"ts":1603707712357}}'
    )


def test_high_freq_session_version_chain_and_resubscribe() -> None:
    """ "[General] Subscribe Incremental Market Depth Data": a snapshot first, then updates whose version goes up by
    1 on the connection; a jump resubscribes that contract (which brings a new snapshot)."""
    ch = "depth.size_150.high_freq"
    subs = [Subscription(ch, "BTC-USDT"), Subscription(ch, "ETH-USDT")]
    session = LINEAR.new_session(subs, None)
    assert session.on_frame(ch, "BTC-USDT", _hf("update", 5, bids="[[1,1]]")) is None  # before the snapshot
    synced = session.on_frame(ch, "BTC-USDT", _hf("snapshot", 10, "[[13071.9,38],[13060,400]]", "[[13081.9,206]]"))
    assert synced is not None and [e.kind for e in synced.events] == [SYNCED]
    assert session.on_frame(ch, "BTC-USDT", _hf("update", 11, bids="[[13060,0]]")) is None
    book = session.book("BTC-USDT")
    assert book is not None and book.raw_bids() == [("13071.9", "38")] and book.update_id == 11
    gap = session.on_frame(ch, "BTC-USDT", _hf("update", 13))
    assert gap is not None and [(e.kind, e.detail) for e in gap.events] == [(GAP, "sequence gap: version=13 after 11")]
    assert gap.send == (
        '{"unsub":"market.BTC-USDT.depth.size_150.high_freq","id":"market.BTC-USDT.depth.size_150.high_freq",'
        '"data_type":"incremental"}',
        '{"sub":"market.BTC-USDT.depth.size_150.high_freq","id":"market.BTC-USDT.depth.size_150.high_freq",'
        '"data_type":"incremental"}',
    )
    assert session.sync_state() == {"BTC-USDT": "resyncing", "ETH-USDT": "buffering"}
    again = session.on_frame(ch, "BTC-USDT", _hf("snapshot", 40, "[[1,1]]", "[[2,1]]"))
    assert again is not None and again.events[0].kind == SYNCED and session.sync_state()["BTC-USDT"] == "synced"
    builder = LINEAR.book_builder("BTC-USDT")  # the rebuild's: high_freq once seen
    assert builder.on_raw(ch, _hf("snapshot", 1, "[[1,1]]", "[]")) is not None
    assert builder.checkpoint() == {"version": 1, "incremental": True}


def test_the_rebuild_reads_whole_book_pushes_until_an_incremental_stream_is_seen() -> None:
    """The lake rebuild's builder: the recordings' ``depth.step0`` books (no incremental stream), else MBP."""
    step = [t for _, t in _frames(SPOT_REC) if t.startswith('{"ch":"market.trioeth.depth.step0"')]
    builder = SPOT.book_builder("trioeth")
    assert isinstance(builder, HtxBookBuilder) and {"mbp.150", "depth.step0"} <= builder.channels
    assert builder.on_raw("depth.step0", step[0]) is not None and builder.valid
    assert builder.book.raw_bids(1) == [("9.121E-7", "92730.24")] and builder.checkpoint()["incremental"] is False
    assert builder.on_raw("mbp.150", _mbp("trioeth", 1, 2)) is None and not builder.valid  # MBP from here on
    assert builder.on_raw("depth.step0", step[1]) is None and not builder.valid  # ignored
    event = builder.on_raw("mbp.150", _rep("trioeth", 2, "[[1,1]]", "[[2,1]]"))
    assert event is not None and event.kind == SYNCED and builder.book.raw_asks() == [("2", "1")]
    samples = book_samples(_raw([("depth.step0", "trioeth", t) for t in step]), SPOT, "trioeth").samples
    assert samples.height > 5 and samples["bid_px"][0][0] == 9.121e-7


# -- replay adapter and REST history --------------------------------------------------------------------------------


def _replay(paths: list[Path], exchange: HtxExchange) -> HtxReplay:
    protocol = exchange.replay_protocol()
    assert isinstance(protocol, HtxReplay)
    for f in read_capture(paths[0]):
        protocol.scan(f, times=False)
    protocol.finish_scan()
    return protocol


class _Client(ReplayClient):
    def __init__(self) -> None:
        super().__init__(None, 1)  # type: ignore[arg-type]


def test_replay_adapter_speaks_gzip_acks_snapshots_and_counts_pongs() -> None:
    protocol = _replay([SWAP_HF], LINEAR)
    assert protocol.accepts("/linear-swap-ws") and not protocol.accepts("/ws") and not protocol.server_pings
    client = _Client()
    sub = LINEAR.subscribe_messages([Subscription("depth.size_150.high_freq", "BTC-USDT")])[0]
    (ack,) = protocol.on_message(client, sub)  # before any book: the recorded snapshot will come
    assert json.loads(gunzip_text(ack) or "")["subbed"] == "market.BTC-USDT.depth.size_150.high_freq"
    assert client.keys == {"ping", "depth.size_150.high_freq:BTC-USDT"}
    pings = versions = 0
    for f in read_capture(SWAP_HF):
        prepared = protocol.prepare(f)
        if prepared is None:
            continue
        protocol.advance(prepared)
        text = gunzip_text(prepared.data or b"") or ""
        pings += text.startswith('{"ping"')
        versions += '"version"' in text
    assert pings == len(protocol.pings) == 18 and versions == 224
    # a resubscriber gets a snapshot of the book where the cursor is, with its version
    protocol.on_message(client, LINEAR.unsubscribe_messages([Subscription("depth.size_150.high_freq", "BTC-USDT")])[0])
    ack, snap = protocol.on_message(client, sub)
    tick = json.loads(gunzip_text(snap) or "")["tick"]
    assert tick["event"] == "snapshot" and tick["version"] == 1_512_467 + 224 and protocol.snapshots_sent == 1
    assert protocol.on_message(client, '{"pong":1645289404700}') == [] and protocol.pongs == [1645289404700]
    (err,) = protocol.on_message(client, '{"sub":"market.NOPE-USDT.bbo","id":"e1"}')
    assert json.loads(gunzip_text(err) or "")["err-msg"] == "invalid topic market.NOPE-USDT.bbo"


def test_rest_history_heals_a_recent_gap_and_says_when_it_cannot_reach_back() -> None:
    """ "GET /linear-swap-ex/market/history/trade" through the replay: the latest trades only (no paging)."""
    live = LINEAR.normalize_trades(
        _raw([("trade.detail", "BTC-USDT", t) for _, t in _frames(SWAP_HF) if ".trade.detail" in t], "htx-swap")
    ).sort("ts", "trade_id")
    times = [int(t.timestamp() * 1_000_000) * 1000 for t in live["ts"]]
    start, end = times[40], times[60]  # a gap in the middle of the recording

    async def scenario() -> tuple[list[HistoryPage], list[HistoryPage]]:
        async with ReplayServer([SWAP_HF], verbose=False) as server, RestClient() as client:
            whole = [
                p
                async for p in HtxTradeHistory("linear").fetch(
                    client, "BTC-USDT", start, end, base_url=server.rest_base
                )
            ]
            short = [
                p
                async for p in HtxTradeHistory("linear", size=5).fetch(
                    client, "BTC-USDT", start, end, base_url=server.rest_base
                )
            ]
            return whole, short

    whole, short = asyncio.run(scenario())
    (page,) = whole
    assert page.proven == (start, end)
    healed = LINEAR.normalize_trades(
        _raw([("trade.detail", "BTC-USDT", HtxTradeHistory("linear").encode(page.records))], "htx-swap")
    ).sort("ts", "trade_id")
    expected = live.filter((pl.col("ts") >= live["ts"][40]) & (pl.col("ts") < live["ts"][60]))
    cols = ["symbol", "ts", "trade_id", "price", "size", "side"]
    assert healed.select(cols).equals(expected.select(cols)) and healed.height > 20
    (cut,) = short
    # the last 5 trades are all after the gap: nothing of it is proven, and nothing returned
    assert cut.proven is None or cut.proven[0] > start
    assert cut.records == ()
    assert LINEAR.trade_history("trade.detail") is not None and LINEAR.trade_history("bbo") is None


def test_coin_margined_history_through_the_replay_of_the_real_recording(shared_data: Path) -> None:
    """ "GET /swap-ex/market/history/trade" served from the real coin-margined recording: SHIB-USD's 4 trades, sizes
    in contracts."""
    path = shared_data / "cryptofeed-samples" / "HUOBI_SWAP.ws.1.0.gz"

    async def scenario() -> list[HistoryPage]:
        async with ReplayServer([path], verbose=False) as server, RestClient() as client:
            history = HtxTradeHistory("inverse")
            assert history.path == "/swap-ex/market/history/trade"
            return [p async for p in history.fetch(client, "SHIB-USD", 0, 2**62, base_url=server.rest_base)]

    (page,) = asyncio.run(scenario())
    assert [int(r["id"]) for r in page.records] == [743774723480000, 743774723480001, 743774723480002, 743774782070000]
    assert page.proven == (1645289384356 * 1_000_000 + 1_000_000, 2**62)  # the history reaches back no further
    trades = COINM.normalize_trades(
        _raw([("trade.detail", "SHIB-USD", HtxTradeHistory("inverse").encode(page.records))], "htx-coinm")
    )
    assert trades["symbol"].unique().to_list() == ["SHIB-USD-PERP"] and trades.height == 4
