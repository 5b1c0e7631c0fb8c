"""Binance order-book sync on the real recordings: the rebuilt book must equal every bookTicker at the same
update id, and the collector's session must reach "synced" with zero errors; removed diffs must be caught."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from _exchange_util import binance, is_snapshot

from mdplatform.exchanges import (
    GAP,
    SYNCED,
    BinanceBookBuilder,
    BinanceExchange,
    BinanceSession,
    DiffVerdict,
    SessionAction,
    SnapshotVerdict,
    StreamEvent,
    Subscription,
)

Lines = Callable[[str], tuple[tuple[int, str], ...]]
REST = "http://127.0.0.1:9/depth"  # the collector substitutes a test base; nothing is fetched here

# recording -> (registry id, symbol, bookTicker points sharing an update id with an applied diff)
CASES = {
    "spot/btcusdt": ("binance", "BTCUSDT", 1_072),
    "spot/ethusdt": ("binance", "ETHUSDT", 1_056),
    "usdm/btcusdt": ("binance-usdm", "BTCUSDT", 629),
    "usdm/ethusdt": ("binance-usdm", "ETHUSDT", 551),
    "cm/btcusd_perp": ("binance-coinm", "BTCUSD_PERP", 1_885),
}


def _depth_frames(x: BinanceExchange, lines: tuple[tuple[int, str], ...]) -> list[str]:
    return [f for _, f in lines if not is_snapshot(f) and x.route(f)[0] == "depth"]


@pytest.mark.parametrize("name", list(CASES))
def test_rebuilt_book_equals_every_book_ticker(hft: Lines, name: str) -> None:
    xid, symbol, expected_points = CASES[name]
    x = binance(xid)
    builder = x.book_builder(symbol)
    tops: dict[int, tuple[float, float, float, float]] = {}
    tickers: dict[int, tuple[float, float, float, float]] = {}

    def record_top() -> None:
        bid, ask = builder.book.best_bid(), builder.book.best_ask()
        assert bid is not None and ask is not None and builder.book.update_id is not None
        tops[builder.book.update_id] = (*bid, *ask)

    fetches = 0
    for _, frame in hft(name):
        if is_snapshot(frame):
            assert builder.on_snapshot(frame) == SnapshotVerdict.SYNCED
            record_top()
            continue
        channel, sym = x.route(frame)
        assert sym == symbol
        if channel == "depth":
            verdict = builder.on_depth(frame)
            assert verdict != DiffVerdict.GAP
            fetches += verdict == DiffVerdict.FETCH
            if verdict == DiffVerdict.APPLY:
                record_top()
        elif channel == "bookTicker":
            d = orjson.loads(frame)["data"]
            tickers[d["u"]] = (float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"]))
    common = sorted(set(tops) & set(tickers))
    mismatches = [(u, tops[u], tickers[u]) for u in common if tops[u] != tickers[u]]
    print(f"{name}: {len(common) - len(mismatches)} of {len(common)} bookTicker points match")
    assert mismatches == []
    assert len(common) == expected_points
    assert builder.state == "synced" and builder.gaps == 0 and fetches == 1
    assert not builder.book.is_crossed()


@pytest.mark.parametrize("name", list(CASES))
def test_session_reaches_synced_without_errors(hft: Lines, name: str) -> None:
    xid, symbol, _ = CASES[name]
    x = binance(xid)
    subs = [Subscription(c, symbol) for c in ("trade", "depth", "bookTicker")]
    session = x.new_session(subs, REST)
    assert isinstance(session, BinanceSession)
    assert session.sync_state() == {symbol: "buffering"}
    builder = x.book_builder(symbol)
    actions: list[SessionAction] = []
    for _, frame in hft(name):
        if is_snapshot(frame):
            action = session.on_snapshot(symbol, frame)
            builder.on_snapshot(frame)
        else:
            channel, sym = x.route(frame)
            action = session.on_frame(channel, sym, frame)
            if channel == "depth":
                builder.on_depth(frame)
        if action is not None:
            actions.append(action)
    assert actions == [
        SessionAction(fetch_snapshot=(symbol, f"{REST}?symbol={symbol}&limit=1000")),
        SessionAction(events=(StreamEvent(SYNCED, "depth", symbol),)),  # the snapshot synced the book
    ]
    assert session.errors == 0
    assert session.sync_state() == {symbol: "synced"}
    # the id-only session and the full builder agree on where the book is
    assert session.last_update_id(symbol) == builder.book.update_id


@pytest.mark.parametrize("name", ["spot/btcusdt", "usdm/btcusdt", "cm/btcusd_perp"])
def test_removed_diff_is_a_gap_and_asks_for_a_snapshot(hft: Lines, name: str) -> None:
    xid, symbol, _ = CASES[name]
    x = binance(xid)
    lines = hft(name)
    snap_at = next(i for i, (_, f) in enumerate(lines) if is_snapshot(f))
    depth_after = [i for i in range(snap_at + 1, len(lines)) if x.route(lines[i][1])[0] == "depth"]
    removed = depth_after[500]
    session = x.new_session([Subscription("depth", symbol)], REST)
    builder = x.book_builder(symbol)
    gap_action: SessionAction | None = None
    gap_verdict = None
    next_depth = depth_after[501]
    for i, (_, frame) in enumerate(lines[: next_depth + 1]):
        if i == removed:
            continue
        if is_snapshot(frame):
            session.on_snapshot(symbol, frame)
            builder.on_snapshot(frame)
            continue
        channel, sym = x.route(frame)
        if channel != "depth":
            continue
        action = session.on_frame(channel, sym, frame)
        verdict = builder.on_depth(frame)
        if i == next_depth:
            gap_action, gap_verdict = action, verdict
    assert gap_verdict == DiffVerdict.GAP
    assert gap_action is not None and gap_action.error is not None
    assert gap_action.error.startswith(f"gap {xid} {symbol}: ")
    assert ("pu=" in gap_action.error) == x.futures
    assert gap_action.fetch_snapshot == (symbol, f"{REST}?symbol={symbol}&limit=1000")
    (event,) = gap_action.events
    assert (event.kind, event.channel, event.symbol) == (GAP, "depth", symbol)
    assert event.detail and gap_action.error == f"gap {xid} {symbol}: {event.detail}; resyncing"
    assert session.sync_state() == {symbol: "resyncing"}
    assert session.errors == 1
    assert builder.state == "resyncing" and builder.needs_snapshot and builder.gaps == 1
    assert builder.book.best_bid() is None  # an out-of-sync book is not served


def test_snapshot_older_than_the_buffer_is_fetched_again(hft: Lines) -> None:
    x = binance("binance")
    lines = hft("spot/btcusdt")
    snapshot = next(f for _, f in lines if is_snapshot(f))
    last_update_id = orjson.loads(snapshot)["lastUpdateId"]
    # the stream opened later: its first diff starts after the snapshot
    later = [f for f in _depth_frames(x, lines) if orjson.loads(f)["data"]["U"] > last_update_id + 1][:5]
    session = x.new_session([Subscription("depth", "BTCUSDT")], REST)
    first = [session.on_frame("depth", "BTCUSDT", f) for f in later]
    assert first[0] == SessionAction(fetch_snapshot=("BTCUSDT", f"{REST}?symbol=BTCUSDT&limit=1000"))
    assert first[1:] == [None] * 4
    again = session.on_snapshot("BTCUSDT", snapshot)
    assert again == SessionAction(fetch_snapshot=("BTCUSDT", f"{REST}?symbol=BTCUSDT&limit=1000"))
    assert session.errors == 0 and session.sync_state() == {"BTCUSDT": "buffering"}


def test_hole_in_the_buffer_is_a_gap(hft: Lines) -> None:
    x = binance("binance")
    lines = hft("spot/btcusdt")
    snap_at = next(i for i, (_, f) in enumerate(lines) if is_snapshot(f))
    snapshot = lines[snap_at][1]
    last_update_id = orjson.loads(snapshot)["lastUpdateId"]
    depth = _depth_frames(x, lines)
    ids = [(orjson.loads(f)["data"]["U"], orjson.loads(f)["data"]["u"]) for f in depth]
    straddling = [i for i, (U, u) in enumerate(ids) if U <= last_update_id + 1 <= u]
    assert straddling == [2]

    # snapshot in its recorded place, the diff that straddles it lost: the next live diff is a gap
    builder = x.book_builder("BTCUSDT")
    for f in depth[:2]:
        builder.on_depth(f)
    assert builder.on_snapshot(snapshot) == SnapshotVerdict.SYNCED
    assert builder.on_depth(depth[3]) == DiffVerdict.GAP

    # a slower snapshot: the hole is inside the buffer when it arrives
    builder = x.book_builder("BTCUSDT")
    for f in depth[:2] + depth[3:8]:
        builder.on_depth(f)
    assert builder.on_snapshot(snapshot) == SnapshotVerdict.GAP
    assert builder.state == "buffering" and builder.needs_snapshot
    assert "jump from lastUpdateId" in builder.sync.gap_detail
    assert builder.book.best_bid() is None
    assert builder.sync.buffered == 5

    # the same slower snapshot without the hole syncs and applies the buffered diffs after it
    builder = x.book_builder("BTCUSDT")
    for f in depth[:8]:
        builder.on_depth(f)
    assert builder.on_snapshot(snapshot) == SnapshotVerdict.SYNCED
    assert builder.applied == 6 and builder.book.update_id == ids[7][1]


def test_unusable_snapshot_body_is_an_error_not_a_loop() -> None:
    x = binance("binance")
    session = x.new_session([Subscription("depth", "BTCUSDT")], REST)
    action = session.on_snapshot("BTCUSDT", '{"code":-1121,"msg":"Invalid symbol."}')
    assert action is not None and action.fetch_snapshot is None
    assert action.error is not None and "without lastUpdateId" in action.error


def _cryptofeed_rest(shared_data: Path, name: str) -> list[tuple[int, str, str]]:
    """(time ns, symbol, body) of the REST snapshots in a cryptofeed ``*.http.*`` sample."""
    out = []
    with gzip.open(shared_data / "cryptofeed-samples" / name, "rt") as f:
        for line in f:
            if m := re.match(r"^(\S+) -> (\d+)\.(\d+): (.*)$", line.rstrip("\n")):
                symbol = re.search(r"symbol=(\w+)", m.group(1))
                assert symbol is not None
                ns = int(m.group(2)) * 10**9 + int((m.group(3) + "0" * 9)[:9])
                out.append((ns, symbol.group(1), m.group(4)))
    return out


@pytest.mark.parametrize(
    ("ws", "http", "xid"),
    [
        ("BINANCE.ws.1.0.gz", "BINANCE.http.0.0.gz", "binance"),
        ("BINANCE_FUTURES.ws.1.0.gz", "BINANCE_FUTURES.http.0.0.gz", "binance-usdm"),
    ],
)
def test_session_on_cryptofeed_multi_symbol_streams(
    shared_data: Path,
    cryptofeed: Callable[[str], tuple[tuple[str, int, str], ...]],
    ws: str,
    http: str,
    xid: str,
) -> None:
    x = binance(xid)
    frames = [(ts, "", text) for kind, ts, text in cryptofeed(ws) if kind == "recv"]
    snapshots = _cryptofeed_rest(shared_data, http)
    session = x.new_session([], REST)
    builders: dict[str, BinanceBookBuilder] = {}
    fetched = []
    for _, symbol, body in sorted(frames + snapshots, key=lambda e: e[0]):
        if symbol:
            assert session.on_snapshot(symbol, body) == SessionAction(events=(StreamEvent(SYNCED, "depth", symbol),))
            builders[symbol].on_snapshot(body)
            continue
        channel, sym = x.route(body)
        action = session.on_frame(channel, sym, body)
        if channel == "depth":
            builders.setdefault(sym, x.book_builder(sym)).on_depth(body)
        if action is not None:
            assert action.error is None and action.fetch_snapshot is not None
            fetched.append(action.fetch_snapshot[0])
    assert sorted(fetched) == sorted(s for _, s, _ in snapshots)
    assert session.errors == 0
    assert set(session.sync_state().values()) == {"synced"} and len(session.sync_state()) == 4
    assert all(b.state == "synced" and not b.book.is_crossed() for b in builders.values())


@pytest.mark.parametrize("name", ["spot/btcusdt", "usdm/btcusdt"])
def test_snapshot_newer_than_the_buffer_waits_for_the_first_live_diff(hft: Lines, name: str) -> None:
    xid, symbol, _ = CASES[name]
    x = binance(xid)
    lines = hft(name)
    snapshot = next(f for _, f in lines if is_snapshot(f))
    last_update_id = orjson.loads(snapshot)["lastUpdateId"]
    depth = _depth_frames(x, lines)
    finals = [orjson.loads(f)["data"]["u"] for f in depth]
    # spot drops u <= lastUpdateId, futures u < lastUpdateId
    covered = sum(u <= last_update_id if not x.futures else u < last_update_id for u in finals)
    assert covered >= 1
    builder = x.book_builder(symbol)
    for f in depth[:covered]:
        builder.on_depth(f)
    assert builder.on_snapshot(snapshot) == SnapshotVerdict.SYNCED
    assert builder.applied == 0 and builder.book.update_id == last_update_id
    verdicts = [builder.on_depth(f) for f in depth[covered:]]
    assert set(verdicts) == {DiffVerdict.APPLY}
    assert builder.book.update_id == finals[-1] and builder.gaps == 0


def _snapshot_body(builder: BinanceBookBuilder) -> str:
    """A REST depth reply for the builder's book as it stands (what Binance would have answered then)."""
    book = builder.book
    return orjson.dumps({"lastUpdateId": book.update_id, "bids": book.raw_bids(), "asks": book.raw_asks()}).decode()


def test_forced_gap_reports_gap_then_synced_after_a_later_snapshot(hft: Lines) -> None:
    """Spot BTCUSDT with one depth frame removed: the session reports GAP (and refetches); the snapshot that
    answers it (built from an intact replay of the same recording at that moment) reports SYNCED, and the
    resynced book equals the intact one to the end of the recording."""
    x = binance("binance")
    symbol = "BTCUSDT"
    lines = hft("spot/btcusdt")
    snap_at = next(i for i, (_, f) in enumerate(lines) if is_snapshot(f))
    depth_after = [i for i in range(snap_at + 1, len(lines)) if x.route(lines[i][1])[0] == "depth"]
    removed = depth_after[300]
    answered_at = depth_after[320]  # the refetched snapshot arrives 20 diffs after the gap

    session = x.new_session([Subscription("depth", symbol)], REST)
    intact = x.book_builder(symbol, keep_raw=True)  # the exchange's own book
    gapped = x.book_builder(symbol)
    events: list[StreamEvent] = []
    fetches = []
    for i, (_, frame) in enumerate(lines):
        if is_snapshot(frame):
            assert intact.on_snapshot(frame) == gapped.on_snapshot(frame) == SnapshotVerdict.SYNCED
            action = session.on_snapshot(symbol, frame)
        elif x.route(frame)[0] != "depth":
            continue
        else:
            intact.on_depth(frame)
            if i == removed:
                continue
            gapped.on_depth(frame)
            action = session.on_frame("depth", symbol, frame)
        if action is not None:
            events += action.events
            if action.fetch_snapshot is not None:
                fetches.append(i)
        if i == answered_at:
            body = _snapshot_body(intact)
            assert gapped.on_snapshot(body) == SnapshotVerdict.SYNCED
            action = session.on_snapshot(symbol, body)
            assert action == SessionAction(events=(StreamEvent(SYNCED, "depth", symbol),))
            events += action.events
    assert [e.kind for e in events] == [SYNCED, GAP, SYNCED]
    assert events[1].channel == "depth" and events[1].symbol == symbol
    # the gap names the diff after the removed one against the last one applied
    after = orjson.loads(lines[depth_after[301]][1])["data"]
    before = orjson.loads(lines[depth_after[299]][1])["data"]
    assert events[1].detail == f"U={after['U']} > previous u+1={before['u'] + 1} (u={after['u']})"
    # one fetch when the stream opened, one for the gap
    first_depth = next(i for i, (_, f) in enumerate(lines) if not is_snapshot(f) and x.route(f)[0] == "depth")
    assert fetches == [first_depth, depth_after[301]]
    assert session.errors == 1 and session.sync_state() == {symbol: "synced"}
    assert gapped.state == "synced" and gapped.gaps == 1
    assert session.last_update_id(symbol) == intact.book.update_id == gapped.book.update_id
    assert gapped.book.bids() == intact.book.bids() and gapped.book.asks() == intact.book.asks()
