"""Bitfinex public WebSocket v2.

Real recording: cryptofeed's BITFINEX.ws.11.0 (2021-04-17, v2, 7 pairs: ``book`` P0 len 100 snapshots + updates,
``trades`` snapshots, ``ticker``, heartbeats; conf flag 65536, so every data frame carries a sequence number; no
checksum frames, no ``te``/``tu`` trades), copied into tests/data/bitfinex/ with cryptofeed's LICENSE.
Built from the documentation (docs.bitfinex.com "WebSocket Checksum", "Trades", "General"): ``BITFINEX.ws.cs.gz`` is
that recording with checksum frames after every book frame (one made wrong), six ``te``/``tu`` trade pairs and the
sequence renumbered (tests/data/bitfinex/make_capture.py, its README); the single frames below follow the pages'
examples (``[17470,"te",[401597395,1574694478808,0.005,7245.3]]`` is the "Trades" page's).
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl
import pytest

from mdplatform.capture import detect_exchange, import_capture, read_capture
from mdplatform.contract import (
    CHECKSUM,
    GAP,
    SUB_ERROR,
    SUBSCRIBED,
    SYNCED,
    UNSUBSCRIBED,
    ConnectionRouting,
    StreamEvent,
    Subscription,
)
from mdplatform.exchanges import get_exchange
from mdplatform.exchanges.bitfinex import (
    CONF_FLAGS,
    BitfinexBookBuilder,
    BitfinexExchange,
    BitfinexSession,
    BitfinexTradeHistory,
    bitfinex_checksum,
    exact,
    sequence_breaks,
    split_seq,
)
from mdplatform.history import RestClient
from mdplatform.lake import read_events, read_raw
from mdplatform.replay import ReplayServer
from mdplatform.schemas import RAW, REJECTS
from mdplatform.transforms import MINUTE_NS, candles_1m

DATA = Path(__file__).resolve().parents[1] / "data" / "bitfinex"
REAL = DATA / "BITFINEX.ws.11.0.gz"
BUILT = DATA / "BITFINEX.ws.cs.gz"
SYMBOLS = ("tBFTUSD", "tIOTETH", "tDOGUSD", "tMNABTC", "tODEUSD", "tTESTBTC:TESTUSD", "tSNGUSD")
SUBS = [Subscription(c, s) for c in ("ticker", "book", "trades") for s in SYMBOLS]
X = BitfinexExchange()
ALL_TIME = (0, 2**62)


def _frames(path: Path) -> list[str]:
    return [f.frame for f in read_capture(path) if f.kind == "ws"]


def _routed(path: Path) -> Iterator[tuple[str, str, str]]:
    route = X.connection_router()
    for frame in _frames(path):
        yield (*route(frame), frame)


def _raw(path: Path) -> pl.DataFrame:
    route = X.connection_router()
    rows = []
    for i, f in enumerate(read_capture(path)):
        channel, symbol = route(f.frame)
        rows.append((f.recv_ns, "bitfinex", channel, symbol, "c1", i + 1, f.frame))
    return pl.DataFrame(rows, schema=list(RAW), orient="row").cast(RAW)  # type: ignore[arg-type]


def _row(payload: str, seq: int, symbol: str = "tBTCUSD") -> tuple[object, ...]:
    return (seq, "bitfinex", "trades", symbol, "c9", seq, payload)


def _raw_rows(*rows: tuple[object, ...]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=list(RAW), orient="row").cast(RAW)  # type: ignore[arg-type]


# -- connecting, routing, events ---------------------------------------------------------------------------------


def test_registered_with_its_capabilities() -> None:
    x = get_exchange("bitfinex")
    assert isinstance(x, BitfinexExchange) and isinstance(x, ConnectionRouting)
    caps = x.capabilities
    assert caps.book_channels == {"book"} and caps.trade_channels == {"trades"} and caps.ticker_channels == {"ticker"}
    assert caps.sequence_check and caps.checksum and caps.subscribe_ack and caps.book_sync == "ws-snapshot"
    assert caps.contiguous_ids == frozenset()  # ids are exchange-wide (test_trade_ids_are_not_contiguous_per_pair)
    assert caps.streams_per_connection == 25  # "Public Channels": 25 channels per connection
    assert caps.session_channels == {"trades", "ticker", "pending"}
    assert x.ws_url == "wss://api-pub.bitfinex.com/ws/2"
    ka = x.keepalive
    assert ka.client_ping == '{"event":"ping","cid":1}' and ka.idle_timeout_s == 40.0
    assert ka.connects_per_s == pytest.approx(20 / 60)  # 20 connections per minute on api-pub
    assert x.connect_url(SUBS, "ws://127.0.0.1:9") == "ws://127.0.0.1:9/ws/2"


def test_subscribe_messages_start_with_conf() -> None:
    msgs = [
        orjson.loads(m)
        for m in X.subscribe_messages([Subscription("book", "tBTCUSD"), Subscription("trades", "tBTCUSD")])
    ]
    assert CONF_FLAGS == 65536 + 131072
    assert msgs == [
        {"event": "conf", "flags": 196608},
        {"event": "subscribe", "channel": "book", "symbol": "tBTCUSD", "prec": "P0", "freq": "F0", "len": "100"},
        {"event": "subscribe", "channel": "trades", "symbol": "tBTCUSD"},
    ]
    with pytest.raises(ValueError, match="unknown channel"):
        X.subscribe_messages([Subscription("candles", "tBTCUSD")])


def test_router_learns_channel_ids_per_connection() -> None:
    routed = list(_routed(REAL))
    assert len(routed) == 1693
    counts: dict[tuple[str, str], int] = {}
    for channel, symbol, _ in routed:
        counts[(channel, symbol)] = counts.get((channel, symbol), 0) + 1
    assert counts[("control", "")] == 23  # info, conf, 21 subscribed
    assert counts[("book", "tIOTETH")] == 786 and counts[("trades", "tBFTUSD")] == 3  # snapshot + 2 heartbeats
    assert {c for c, _ in counts} == {"control", "book", "trades", "ticker", "pending"}
    # heartbeats of the two slow book subscriptions come before their "subscribed" event (a subscription in
    # progress): routed "pending", so the session still sees their sequence numbers
    pending = [f for c, _, f in routed if c == "pending"]
    assert pending == ['[232954,"hb",139]', '[232958,"hb",143]']
    # a new connection knows nothing: the same data frame is pending until its subscribed event
    fresh = X.connection_router()
    assert fresh("[232955,[0.0010262,0,1],1670]") == ("pending", "")
    fresh('{"event":"subscribed","channel":"book","chanId":232955,"symbol":"tIOTETH","prec":"P0"}')
    assert fresh("[232955,[0.0010262,0,1],1670]") == ("book", "tIOTETH")


def test_control_events() -> None:
    route = X.connection_router()
    sub = '{"event":"subscribed","channel":"trades","chanId":19111,"symbol":"tBTCUSD","pair":"BTCUSD"}'
    assert route(sub) == ("control", "")
    assert X.control_events(sub) == [StreamEvent(SUBSCRIBED, "trades", "tBTCUSD")]
    # "unsubscribed" names only the chanId: the stream is looked up in what the routers learned
    assert X.control_events('{"event":"unsubscribed","status":"OK","chanId":19111}') == [
        StreamEvent(UNSUBSCRIBED, "trades", "tBTCUSD")
    ]
    err = '{"event":"error","msg":"subscribe: dup","code":10301,"channel":"book","symbol":"tBTCUSD"}'
    assert X.control_events(err) == [StreamEvent(SUB_ERROR, "book", "tBTCUSD", "10301: subscribe: dup")]
    assert X.control_events('{"event":"info","version":2,"platform":{"status":1}}') == []
    assert X.control_events('{"event":"pong","ts":1511545528111,"cid":1}') == []


def test_exchange_times_of_trade_frames_only() -> None:
    frames = _frames(REAL)
    times = X.exchange_times(pl.Series(frames))
    assert times.drop_nulls().len() == 7  # the seven trades snapshots: books, tickers, heartbeats carry no time
    snap = next(f for f in frames if f.startswith("[232959,[["))
    assert X.exchange_time(snap) == 1618665870435 * 1_000_000  # the newest (first) trade's MTS
    te = '[17470,"te",[401597395,1574694478808,0.005,7245.3],4]'
    assert X.exchange_time(te) == 1574694478808 * 1_000_000
    assert X.exchange_times(pl.Series([te, '[17470,"hb",5]'])).to_list() == [1574694478808 * 1_000_000, None]
    assert X.exchange_time("[232955,[[0.0010262,1,8],[0.001026,1,9.81159001]],17]") is None


def test_normalize_symbol() -> None:
    assert X.normalize_symbol("tBTCUSD") == "BTC-USD"
    assert X.normalize_symbol("tTESTBTC:TESTUSD") == "TESTBTC-TESTUSD"
    assert X.normalize_symbol("tBTCUST") == "BTC-USDT"  # Bitfinex's UST is Tether
    assert X.normalize_symbol("tDOGE:USD") == "DOGE-USD"
    assert X.normalize_symbol("tBTCF0:USTF0") == "BTC-USDT-PERP"


def test_capture_is_recognised() -> None:
    assert detect_exchange(REAL) == "bitfinex" and detect_exchange(BUILT) == "bitfinex"
    assert X.capture_hints.feeds == ("BITFINEX",)


# -- the sequence, the books, the checksum -----------------------------------------------------------------------


def test_real_recording_sequence_runs_without_a_break() -> None:
    frames = _frames(REAL)
    seqs = [split_seq(exact(f))[1] for f in frames if f.startswith("[")]
    assert seqs == list(range(1, 1671))
    assert sequence_breaks(frames) == []
    # the live session sees every data frame (books, trades, tickers, heartbeats, pending): no gap, 7 books synced
    session = BitfinexSession(SUBS)
    events: list[StreamEvent] = []
    for channel, symbol, frame in _routed(REAL):
        if channel in X.capabilities.book_channels | X.capabilities.session_channels:
            action = session.on_frame(channel, symbol, frame)
            events += action.events if action else []
    assert [e.kind for e in events] == [SYNCED] * 7 and session.sequence_gaps == 0 and session.seq == 1670
    assert session.sync_state() == dict.fromkeys(SYMBOLS, "synced")


def test_a_lost_frame_is_a_gap_for_every_book_of_the_connection() -> None:
    routed = list(_routed(REAL))
    # drop a ticker frame late in the recording: only the sequence numbers can tell
    lost = max(i for i, (c, _, _) in enumerate(routed) if c == "ticker")
    session = BitfinexSession(SUBS)
    actions = []
    for i, (channel, symbol, frame) in enumerate(routed):
        seen = i != lost and channel in X.capabilities.book_channels | X.capabilities.session_channels
        if seen and (action := session.on_frame(channel, symbol, frame)) is not None and action.send:
            actions.append(action)
    (action,) = actions
    seq = split_seq(exact(routed[lost][2]))[1]
    assert seq is not None
    assert [(e.kind, e.symbol) for e in action.events] == [(GAP, s) for s in session.sync_state()]
    assert {e.detail for e in action.events} == {f"sequence gap: received {seq + 1} after {seq - 1}"}
    sent = [orjson.loads(m) for m in action.send]
    assert [m["event"] for m in sent] == ["unsubscribe", "subscribe"] * 7
    assert {m["chanId"] for m in sent if m["event"] == "unsubscribe"} == {
        232954,
        232955,
        232956,
        232957,
        225206,
        204928,
        232958,
    }
    assert session.sync_state() == dict.fromkeys(SYMBOLS, "resyncing")


def _reference(frames: list[str]) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """The book after ``frames`` (one symbol's book frames), kept with plain dicts: an independent reading of
    "Books" (COUNT 0 removes, AMOUNT's sign is the side)."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    for frame in frames:
        data = exact(frame)[1]
        if not isinstance(data, list):
            continue
        if not data or isinstance(data[0], list):
            bids, asks = {}, {}
            levels = data
        else:
            levels = [data]
        for price, count, amount in levels:
            side = asks if Decimal(amount) < 0 else bids
            if count == "0":
                side.pop(Decimal(price), None)
            else:
                side[Decimal(price)] = abs(Decimal(amount))
    return sorted(bids.items(), reverse=True), sorted(asks.items())


def test_books_rebuild_like_an_independent_reading() -> None:
    by_symbol: dict[str, list[str]] = {}
    for channel, symbol, frame in _routed(REAL):
        if channel == "book":
            by_symbol.setdefault(symbol, []).append(frame)
    assert sorted(by_symbol) == sorted(SYMBOLS)
    for symbol, frames in by_symbol.items():
        builder = X.book_builder(symbol)
        kinds = [e.kind for f in frames if (e := builder.on_raw("book", f)) is not None]
        assert kinds == [SYNCED] and builder.valid
        bids, asks = _reference(frames)
        assert [(Decimal(p), Decimal(s)) for p, s in builder.book.raw_bids()] == bids
        assert [(Decimal(p), Decimal(s)) for p, s in builder.book.raw_asks()] == asks
    iot = X.book_builder("tIOTETH")
    for f in by_symbol["tIOTETH"]:
        iot.on_raw("book", f)
    assert iot.book.raw_bids(1) == [("0.001026", "9.80717706")] and iot.book.raw_asks(1) == [("0.0010272", "8")]
    # exponent text is kept as sent (the checksum hashes it): tODEUSD's update [2e-8,0,1] removes that bid
    assert any(f.startswith("[204928,[2e-8,0,1]") for f in by_symbol["tODEUSD"])


def test_checksum_function_follows_the_docs() -> None:
    # "WebSocket Checksum": price:amount of bid 1, ask 1, bid 2, ... (asks negative), signed CRC32
    import zlib

    bids = [("7254.7", "0.3"), ("7254.6", "1.5")]
    asks = [("7254.8", "-0.4")]
    expected = zlib.crc32(b"7254.7:0.3:7254.8:-0.4:7254.6:1.5")
    expected = expected - 2**32 if expected >= 2**31 else expected
    assert bitfinex_checksum(bids, asks) == expected
    builder = BitfinexBookBuilder("tBTCUSD")
    builder.on_raw("book", "[1,[[7254.7,1,0.3],[7254.6,2,1.5],[7254.8,1,-0.4]],5]")
    assert builder.checksum() == expected
    assert builder.on_raw("book", f'[1,"cs",{expected},6]') is None and builder.checksums_verified == 1


def test_built_checksums_verify_and_a_wrong_one_resyncs_that_symbol_only() -> None:
    frames = _frames(BUILT)
    assert sequence_breaks(frames) == []
    session = BitfinexSession(SUBS)
    actions = []
    for channel, symbol, frame in _routed(BUILT):
        seen = channel in X.capabilities.book_channels | X.capabilities.session_channels
        if seen and (action := session.on_frame(channel, symbol, frame)) is not None and action.send:
            actions.append(action)
    (action,) = actions
    (event,) = action.events
    assert (event.kind, event.channel, event.symbol) == (CHECKSUM, "book", "tIOTETH")
    assert event.detail.startswith("checksum mismatch: received ")
    assert [orjson.loads(m) for m in action.send] == [
        {"event": "unsubscribe", "chanId": 232955},
        {"event": "subscribe", "channel": "book", "symbol": "tIOTETH", "prec": "P0", "freq": "F0", "len": "100"},
    ]
    # 1,600 checksum frames: 59 of tIOTETH verified before the wrong one, none after it (the book waits for the
    # resubscription's snapshot), every other book's all
    n_cs = sum('"cs"' in f for f in frames)
    iot_after = sum(1 for c, s, f in _routed(BUILT) if s == "tIOTETH" and '"cs"' in f) - 60
    assert n_cs == 1600 and session.checksums_verified == n_cs - 1 - iot_after
    assert session.sync_state()["tIOTETH"] == "resyncing"
    assert {s for s, v in session.sync_state().items() if v == "synced"} == set(SYMBOLS) - {"tIOTETH"}
    # the offline builder follows the same rule
    builder = X.book_builder("tIOTETH")
    kinds = [e.kind for c, s, f in _routed(BUILT) if s == "tIOTETH" and c == "book" if (e := builder.on_raw(c, f))]
    assert kinds == [SYNCED, CHECKSUM] and not builder.valid


def test_import_session_does_not_check_the_connection_sequence() -> None:
    # the capture import hands its session book frames only (made without subscriptions): no false gaps
    session = X.new_session((), None)
    events: list[StreamEvent] = []
    for channel, symbol, frame in _routed(REAL):
        if channel == "book":
            action = session.on_frame(channel, symbol, frame)
            events += action.events if action else []
    assert [e.kind for e in events] == [SYNCED] * 7


# -- trades ------------------------------------------------------------------------------------------------------


def test_trades_of_the_real_snapshots() -> None:
    raw = _raw(REAL)
    trades, rejects = X.normalize_trades_with_rejects(raw)
    assert rejects.height == 0 and trades.height == 210  # 7 snapshots of 30 trades; heartbeats hold none
    assert dict(trades.group_by("symbol").len().iter_rows()) == dict.fromkeys(
        ["BFT-USD", "IOT-ETH", "DOG-USD", "MNA-BTC", "ODE-USD", "TESTBTC-TESTUSD", "SNG-USD"], 30
    )
    first = trades.filter(pl.col("trade_id") == "669898213").row(
        0, named=True
    )  # [669898213,1618661110078,-2272.50116833,0.068961]
    assert first["symbol"] == "BFT-USD" and first["side"] == "sell"
    assert first["price"] == Decimal("0.068961") and first["size"] == Decimal("2272.50116833")
    assert first["ts"].timestamp() * 1000 == 1618661110078 and first["fills"] == 1
    buy = trades.filter(pl.col("trade_id") == "669899159").row(
        0, named=True
    )  # [669899159,1618665870435,166.391496,0.076989]
    assert buy["side"] == "buy" and buy["size"] == Decimal("166.391496") and buy["price"] == Decimal("0.076989")
    assert trades["seq_id"].null_count() == trades.height


def test_trade_ids_are_not_contiguous_per_pair() -> None:
    trades = X.normalize_trades(_raw(REAL))
    for (symbol,), group in trades.group_by("symbol"):
        ids = sorted(int(i) for i in group["trade_id"])
        steps = {b - a for a, b in itertools.pairwise(ids)}
        assert max(steps) > 1, symbol  # holes inside one pair's consecutive trades
    # and the pairs share one counter: some pairs' id ranges overlap
    spans = trades.group_by("symbol").agg(
        lo=pl.col("trade_id").cast(pl.Int64).min(), hi=pl.col("trade_id").cast(pl.Int64).max()
    )
    rows = spans.rows()
    assert any(a != b and alo < bhi and blo < ahi for a, alo, ahi in rows for b, blo, bhi in rows)


def test_te_and_tu_land_both_and_normalize_once() -> None:
    te = '[17470,"te",[401597395,1574694478808,0.005,7245.3],3]'
    tu = '[17470,"tu",[401597395,1574694478808,0.005,7245.3],4]'
    snapshot = "[17470,[[401597395,1574694478808,0.005,7245.3],[401597392,1574694470503,-0.01,7245.3]],9]"
    raw = _raw_rows(_row(te, 1), _row(tu, 2), _row('[17470,"hb",5]', 3), _row(snapshot, 4))
    trades, rejects = X.normalize_trades_with_rejects(raw)
    assert rejects.height == 0
    assert trades.select("trade_id", "side", "size", "seq").rows() == [
        ("401597395", "buy", Decimal("0.005"), 2),  # the tu version, once (te and the later snapshot repeat it)
        ("401597392", "sell", Decimal("0.01"), 4),  # only in the resubscription's snapshot
    ]
    # the built capture: seven te/tu pairs of tTESTBTC:TESTUSD, each trade once, from its tu frame
    built = X.normalize_trades(_raw(BUILT)).filter(pl.col("symbol") == "TESTBTC-TESTUSD")
    live = built.filter(pl.col("trade_id").cast(pl.Int64) > 670155031)
    assert live.height == 7 and live["side"].to_list() == ["buy", "sell", "buy", "sell", "sell", "buy", "buy"]
    sizes = ("0.01", "0.25", "0.0005", "1.2", "0.003", "0.42", "0.002")
    assert live["size"].to_list() == [Decimal(v) for v in sizes]
    assert live["price"][4] == Decimal("60349.5")


def test_exact_numbers_and_rejects() -> None:
    raw = _raw_rows(
        _row('[1,"te",[10,1574694478808,-2e-8,1.5E+3]]', 1),  # exponents: exactly 0.00000002 and 1500
        _row('[1,"te",[11,1574694478808,1.7023900800000002,7245.3]]', 2),  # never a float
        _row('[1,"te",[1,2,3]]', 3),
        _row("not json", 4),
        _row('[1,"fte",[1,2,3,4,5]]', 5),
        _row('[1,"te",[12,1574694478808,0,7245.3]]', 6),
        _row("[1,[]]", 7),  # an empty snapshot: no trade, nothing wrong
    )
    trades, rejects = X.normalize_trades_with_rejects(raw)
    assert trades.select("trade_id", "side", "price", "size").rows() == [
        ("10", "sell", Decimal("1500"), Decimal("0.00000002")),
    ]
    reasons = dict(zip(rejects["seq"].to_list(), rejects["reason"].to_list(), strict=True))
    assert rejects.columns == list(REJECTS)
    assert reasons[3].startswith("trade is not [ID, MTS, AMOUNT, PRICE]")
    assert reasons[4].startswith("payload is not a trades snapshot")
    assert reasons[5] == "not a trades frame of the documented layout: fte"
    assert reasons[6].startswith("size is not positive")
    # 1.7023900800000002 (a real ticker amount's digits) has 16 decimals: refused by name, never rounded
    assert reasons[2] == "size has more than 12 decimal places: 1.7023900800000002"
    assert 7 not in reasons


def test_candles_from_the_trades_match_an_independent_reference() -> None:
    # the recording has no candle messages: the 1m candles built from its trades are compared with plain sums
    trades = X.normalize_trades(_raw(REAL))
    times = trades["ts"].cast(pl.Int64)
    start = int(times.min()) // MINUTE_NS * MINUTE_NS  # type: ignore[arg-type]
    end = (int(times.max()) // MINUTE_NS + 1) * MINUTE_NS  # type: ignore[arg-type]
    symbols = trades["symbol"].unique().to_list()
    covered = pl.DataFrame({"exchange": "bitfinex", "symbol": symbols, "start": start, "end": end})
    horizon = pl.DataFrame({"exchange": "bitfinex", "symbol": symbols, "horizon": end})
    candles = candles_1m(trades, covered, horizon, start_ns=start, end_ns=end)
    traded = candles.filter(pl.col("trade_count") > 0)
    reference: dict[tuple[str, int], list[tuple[int, int, Decimal, Decimal]]] = {}
    for f in _frames(REAL):
        if not f.startswith("[") or '"hb"' in f:
            continue
        body = split_seq(exact(f))[0]
        if isinstance(body[1], list) and body[1] and isinstance(body[1][0], list) and len(body[1][0]) == 4:
            symbol = X.normalize_symbol(next(s for c, s, g in _routed(REAL) if g == f))
            for tid, mts, amount, price in body[1]:
                t = int(mts) * 1_000_000
                reference.setdefault((symbol, t - t % MINUTE_NS), []).append(
                    (t, int(tid), Decimal(price), abs(Decimal(amount)))
                )
    assert traded.height == len(reference) > 20
    for row in traded.iter_rows(named=True):
        ref = sorted(reference[(row["symbol"], int(row["open_time"].timestamp() * 1e9))])
        assert row["open"] == ref[0][2] and row["close"] == ref[-1][2]
        assert row["high"] == max(r[2] for r in ref) and row["low"] == min(r[2] for r in ref)
        assert row["volume"] == sum(r[3] for r in ref) and row["trade_count"] == len(ref)


# -- the import of the recordings --------------------------------------------------------------------------------


def test_import_of_the_real_recording(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    stats = import_capture([REAL], "bitfinex", lake)
    assert stats is not None
    raw = read_raw(lake, *ALL_TIME)
    assert raw.height == 1693 and raw.filter(pl.col("channel") == "pending").height == 2
    events = read_events(lake, *ALL_TIME)
    subscribed = events.filter(pl.col("kind") == "subscribed").select("channel", "symbol").unique()
    assert set(subscribed.rows()) >= {(c.channel, c.symbol) for c in SUBS}
    kinds = events.filter(pl.col("kind").is_in(["gap", "checksum", "synced"]))["kind"].to_list()
    assert kinds == ["synced"] * 7
    assert X.normalize_trades(raw).height == 210


# -- REST trade history ------------------------------------------------------------------------------------------


def test_history_pages_through_the_replay_and_proves_by_time() -> None:
    async def scenario() -> list[tuple[int, tuple[int, int] | None, list[str]]]:
        async with ReplayServer([BUILT], speed=0, verbose=False) as server:
            history = BitfinexTradeHistory(limit=4)
            out = []
            async with RestClient() as client:
                start, end = 1618677553331 * 1_000_000, 1618677571582 * 1_000_000
                async for page in history.fetch(client, "tTESTBTC:TESTUSD", start, end, base_url=server.rest_base):
                    out.append((len(page.records), page.proven, [str(r["id"]) for r in page.records]))
                    encoded = history.encode(page.records)
                    assert X.normalize_trades(_raw_rows(_row(encoded, 1, "tTESTBTC:TESTUSD"))).height == len(
                        page.records
                    )
            return out

    pages = asyncio.run(scenario())
    start, end = 1618677553331 * 1_000_000, 1618677571582 * 1_000_000
    # a full page (4 of limit 4) proves up to its last millisecond; the next starts there again (ids seen dropped);
    # the short page proves the span whole
    assert pages == [
        (4, (start, 1618677564831 * 1_000_000), ["670155107", "670155114", "670155121", "670155128"]),
        (2, (start, end), ["670155135", "670155142"]),
    ]


def test_import_and_lines_of_the_built_capture_are_documented() -> None:
    readme = (DATA / "README.md").read_text()
    assert "built from" in readme and "make_capture.py" in readme
    head = gzip.decompress(BUILT.read_bytes()).decode().splitlines()[1]
    assert '"flags":196608' in head
