"""OKX on the cryptofeed recording OKX.ws.1.0 (2022-05-13, v5 public: books, trades, tickers)."""

from __future__ import annotations

import timeit
from collections.abc import Callable
from decimal import Decimal

import orjson
import polars as pl
import pytest

from mdplatform.exchanges import (
    CHECKSUM,
    GAP,
    NORMALIZED_TRADES,
    SYNCED,
    BookDelta,
    BookSnapshot,
    OkxExchange,
    OkxSession,
    SessionAction,
    StreamEvent,
    Subscription,
    Ticker,
    Trade,
    get_exchange,
    okx_checksum,
)
from mdplatform.schemas import REJECTS

CfLines = Callable[[str], tuple[tuple[str, int, str], ...]]
INSTS = ("BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT")
SUBS = [Subscription(c, i) for c in ("tickers", "trades", "books") for i in INSTS]


@pytest.fixture(scope="module")
def okx() -> OkxExchange:
    x = get_exchange("okx")
    assert isinstance(x, OkxExchange)
    return x


@pytest.fixture(scope="module")
def received(cryptofeed: CfLines) -> list[tuple[int, str]]:
    return [(ts, text) for kind, ts, text in cryptofeed("OKX.ws.1.0.gz") if kind == "recv"]


def test_subscribe_message_matches_the_recorded_one(okx: OkxExchange, cryptofeed: CfLines) -> None:
    sent = [text for kind, _, text in cryptofeed("OKX.ws.1.0.gz") if kind == "sent"]
    # cryptofeed's last request subscribed all nine channels in this order
    assert okx.subscribe_messages(SUBS) == [sent[-1]]
    unsub = orjson.loads(okx.unsubscribe_messages(SUBS[:1])[0])
    assert unsub == {"op": "unsubscribe", "args": [{"channel": "tickers", "instId": "BTC-USD-220527"}]}


def test_route_every_frame(okx: OkxExchange, received: list[tuple[int, str]]) -> None:
    counts: dict[tuple[str, str], int] = {}
    for _, frame in received:
        route = okx.route(frame)
        msg = orjson.loads(frame)
        if "event" in msg:
            assert route == ("control", "")
        else:
            assert route == (msg["arg"]["channel"], msg["arg"]["instId"])
        counts[route] = counts.get(route, 0) + 1
    assert counts[("control", "")] == 18
    assert sum(n for (c, _), n in counts.items() if c == "books") == 290
    assert okx.route("pong") == ("control", "")
    # another key order still routes
    assert okx.route('{"arg":{"instId":"BTC-USDT","channel":"trades"},"data":[]}') == ("trades", "BTC-USDT")
    assert okx.route('{"data":[],"arg":{"channel":"books","instId":"X-Y"}}') == ("books", "X-Y")


def test_route_speed(okx: OkxExchange, received: list[tuple[int, str]]) -> None:
    frames = [f for _, f in received] * 20
    route = okx.route
    seconds = min(timeit.repeat(lambda: [route(f) for f in frames], number=1, repeat=3))
    per_frame_us = seconds / len(frames) * 1e6
    print(f"okx route: {per_frame_us:.3f} us/frame")
    assert per_frame_us < 5.0


def test_checksum_verifies_on_every_books_message(okx: OkxExchange, received: list[tuple[int, str]]) -> None:
    session = okx.new_session(SUBS, None)
    assert isinstance(session, OkxSession)
    assert session.sync_state() == dict.fromkeys(INSTS, "buffering")
    events: list[StreamEvent] = []
    for _, frame in received:
        channel, inst = okx.route(frame)
        action = session.on_frame(channel, inst, frame)
        if action is not None:
            # a snapshot that loads a book is reported; nothing else is asked for
            assert '"action":"snapshot"' in frame and action == SessionAction(events=action.events)
            events += action.events
    assert sorted(events, key=lambda e: e.symbol) == [StreamEvent(SYNCED, "books", i) for i in sorted(INSTS)]
    assert session.checksums_verified == 290
    assert session.errors == 0
    assert session.sync_state() == dict.fromkeys(INSTS, "synced")
    book = session.book("BTC-USDT")
    assert book is not None and not book.is_crossed()


def test_checksum_of_snapshots_directly(okx: OkxExchange, received: list[tuple[int, str]]) -> None:
    snapshots = [orjson.loads(f) for _, f in received if '"action":"snapshot"' in f]
    assert len(snapshots) == 3
    for msg in snapshots:
        d = msg["data"][0]
        bids = [(p, q) for p, q, *_ in d["bids"]]
        asks = [(p, q) for p, q, *_ in d["asks"]]
        assert okx_checksum(bids, asks) == d["checksum"]
        assert okx_checksum(bids[:3], asks[:3]) != d["checksum"]


def _first_update(received: list[tuple[int, str]], inst: str) -> int:
    return next(i for i, (_, f) in enumerate(received) if '"action":"update"' in f and f'"instId":"{inst}"' in f[:60])


def test_corrupted_message_fails_resubscribes_and_recovers(okx: OkxExchange, received: list[tuple[int, str]]) -> None:
    session = okx.new_session(SUBS, None)
    bad_at = _first_update(received, "BTC-USDT")
    msg = orjson.loads(received[bad_at][1])
    price, size, *rest = msg["data"][0]["asks"][0]
    msg["data"][0]["asks"][0] = [price, str(float(size) + 1.0), *rest]
    corrupted = orjson.dumps(msg).decode()

    actions: list[SessionAction] = []
    for i, (_, frame) in enumerate(received):
        channel, inst = okx.route(frame)
        action = session.on_frame(channel, inst, corrupted if i == bad_at else frame)
        if action is not None and action.events != (StreamEvent(SYNCED, "books", inst),):
            actions.append(action)
    assert len(actions) == 1
    (action,) = actions
    assert action.error is not None and action.error.startswith("okx books BTC-USDT: checksum mismatch")
    (event,) = action.events
    assert (event.kind, event.channel, event.symbol) == (CHECKSUM, "books", "BTC-USDT")
    assert event.detail.startswith("checksum mismatch: received ")
    assert action.send == (
        '{"op":"unsubscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}',
        '{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}',
    )
    assert action.fetch_snapshot is None
    # the broken book is dropped; the updates that follow are ignored until a new snapshot; others go on
    assert session.sync_state() == {
        "BTC-USD-220527": "synced",
        "UNI-USD-SWAP": "synced",
        "BTC-USDT": "resyncing",
    }
    assert session.book("BTC-USDT") is None
    assert session.errors == 1

    # the snapshot that follows a resubscribe restores the book (replayed from the recording)
    verified = session.checksums_verified
    replayed = []
    for _, frame in received:
        channel, inst = okx.route(frame)
        if inst == "BTC-USDT":
            replayed.append(session.on_frame(channel, inst, frame))
    assert [a for a in replayed if a is not None] == [SessionAction(events=(StreamEvent(SYNCED, "books", "BTC-USDT"),))]
    assert session.sync_state()["BTC-USDT"] == "synced"
    assert session.checksums_verified - verified == sum(1 for _, f in received if okx.route(f) == ("books", "BTC-USDT"))


def _with_seq_ids(received: list[tuple[int, str]], inst: str) -> list[str]:
    """The recording's books frames of one instrument with seqId/prevSeqId as OKX sends them since 2023
    (the 2022 recording predates them): snapshot prevSeqId -1, then each prevSeqId = the previous seqId."""
    out = []
    seq = 1000
    for _, frame in received:
        if okx_route(frame) != ("books", inst):
            continue
        msg = orjson.loads(frame)
        d = msg["data"][0]
        d["prevSeqId"] = -1 if msg["action"] == "snapshot" else seq
        seq += 7
        d["seqId"] = seq
        out.append(orjson.dumps(msg).decode())
    return out


def okx_route(frame: str) -> tuple[str, str]:
    return get_exchange("okx").route(frame)


def test_seq_ids_are_checked_when_present(okx: OkxExchange, received: list[tuple[int, str]]) -> None:
    frames = _with_seq_ids(received, "UNI-USD-SWAP")
    session = okx.new_session([Subscription("books", "UNI-USD-SWAP")], None)
    synced = SessionAction(events=(StreamEvent(SYNCED, "books", "UNI-USD-SWAP"),))
    assert session.on_frame("books", "UNI-USD-SWAP", frames[0]) == synced  # the snapshot
    for frame in frames[1:10]:
        assert session.on_frame("books", "UNI-USD-SWAP", frame) is None
    # no change for a while: OKX repeats the seqId with empty sides (documented keep-alive update)
    last = orjson.loads(frames[9])["data"][0]
    idle = {
        "arg": {"channel": "books", "instId": "UNI-USD-SWAP"},
        "action": "update",
        "data": [
            {
                "asks": [],
                "bids": [],
                "ts": last["ts"],
                "checksum": last["checksum"],
                "prevSeqId": last["seqId"],
                "seqId": last["seqId"],
            }
        ],
    }
    assert session.on_frame("books", "UNI-USD-SWAP", orjson.dumps(idle).decode()) is None
    book = session.book("UNI-USD-SWAP")
    assert book is not None and book.update_id == last["seqId"]
    # frame 10 lost: frame 11's prevSeqId does not follow
    action = session.on_frame("books", "UNI-USD-SWAP", frames[11])
    assert action is not None and action.error is not None
    assert "sequence gap: prevSeqId=" in action.error
    assert len(action.send) == 2
    gap_detail = (
        f"sequence gap: prevSeqId={orjson.loads(frames[11])['data'][0]['prevSeqId']} != previous seqId={last['seqId']}"
    )
    assert action.events == (StreamEvent(GAP, "books", "UNI-USD-SWAP", gap_detail),)
    assert session.sync_state() == {"UNI-USD-SWAP": "resyncing"}
    assert session.on_frame("books", "UNI-USD-SWAP", frames[12]) is None  # ignored until a snapshot
    # the snapshot a resubscribe brings (its seqIds restart the chain) syncs it again
    assert session.on_frame("books", "UNI-USD-SWAP", frames[0]) == synced
    assert session.sync_state() == {"UNI-USD-SWAP": "synced"}
    assert [session.on_frame("books", "UNI-USD-SWAP", f) for f in frames[1:10]] == [None] * 9


def test_parse_events(okx: OkxExchange, received: list[tuple[int, str]]) -> None:
    events = [e for _, f in received for e in okx.parse(f)]
    kinds = {k: sum(type(e) is k for e in events) for k in (Trade, BookSnapshot, BookDelta, Ticker)}
    assert kinds == {Trade: 74, BookSnapshot: 3, BookDelta: 287, Ticker: 28}
    first_trade = next(e for e in events if isinstance(e, Trade))
    assert first_trade == Trade(
        exchange="okx",
        channel="trades",
        symbol="BTC-USD-220527",
        ts=1652459199958 * 1_000_000,
        trade_id="7849",
        price=Decimal("30218.8"),
        size=Decimal("1"),
        side="buy",
        fills=1,  # the 2022 recording predates "count"
    )
    delta = next(e for e in events if isinstance(e, BookDelta))
    assert delta.symbol == "BTC-USD-220527" and delta.checksum == -914047754
    assert delta.asks[0] == (30249.4, 0.0) and delta.ts == 1652459225464 * 1_000_000
    ticker = next(e for e in events if isinstance(e, Ticker))
    assert (ticker.bid_price, ticker.bid_size, ticker.ask_price, ticker.ask_size, ticker.last_price) == (
        30210.4,
        4.0,
        30220.1,
        3.0,
        30218.8,
    )
    assert okx.parse("pong") == []
    assert okx.parse('{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"}}') == []


def test_normalize_trades_equals_per_message_parse(
    okx: OkxExchange, received: list[tuple[int, str]], to_raw: Callable[..., pl.DataFrame]
) -> None:
    raw = to_raw(okx, received)
    trades, rejects = okx.normalize_trades_with_rejects(raw)
    assert rejects.height == 0
    assert trades.schema == pl.Schema(NORMALIZED_TRADES)
    expected = [(ts, e) for ts, f in received for e in okx.parse(f) if isinstance(e, Trade)]
    assert trades.height == len(expected) == 74
    assert trades.get_column("symbol").to_list() == [okx.normalize_symbol(e.symbol) for _, e in expected]
    assert set(trades.get_column("symbol")) == {"BTC-USDT", "BTC-USD-220527", "UNI-USD-PERP"}
    assert trades.get_column("trade_id").to_list() == [e.trade_id for _, e in expected]
    assert trades.get_column("price").to_list() == [e.price for _, e in expected]
    assert trades.get_column("size").to_list() == [e.size for _, e in expected]
    assert trades.get_column("side").to_list() == [e.side for _, e in expected]
    assert trades.get_column("ts").dt.epoch("ns").to_list() == [e.ts for _, e in expected]
    assert trades.get_column("recv_ts").dt.epoch("ns").to_list() == [ts for ts, _ in expected]
    # exact: the wire strings themselves
    wire = [(d["px"], d["sz"]) for _, f in received if okx.route(f)[0] == "trades" for d in orjson.loads(f)["data"]]
    assert list(zip(trades.get_column("price"), trades.get_column("size"), strict=True)) == [
        (Decimal(p), Decimal(q)) for p, q in wire
    ]
    assert trades.get_column("fills").to_list() == [1] * 74  # no "count" in 2022
    for name in ("seq_id", "fill_first", "fill_last"):
        assert trades.get_column(name).null_count() == 74  # OKX promises no contiguous ids
    assert trades.get_column("channel").unique().to_list() == ["trades"]


def test_trade_lists_explode_and_bad_rows_are_rejected(
    okx: OkxExchange, received: list[tuple[int, str]], to_raw: Callable[..., pl.DataFrame]
) -> None:
    trade_frames = [(ts, f) for ts, f in received if okx.route(f) == ("trades", "BTC-USDT")]
    a, b = (orjson.loads(f) for _, f in trade_frames[:2])
    # OKX documents data as a list: two fills in one push
    merged = orjson.dumps({"arg": a["arg"], "data": a["data"] + b["data"]}).decode()
    good = trade_frames[0][1]
    broken = [
        good[:60],  # truncated
        good.replace('"data":[', '"data":[7,'),  # not a list of objects
        orjson.dumps({"arg": a["arg"], "data": []}).decode(),
        good.replace(f'"px":"{a["data"][0]["px"]}"', '"px":"abc"'),
        good.replace('"side":"buy"', '"side":"hold"').replace('"side":"sell"', '"side":"hold"'),
        '{"event":"error","msg":"Wrong URL or channel","code":"60018"}',
        good.replace(f'"tradeId":"{a["data"][0]["tradeId"]}",', ""),
    ]
    rows = [(1, merged)] + [(2 + i, f) for i, f in enumerate(broken)]
    raw = to_raw(okx, rows).with_columns(channel=pl.lit("trades"), symbol=pl.lit("BTC-USDT"))
    trades, rejects = okx.normalize_trades_with_rejects(raw)
    assert trades.get_column("trade_id").to_list() == [a["data"][0]["tradeId"], b["data"][0]["tradeId"]]
    assert trades.get_column("recv_ts").dt.epoch("ns").to_list() == [1, 1]
    assert rejects.schema == pl.Schema(REJECTS)
    assert rejects.get_column("reason").to_list() == [
        "payload is not a trades push in the documented layout",
        "payload is not a trades push in the documented layout",
        "no trades in data",
        "price is not a plain decimal number: abc",
        "invalid side",
        "payload has no data list",
        "missing trade id",
    ]
    assert rejects.get_column("payload").to_list() == broken


def _snapshot_push(session: OkxSession, inst: str) -> str:
    """The snapshot OKX sends after a resubscribe: the exchange's book as it stands (here: a session fed the
    intact recording), levels in the documented [px, sz, "0", orders] shape, with its checksum."""
    book = session.book(inst)
    assert book is not None
    bids, asks = book.raw_bids(), book.raw_asks()
    data = {
        "bids": [[p, q, "0", "1"] for p, q in bids],
        "asks": [[p, q, "0", "1"] for p, q in asks],
        "checksum": okx_checksum(bids, asks),
    }
    return orjson.dumps({"arg": {"channel": "books", "instId": inst}, "action": "snapshot", "data": [data]}).decode()


def test_corrupted_checksum_reports_checksum_then_synced(okx: OkxExchange, received: list[tuple[int, str]]) -> None:
    """The real books frames with one update's checksum field altered: the session reports CHECKSUM (with the
    resubscribe), ignores that instrument until the next snapshot, reports SYNCED when it arrives, and then
    verifies every later recorded update against the exchange's own book."""
    inst = "UNI-USD-SWAP"
    books = [i for i, (_, f) in enumerate(received) if okx.route(f) == ("books", inst)]
    bad_at = books[5]
    resubscribed_at = books[15]  # the snapshot comes after a few more updates were sent (and ignored)
    msg = orjson.loads(received[bad_at][1])
    real = msg["data"][0]["checksum"]
    msg["data"][0]["checksum"] = real + 1
    corrupted = orjson.dumps(msg).decode()

    session, intact = okx.new_session(SUBS, None), okx.new_session(SUBS, None)
    events: list[StreamEvent] = []
    sends: list[str] = []
    for i, (_, frame) in enumerate(received):
        channel, symbol = okx.route(frame)
        intact.on_frame(channel, symbol, frame)
        action = session.on_frame(channel, symbol, corrupted if i == bad_at else frame)
        if i == resubscribed_at:
            assert action is None and session.sync_state()[inst] == "resyncing"
            action = session.on_frame("books", inst, _snapshot_push(intact, inst))
            assert action == SessionAction(events=(StreamEvent(SYNCED, "books", inst),))
        if action is not None:
            events += action.events
            sends += action.send
    mine = [e for e in events if e.symbol == inst]
    assert [e.kind for e in mine] == [SYNCED, CHECKSUM, SYNCED]
    assert mine[1].channel == "books"
    assert mine[1].detail.startswith(f"checksum mismatch: received {real + 1}, computed ")
    sub = [Subscription("books", inst)]
    assert sends == okx.unsubscribe_messages(sub) + okx.subscribe_messages(sub)
    assert session.errors == 1 and session.sync_state()[inst] == "synced"
    # every recorded update after the snapshot verified, and the book is the exchange's
    # (the frames from the corrupted one to the snapshot were not verified; the snapshot was)
    skipped = len([i for i in books if bad_at <= i <= resubscribed_at])
    assert skipped == 11 and session.checksums_verified == intact.checksums_verified - skipped + 1
    book, want = session.book(inst), intact.book(inst)
    assert book is not None and want is not None
    assert book.raw_bids() == want.raw_bids() and book.raw_asks() == want.raw_asks()
    # the other instruments were never disturbed
    assert sorted(e.symbol for e in events if e.symbol != inst) == ["BTC-USD-220527", "BTC-USDT"]
