"""OKX on the cryptofeed recording OKX.ws.1.0 (2022-05-13, v5 public: books, trades, tickers: real recordings), and
on messages built from OKX's v5 documentation as it is today (the tests after "OKX v5 as documented today" say
which pages)."""

from __future__ import annotations

import timeit
from collections.abc import Callable, Sequence
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
from mdplatform.exchanges.okx import MAX_CHECKSUM_FAILURES, REST_BOOKS_PATH, SNAPSHOT_CHANNEL
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


# --- OKX v5 as documented today (messages built from the documentation, not recorded) ---------------------------
# "WS / Order book channel" (https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel),
# its "Sequence ID" section and worked example; "GET / Order book"; the help-centre checksum deprecation notice
# (checksum 0 from 2026-06-23); the 2026 changelog's "How to manage a local order book correctly" (REST splice).

INST = "BTC-USDT"


def _levels_of(levels: Sequence[tuple[str, str]]) -> list[list[str]]:
    return [[p, q, "0", "1"] for p, q in levels]


def _push(
    action: str, prev: int, seq: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]], **extra: object
) -> str:
    item: dict[str, object] = {"asks": _levels_of(asks), "bids": _levels_of(bids), "ts": "1796119250000", **extra}
    item.update(prevSeqId=prev, seqId=seq)
    return orjson.dumps({"arg": {"channel": "books", "instId": INST}, "action": action, "data": [item]}).decode()


class _Book:
    """The exchange's side of the examples: a book whose pushes carry the checksum OKX computed."""

    def __init__(self) -> None:
        self.bids = {"97000.0": "1.5", "96999.9": "0.2", "96999.5": "3"}
        self.asks = {"97000.1": "0.7", "97000.4": "2.25"}

    def sides(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = sorted(self.bids.items(), key=lambda kv: -Decimal(kv[0]))
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))
        return bids, asks

    def crc(self) -> int:
        return okx_checksum(*self.sides())

    def snapshot(self, seq: int, **extra: object) -> str:
        bids, asks = self.sides()
        return _push("snapshot", -1, seq, bids, asks, checksum=extra.pop("checksum", self.crc()), **extra)

    def update(
        self,
        prev: int,
        seq: int,
        bids: Sequence[tuple[str, str]] = (),
        asks: Sequence[tuple[str, str]] = (),
        **extra: object,
    ) -> str:
        for side, changes in ((self.bids, bids), (self.asks, asks)):
            for p, q in changes:
                if Decimal(q) == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
        checksum = extra.pop("checksum", self.crc())
        return _push("update", prev, seq, list(bids), list(asks), checksum=checksum, **extra)

    def rest(self, seq: int | None) -> str:
        bids, asks = self.sides()
        item: dict[str, object] = {"asks": _levels_of(asks), "bids": _levels_of(bids), "ts": "1796119250000"}
        if seq is not None:
            item["seqId"] = seq
        return orjson.dumps({"code": "0", "msg": "", "data": [item]}).decode()


def _session(okx: OkxExchange, clock: Callable[[], float] | None = None) -> OkxSession:
    session = OkxSession(okx, [Subscription("books", INST)], "http://rest.test", **({"clock": clock} if clock else {}))
    return session


def test_sequence_rules_of_the_documented_example(okx: OkxExchange) -> None:
    """Snapshot prevSeqId -1 seqId 10; update 10 -> 15; no change 15 -> 15 (empty sides); maintenance reset 15 -> 3;
    normal 3 -> 5 (the docs' example): all accepted, the book verifies; then a prevSeqId that is not the previous
    seqId is a gap of that instId only, answered by unsubscribe + subscribe of that channel."""
    ex, session = _Book(), _session(okx)
    synced = SessionAction(events=(StreamEvent(SYNCED, "books", INST),))
    assert session.on_frame("books", INST, ex.snapshot(10)) == synced
    assert session.on_frame("books", INST, ex.update(10, 15, bids=[("97000.0", "1.1")])) is None
    assert session.on_frame("books", INST, ex.update(15, 15)) is None  # keep-alive: empty sides, seqId repeated
    assert session.on_frame("books", INST, ex.update(15, 3, asks=[("97000.1", "0")])) is None  # reset: 3 < 15
    assert session.on_frame("books", INST, ex.update(3, 5, asks=[("97000.2", "0.01")])) is None
    book = session.book(INST)
    assert book is not None and book.update_id == 5
    assert book.raw_bids() == [("97000.0", "1.1"), ("96999.9", "0.2"), ("96999.5", "3")]
    assert book.raw_asks() == [("97000.2", "0.01"), ("97000.4", "2.25")]
    assert session.checksums_verified == 5 and session.errors == 0

    action = session.on_frame("books", INST, ex.update(4, 9, bids=[("96999.9", "0")]))
    assert action is not None and action.fetch_snapshot is None
    assert action.events == (StreamEvent(GAP, "books", INST, "sequence gap: prevSeqId=4 != previous seqId=5"),)
    assert action.send == tuple(okx.unsubscribe_messages([Subscription("books", INST)])) + tuple(
        okx.subscribe_messages([Subscription("books", INST)])
    )
    assert session.sync_state() == {INST: "resyncing"} and session.book(INST) is None
    # the snapshot the resubscribe brings (a new chain) syncs it again
    assert session.on_frame("books", INST, ex.snapshot(40)) == synced
    assert session.on_frame("books", INST, ex.update(40, 41, asks=[("97000.3", "5")])) is None


def test_a_checksum_of_zero_or_none_is_never_a_failure(okx: OkxExchange) -> None:
    """Since 2026-06-23 OKX sends checksum 0 (deprecated): it is not checked, so a book the seqIds keep is never
    resubscribed over it; pushes without the field alike."""
    ex, session = _Book(), _session(okx)
    session.on_frame("books", INST, ex.snapshot(10, checksum=0))
    for n in range(50):
        frame = ex.update(10 + n, 11 + n, bids=[("96999.1", str(n + 1))], checksum=0)
        assert session.on_frame("books", INST, frame) is None
    no_field = orjson.loads(ex.update(60, 61, asks=[("97000.9", "1")]))
    del no_field["data"][0]["checksum"]
    assert session.on_frame("books", INST, orjson.dumps(no_field).decode()) is None
    assert session.errors == 0 and session.checksums_verified == 0 and session.sync_state() == {INST: "synced"}
    book = session.book(INST)
    assert book is not None and ("96999.1", "50") in book.raw_bids()


def test_repeated_checksum_failures_switch_to_the_rest_snapshot(okx: OkxExchange) -> None:
    """A checksum that keeps failing after each resync (no update verified in between) is no longer trusted after
    MAX_CHECKSUM_FAILURES: the book is then taken from GET /api/v5/market/books and kept by the seqIds alone. Never a
    loop: the later wrong checksums are not failures."""
    ex, session = _Book(), _session(okx)
    seq = 10
    kinds: list[str] = []
    for attempt in range(MAX_CHECKSUM_FAILURES):
        session.on_frame("books", INST, ex.snapshot(seq))
        action = session.on_frame("books", INST, ex.update(seq, seq + 1, bids=[("96999.2", "1")], checksum=12345))
        seq += 1
        assert action is not None
        kinds += [e.kind for e in action.events]
        if attempt < MAX_CHECKSUM_FAILURES - 1:
            assert action.send and action.fetch_snapshot is None  # resubscribe
    assert kinds == [CHECKSUM] * MAX_CHECKSUM_FAILURES
    assert (
        action is not None
        and action.send == ()
        and action.fetch_snapshot
        == (
            INST,
            f"http://rest.test{REST_BOOKS_PATH}?instId={INST}&sz=400",
        )
    )
    assert action.events[0].detail.endswith("checksum no longer checked for BTC-USDT")
    # updates go on while the REST call is under way; the snapshot is spliced with them
    later = [ex.update(seq, seq + 2, asks=[("97000.5", "1")], checksum=999), ex.update(seq + 2, seq + 3, checksum=7)]
    assert [session.on_frame("books", INST, f) for f in later] == [None, None]
    reply = session.on_snapshot(INST, ex.rest(seq + 2))
    assert reply is not None and [e.kind for e in reply.events] == [SYNCED]
    assert reply.events[0].detail == f"REST snapshot seqId={seq + 2}, 1 kept updates applied"
    assert session.on_frame("books", INST, ex.update(seq + 3, seq + 4, bids=[("96999.3", "2")], checksum=1)) is None
    book = session.book(INST)
    assert book is not None and book.update_id == seq + 4
    assert (book.raw_bids(), book.raw_asks()) == ex.sides()
    assert session.errors == MAX_CHECKSUM_FAILURES and session.rest_fetches == 1


def test_rest_snapshot_when_no_ws_snapshot_comes(okx: OkxExchange) -> None:
    """OKX after its snapshot delisting: updates only. The first one asks for GET /api/v5/market/books (sz 400 for
    books); refetched while the snapshot is older than the first kept update; buffered updates with seqId <= the
    snapshot's dropped, the first applied straddles it (prevSeqId <= snapshot seqId < seqId)."""
    ex, session = _Book(), _session(okx)
    frames = [ex.update(100 + 3 * n, 103 + 3 * n, bids=[("96999.4", str(n + 1))]) for n in range(6)]
    first = session.on_frame("books", INST, frames[0])
    assert first == SessionAction(fetch_snapshot=(INST, f"http://rest.test{REST_BOOKS_PATH}?instId={INST}&sz=400"))
    assert [session.on_frame("books", INST, f) for f in frames[1:3]] == [None, None]  # kept, asked once
    assert session.sync_state() == {INST: "buffering"}
    # a snapshot older than the first kept update (seqId 99 < prevSeqId 100): asked again
    stale = session.on_snapshot(
        INST, orjson.dumps({"code": "0", "msg": "", "data": [{**orjson.loads(ex.rest(99))["data"][0]}]}).decode()
    )
    assert stale is not None and stale.fetch_snapshot is not None and stale.error is not None and "older" in stale.error
    # the book as of seqId 109 (frames 0..2 applied at the exchange); frames 3..5 follow it
    rebuilt = _Book()
    for f in frames[:3]:
        d = orjson.loads(f)["data"][0]
        rebuilt.update(0, 0, bids=[(level[0], level[1]) for level in d["bids"]])
    assert [session.on_frame("books", INST, f) for f in frames[3:5]] == [None, None]
    synced = session.on_snapshot(INST, rebuilt.rest(109))  # seqId 109: frames 0..2 in it, 3 and 4 kept and applied
    assert synced is not None and [e.kind for e in synced.events] == [SYNCED]
    assert synced.events[0].detail == "REST snapshot seqId=109, 2 kept updates applied"
    assert session.on_frame("books", INST, frames[5]) is None
    book = session.book(INST)
    assert book is not None and book.update_id == 118 and ("96999.4", "6") in book.raw_bids()
    assert session.sync_state() == {INST: "synced"} and session.rest_fetches == 2


def test_a_rest_snapshot_without_seq_id_falls_back_to_resubscribing(okx: OkxExchange) -> None:
    """GET / Order book as documented before seqId was added: it cannot be spliced, so the session resubscribes and
    asks REST no more on this connection (no loop)."""
    ex, session = _Book(), _session(okx)
    assert session.on_frame("books", INST, ex.update(5, 6)) is not None  # fetch
    action = session.on_snapshot(INST, ex.rest(None))
    assert action is not None and action.fetch_snapshot is None and len(action.send) == 2
    assert action.error is not None and "without seqId" in action.error
    assert session.rest_usable is False
    assert [session.on_frame("books", INST, ex.update(6 + n, 7 + n)) for n in range(5)] == [None] * 5
    assert session.on_frame("books", INST, ex.snapshot(20)) == SessionAction(
        events=(StreamEvent(SYNCED, "books", INST),)
    )
    error = session.on_snapshot(INST, '{"code":"50011","msg":"Too Many Requests","data":[]}')
    assert error is None  # synced already: a late reply is ignored


def test_resync_waits_for_the_ws_snapshot_then_takes_rest(okx: OkxExchange) -> None:
    """After a resubscribe, updates already under way keep coming without the snapshot for a while: REST is asked only
    once they still come SNAPSHOT_PATIENCE_S later (or when they stop chaining: a new stream began)."""
    now = [0.0]
    ex, session = _Book(), _session(okx, clock=lambda: now[0])
    session.on_frame("books", INST, ex.snapshot(10))
    assert session.on_frame("books", INST, ex.update(3, 12)) is not None  # gap: resubscribe
    assert session.on_frame("books", INST, ex.update(12, 13)) is None
    now[0] = 4.9
    assert session.on_frame("books", INST, ex.update(13, 14)) is None
    now[0] = 5.0
    action = session.on_frame("books", INST, ex.update(14, 15))
    assert action is not None and action.fetch_snapshot is not None
    # a chain break among the kept updates is a new stream without snapshot: asked at once
    session2 = _session(okx, clock=lambda: 0.0)
    session2.on_frame("books", INST, ex.snapshot(10))
    session2.on_frame("books", INST, ex.update(3, 12))
    assert session2.on_frame("books", INST, ex.update(12, 13)) is None
    action = session2.on_frame("books", INST, ex.update(40, 41))
    assert action is not None and action.fetch_snapshot is not None


def test_builder_splices_landed_rest_snapshots(okx: OkxExchange) -> None:
    """The offline rebuild reads the REST replies the collector lands as ``depthSnapshot`` under the same rules."""
    ex = _Book()
    builder = okx.book_builder(INST)
    assert SNAPSHOT_CHANNEL in builder.channels
    assert builder.on_raw("books", ex.update(50, 52, bids=[("96990.0", "1")])) is None and not builder.valid
    event = builder.on_raw(SNAPSHOT_CHANNEL, ex.rest(52))
    assert event == StreamEvent(SYNCED, "books", INST) and builder.valid
    assert builder.checkpoint() == {"seq": 52, "bridge": 52}  # the next update must straddle the snapshot's seqId
    assert builder.on_raw("books", ex.update(50, 52)) is None  # in the snapshot already: skipped
    assert builder.on_raw("books", ex.update(52, 60, asks=[("97001.0", "3")])) is None
    assert builder.book.update_id == 60 and ("97001.0", "3") in builder.book.raw_asks()
    assert builder.checkpoint() == {"seq": 60}
    gap = builder.on_raw("books", ex.update(61, 62))
    assert gap is not None and gap.kind == GAP and not builder.valid


def test_trades_with_count_swaps_and_taker_side(okx: OkxExchange, to_raw: Callable[..., pl.DataFrame]) -> None:
    """ "WS / Trades channel" as documented today: ``count`` (fills aggregated), ``source``, ``seqId``; a swap."""
    push = {
        "arg": {"channel": "trades", "instId": "BTC-USDT-SWAP"},
        "data": [
            {"instId": "BTC-USDT-SWAP", "tradeId": "130639474", "px": "42219.9", "sz": "0.12060306", "side": "buy",
             "ts": "1630048897897", "count": "3", "source": "0", "seqId": 1234},
            {"instId": "BTC-USDT-SWAP", "tradeId": "130639475", "px": "42219.8", "sz": "12", "side": "sell",
             "ts": "1630048897898", "count": "1", "source": "1", "seqId": 1235},
        ],
    }  # fmt: skip
    raw = to_raw(okx, [(7, orjson.dumps(push).decode())])
    trades, rejects = okx.normalize_trades_with_rejects(raw)
    assert rejects.height == 0
    assert trades.select("symbol", "trade_id", "price", "size", "side", "fills").rows() == [
        ("BTC-USDT-PERP", "130639474", Decimal("42219.9"), Decimal("0.12060306"), "buy", 3),
        ("BTC-USDT-PERP", "130639475", Decimal("42219.8"), Decimal("12"), "sell", 1),
    ]
    assert trades["ts"].dt.epoch("ns").to_list() == [1630048897897_000_000, 1630048897898_000_000]
    items: list[dict[str, object]] = push["data"]  # type: ignore[assignment]
    bad = orjson.dumps({**push, "data": [{**items[0], "count": "0"}]}).decode()
    _, rejects = okx.normalize_trades_with_rejects(to_raw(okx, [(8, bad)]))
    assert rejects["reason"].to_list() == ["count is not a positive integer: 0"]
    assert okx.normalize_symbol("ETH-USD-SWAP") == "ETH-USD-PERP" and okx.normalize_symbol("BTC-USDT") == "BTC-USDT"
