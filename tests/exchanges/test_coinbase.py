"""Coinbase Advanced Trade on messages BUILT FROM THE DOCUMENTATION, not recordings.

No Advanced Trade recording exists in ../shared/data: its COINBASE.ws.28.0.gz is the retired Coinbase Exchange
feed (ws-feed.pro.coinbase.com: level2/l2update/matches), another protocol, used here only to check that it is not
taken for this exchange. tests/data/coinbase/advanced-trade.ws.gz is made by build_capture.py next to it from the
layouts of docs.cdp.coinbase.com "Advanced Trade WebSocket Channels" (subscriptions, heartbeats, l2_data,
market_trades, ticker, candles); the single frames below follow the same pages and the REST reference "Get Public
Market Trades".
"""

from __future__ import annotations

import asyncio
import gzip
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl
import pytest

from mdplatform.backfill import BackfillReport, Gap, heal_gaps
from mdplatform.capture import CaptureError, detect_exchange, import_capture
from mdplatform.contract import GAP, SUB_ERROR, SUBSCRIBED, SYNCED, StreamEvent, Subscription
from mdplatform.exchanges import get_exchange
from mdplatform.exchanges.coinbase import (
    CoinbaseBookBuilder,
    CoinbaseExchange,
    CoinbaseSession,
    CoinbaseTradeHistory,
    rfc3339_ns,
    sequence_num,
)
from mdplatform.history import RestClient
from mdplatform.lake import read_backfill, read_raw
from mdplatform.replay import ReplayServer
from mdplatform.schemas import RAW
from mdplatform.transforms import registry_normalizer, trades_for_window

DATA = Path(__file__).parent.parent / "data" / "coinbase"
CAPTURE = DATA / "advanced-trade.ws.gz"
PRODUCTS = ("BTC-USD", "ETH-USD")
SUBS = [Subscription(c, p) for c in ("market_trades", "level2", "ticker", "candles") for p in PRODUCTS]
#: 2026-03-02T09:59:58Z, the capture's first data frame
T0 = 1_772_445_598_000_000_000
#: the capture's receive lag behind the exchange timestamps
LAG = 30_000_000


@pytest.fixture(scope="module")
def cb() -> CoinbaseExchange:
    x = get_exchange("coinbase")
    assert isinstance(x, CoinbaseExchange)
    return x


@pytest.fixture(scope="module")
def received() -> list[tuple[int, str]]:
    out = []
    with gzip.open(CAPTURE, "rt") as f:
        for line in f:
            if line[0].isdigit():  # a received frame: "<unix time>: <frame>"
                stamp, _, frame = line.rstrip("\n").partition(": ")
                whole, _, frac = stamp.partition(".")
                out.append((int(whole) * 10**9 + int(frac.ljust(9, "0")), frame))
    return out


def _raw(rows: list[tuple[int, str, str, str]]) -> pl.DataFrame:
    """RAW rows (recv_ts, channel, symbol, payload) of one connection."""
    return pl.DataFrame(
        {
            "recv_ts": [r[0] for r in rows],
            "exchange": ["coinbase"] * len(rows),
            "channel": [r[1] for r in rows],
            "symbol": [r[2] for r in rows],
            "conn_id": ["c1"] * len(rows),
            "seq": list(range(1, len(rows) + 1)),
            "payload": [r[3] for r in rows],
        },
        schema=RAW,
    )


def _trades_frame(seq: int, kind: str, trades: list[dict[str, str]]) -> str:
    return orjson.dumps(
        {
            "channel": "market_trades",
            "client_id": "",
            "timestamp": "2023-02-09T20:19:35.39625135Z",
            "sequence_num": seq,
            "events": [{"type": kind, "trades": trades}],
        }
    ).decode()


def _trade(trade_id: str, side: str, price: str = "1260.01", size: str = "0.3") -> dict[str, str]:
    return {"trade_id": trade_id, "product_id": "ETH-USD", "price": price, "size": size, "side": side,
            "time": "2019-08-14T20:42:27.265123456Z"}  # fmt: skip


# -- connecting, routing, times ---------------------------------------------------------------------------


def test_subscribe_one_channel_per_message_then_heartbeats(cb: CoinbaseExchange) -> None:
    messages = [orjson.loads(m) for m in cb.subscribe_messages(SUBS)]
    assert messages == [
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "market_trades"},
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "ticker"},
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "candles"},
        {"type": "subscribe", "channel": "heartbeats"},
    ]
    assert orjson.loads(cb.unsubscribe_messages(SUBS[2:4])[0]) == {
        "type": "unsubscribe",
        "product_ids": ["BTC-USD", "ETH-USD"],
        "channel": "level2",
    }
    with pytest.raises(ValueError, match="unsupported channel 'l2_data'"):
        cb.subscribe_messages([Subscription("l2_data", "BTC-USD")])
    # no ping is documented: the heartbeats channel keeps connections open; 10 s without a frame is dead
    assert cb.keepalive.client_ping is None and cb.keepalive.idle_timeout_s == 10.0
    assert cb.connect_url(SUBS, "ws://127.0.0.1:9") == "ws://127.0.0.1:9"


def test_route_every_frame_of_the_capture(cb: CoinbaseExchange, received: list[tuple[int, str]]) -> None:
    counts: dict[tuple[str, str], int] = {}
    for _, frame in received:
        route = cb.route(frame)
        counts[route] = counts.get(route, 0) + 1
    assert counts == {
        ("control", ""): 5,
        ("l2_data", "BTC-USD"): 340,
        ("l2_data", "ETH-USD"): 171,
        ("market_trades", "BTC-USD"): 228,
        ("market_trades", "ETH-USD"): 99,
        ("ticker", "BTC-USD"): 35,
        ("candles", "BTC-USD"): 18,
        ("heartbeats", ""): 170,
    }
    # spaced JSON and errors
    assert cb.route('{"channel": "l2_data", "events": [{"type": "update", "product_id": "SOL-USD"}]}') == (
        "l2_data",
        "SOL-USD",
    )
    assert cb.route('{"type":"error","message":"Failed to subscribe"}') == ("control", "")


def test_exchange_time_is_exact_ns(cb: CoinbaseExchange, received: list[tuple[int, str]]) -> None:
    frame = received[5][1]  # the BTC-USD snapshot
    assert cb.exchange_time(frame) == T0
    assert cb.exchange_time('{"channel":"x","timestamp":"2023-02-09T20:32:50.714964855Z"}') == 1_675_974_770_714_964_855
    assert rfc3339_ns("2019-08-14T20:42:27.265Z") == 1_565_815_347_265_000_000
    assert rfc3339_ns("2019-08-14T20:42:27.265+01:00") == 1_565_811_747_265_000_000
    assert rfc3339_ns("2019-08-14 20:42") is None
    frames = pl.Series("payload", [f for _, f in received] + ['{"type":"error"}'])
    vectorized = cb.exchange_times(frames).to_list()
    assert vectorized == [cb.exchange_time(f) for f in frames]
    assert vectorized[-1] is None and vectorized[0] == T0 - 999_900_000


def test_control_events_from_acks_and_errors(cb: CoinbaseExchange, received: list[tuple[int, str]]) -> None:
    ack = received[4][1]  # the last recorded ack lists every subscription
    assert cb.control_events(ack) == [
        *(StreamEvent(SUBSCRIBED, "market_trades", p) for p in PRODUCTS),
        *(StreamEvent(SUBSCRIBED, "l2_data", p) for p in PRODUCTS),  # level2 under its frames' channel
        *(StreamEvent(SUBSCRIBED, "ticker", p) for p in PRODUCTS),
        *(StreamEvent(SUBSCRIBED, "candles", p) for p in PRODUCTS),
        StreamEvent(SUBSCRIBED, "heartbeats", ""),
    ]
    error = '{"type":"error","message":"Failed to subscribe","reason":"XYZ-USD is not a valid product"}'
    assert cb.control_events(error) == [
        StreamEvent(SUB_ERROR, detail="Failed to subscribe: XYZ-USD is not a valid product")
    ]
    assert cb.control_events('{"channel":"heartbeats","events":[]}') == []


def test_capture_hints_take_advanced_trade_only(shared_data: Path) -> None:
    assert detect_exchange(CAPTURE) == "coinbase"
    # the retired Coinbase Exchange feed is another protocol: not taken for Advanced Trade
    with pytest.raises(CaptureError, match=r"ws-feed\.pro\.coinbase\.com"):
        detect_exchange(shared_data / "cryptofeed-samples/COINBASE.ws.28.0.gz")


# -- trades ---------------------------------------------------------------------------------------------


def test_side_is_the_taker_side_and_numbers_are_exact(cb: CoinbaseExchange) -> None:
    """Coinbase's ``side`` is the maker's (see the module docstring): a maker BUY is a taker sell."""
    frame = _trades_frame(3, "update", [_trade("8", "SELL"), _trade("7", "BUY", "1260.000000000001", "12.5")])
    raw = _raw([(T0, "market_trades", "ETH-USD", frame)])
    trades, rejects = cb.normalize_trades_with_rejects(raw)
    assert rejects.height == 0
    rows = trades.sort("trade_id").to_dicts()
    assert [(r["trade_id"], r["side"]) for r in rows] == [("7", "sell"), ("8", "buy")]
    assert rows[0]["price"] == Decimal("1260.000000000001") and rows[0]["size"] == Decimal("12.5")
    assert rows[1]["price"] == Decimal("1260.01") and rows[1]["size"] == Decimal("0.3")
    assert rows[0]["ts"].timestamp() == 1_565_815_347.265123  # (datetime: microseconds)
    ns = trades.sort("trade_id").select(pl.col("ts").cast(pl.Int64)).to_series().to_list()
    assert ns == [1_565_815_347_265_123_456] * 2
    assert [(r["seq_id"], r["fill_first"], r["fill_last"], r["fills"]) for r in rows] == [(7, 7, 7, 1), (8, 8, 8, 1)]
    assert [r["symbol"] for r in rows] == ["ETH-USD", "ETH-USD"]
    parsed = cb.parse_trades(frame)
    assert [(t.trade_id, t.side, t.price, t.ts) for t in parsed] == [
        ("8", "buy", Decimal("1260.01"), 1_565_815_347_265_123_456),
        ("7", "sell", Decimal("1260.000000000001"), 1_565_815_347_265_123_456),
    ]


def test_bad_trade_rows_are_rejected_with_a_reason(cb: CoinbaseExchange) -> None:
    rows = [
        _trades_frame(1, "update", [_trade("1", "BUY", price="1.5e3")]),
        '{"channel":"market_trades","events":[{"type":"update","trades":[{"trade_id":"2","product_id":"ETH-USD",'
        '"price":1260.01,"size":"1","side":"BUY","time":"2019-08-14T20:42:27Z"}]}]}',
        _trades_frame(3, "update", [_trade("3", "HOLD")]),
        _trades_frame(4, "update", [{**_trade("4", "BUY"), "time": "yesterday"}]),
        _trades_frame(5, "update", []),
        "not json",
        '{"channel":"ticker","events":[]}',
        _trades_frame(8, "update", [_trade("9", "SELL", size="0")]),
    ]
    trades, rejects = cb.normalize_trades_with_rejects(
        _raw([(T0 + i, "market_trades", "ETH-USD", r) for i, r in enumerate(rows)])
    )
    assert trades.height == 0
    assert rejects.sort("seq")["reason"].to_list() == [
        "price is not a plain decimal number: 1.5e3",
        "price or size is a JSON number, not a decimal string",  # never read through a float
        "invalid side",
        "missing or invalid trade time",
        "no trades in the event",
        "payload is not a market_trades frame in the documented layout",
        "payload's channel is not market_trades",
        "size is not positive: 0",
    ]


def test_a_trades_snapshot_repeating_trades_is_kept_once(cb: CoinbaseExchange) -> None:
    """The transforms keep the first receipt of each (exchange, symbol, channel, trade_id): the snapshot a
    resubscription brings repeats trades already received and adds none twice."""
    first = _trades_frame(10, "update", [_trade("101", "BUY"), _trade("100", "SELL")])
    again = _trades_frame(11, "snapshot", [_trade("102", "BUY"), _trade("101", "BUY"), _trade("100", "SELL")])
    recv = 1_565_815_348_000_000_000  # a second after the trades
    raw = _raw([(recv, "market_trades", "ETH-USD", first), (recv + 10**9, "market_trades", "ETH-USD", again)])
    start = 1_565_812_800_000_000_000  # the hour of the trades
    window = trades_for_window(raw, start, start + 3600 * 10**9, 0, normalize=registry_normalizer, skew_ns=10**20)
    assert window.trades["trade_id"].to_list() == ["100", "101", "102"]
    assert window.duplicates == 2
    assert window.trades["side"].to_list() == ["buy", "sell", "sell"]


# -- books ----------------------------------------------------------------------------------------------


def _model(frames: list[str], product: str) -> tuple[dict[str, str], dict[str, str]]:
    """The book by hand: snapshot replaces, updates set sizes, "0" removes (as the docs say)."""
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    for frame in frames:
        for ev in orjson.loads(frame)["events"]:
            if ev["product_id"] != product:
                continue
            if ev["type"] == "snapshot":
                bids, asks = {}, {}
            for u in ev["updates"]:
                side = bids if u["side"] == "bid" else asks
                if Decimal(u["new_quantity"]) == 0:
                    side.pop(u["price_level"], None)
                else:
                    side[u["price_level"]] = u["new_quantity"]
    return bids, asks


def test_offline_book_builder_equals_the_documented_rules(received: list[tuple[int, str]]) -> None:
    frames = [f for _, f in received if f.startswith('{"channel":"l2_data"')]
    builder = CoinbaseBookBuilder("BTC-USD", keep_raw=True)
    events = [e for f in frames if (e := builder.on_raw("l2_data", f)) is not None]
    assert events == [StreamEvent(SYNCED, "l2_data", "BTC-USD")]
    bids, asks = _model(frames, "BTC-USD")
    assert builder.valid and builder.updates == 339
    assert builder.book.raw_bids() == sorted(bids.items(), key=lambda kv: -Decimal(kv[0]))
    assert builder.book.raw_asks() == sorted(asks.items(), key=lambda kv: Decimal(kv[0]))
    assert builder.book.best_bid() == (59999.5, float(bids["59999.50"]))
    # an update numbered below the last one, without a snapshot first: a new connection's lost snapshot
    stale = frames[-1].replace(f'"sequence_num":{sequence_num(frames[-1])}', '"sequence_num":3')
    event = builder.on_raw("l2_data", stale)
    assert event is not None and event.kind == GAP and not builder.valid


def _session_frames(received: list[tuple[int, str]]) -> list[tuple[str, str, str]]:
    cb = get_exchange("coinbase")
    return [(*cb.route(f), f) for _, f in received]


def test_session_gap_marks_every_book_and_resubscribes_level2(
    cb: CoinbaseExchange, received: list[tuple[int, str]]
) -> None:
    session = CoinbaseSession(cb, SUBS)
    assert session.sync_state() == {"BTC-USD": "buffering", "ETH-USD": "buffering"}
    actions = []
    last = 0
    for channel, symbol, frame in _session_frames(received):
        if channel == "control":
            continue  # acks go to control_events, not the session (their numbers are accounted as due)
        action = session.on_frame(channel, symbol, frame)
        last = sequence_num(frame) or last
        if action is not None and action.error:
            actions.append((sequence_num(frame), action))
            break
    assert len(actions) == 1
    seq, action = actions[0]
    # the capture leaves out the BTC-USD update numbered 391 (61.5 s in)
    assert seq == 392
    assert action.events == (
        StreamEvent(GAP, "l2_data", "BTC-USD", "sequence_num jumped from 390 to 392: 1 frame(s) lost"),
        StreamEvent(GAP, "l2_data", "ETH-USD", "sequence_num jumped from 390 to 392: 1 frame(s) lost"),
    )
    assert [orjson.loads(m) for m in action.send] == [
        {"type": "unsubscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "level2"},
    ]
    assert session.sync_state() == {"BTC-USD": "resyncing", "ETH-USD": "resyncing"}
    assert session.book("BTC-USD") is None
    # the two acks take 393 and 394 unseen; the fresh snapshots (395, 396) sync the books again
    snap = received[5][1].replace('"sequence_num":5', '"sequence_num":395')
    action = session.on_frame("l2_data", "BTC-USD", snap)
    assert action is not None and action.events == (StreamEvent(SYNCED, "l2_data", "BTC-USD"),)
    snap = received[6][1].replace('"sequence_num":6', '"sequence_num":396')
    assert session.on_frame("l2_data", "ETH-USD", snap) is not None
    assert session.sync_state() == {"BTC-USD": "synced", "ETH-USD": "synced"}
    # a number that goes back is a gap too
    back = received[20][1]
    action = session.on_frame(*cb.route(back), back)
    assert action is not None and [e.kind for e in action.events] == [GAP, GAP]


def test_session_without_subscriptions_keeps_books_only(cb: CoinbaseExchange, received: list[tuple[int, str]]) -> None:
    """An import hands the session book frames only: it cannot follow the connection's numbering."""
    session = CoinbaseSession(cb, ())
    synced = []
    for channel, symbol, frame in _session_frames(received):
        if channel == "l2_data":
            action = session.on_frame(channel, symbol, frame)
            if action is not None:
                assert not action.error
                synced += [e.symbol for e in action.events if e.kind == SYNCED]
    assert synced == ["BTC-USD", "ETH-USD"]
    bids, _ = _model([f for _, f in received if f.startswith('{"channel":"l2_data"')], "ETH-USD")
    book = session.book("ETH-USD")
    assert book is not None and dict(book.raw_bids()) == bids


# -- REST history over the replay -----------------------------------------------------------------------


def test_history_over_the_replay_proves_the_span_by_ids() -> None:
    """``GET /api/v3/brokerage/market/products/{id}/ticker`` served from the capture's trades (the replay serves
    the whole recording while no client subscribed): pages of 25, walked back by seconds, chained by ids."""

    async def fetch(start: int, end: int, limit: int, after_id: int | None = None) -> list[object]:
        async with ReplayServer([CAPTURE], speed=0, verbose=False) as server:
            client = RestClient(timeout_s=5.0)
            try:
                history = CoinbaseTradeHistory(limit=limit)
                return [
                    p
                    async for p in history.fetch(
                        client, "BTC-USD", start, end, base_url=server.rest_base, after_id=after_id
                    )
                ]
            finally:
                await client.aclose()

    start, end = T0 + 30 * 10**9, T0 + 60 * 10**9
    pages = asyncio.run(fetch(start, end, 25))
    records = [r for p in pages for r in p.records]  # type: ignore[attr-defined]
    ids = sorted(int(r["trade_id"]) for r in records)
    # BTC-USD trades every 0.75 s (one or two): ids 1000 + ... contiguous over the span
    assert ids == list(range(ids[0], ids[-1] + 1)) and len(ids) == 60
    assert all(start <= rfc3339_ns(r["time"]) < end for r in records)  # type: ignore[arg-type]
    assert pages[-1].proven == (start, end)  # type: ignore[attr-defined]
    assert len(pages) > 2  # several pages: paging by seconds went back
    # the first page alone proves only from its oldest chained trade on
    first = pages[0].proven  # type: ignore[attr-defined]
    assert first is not None and start < first[0] and first[1] == end
    # a span before the history: nothing proven, and it says so
    early = asyncio.run(fetch(T0 - 3600 * 10**9, T0 - 3000 * 10**9, 25))
    assert [p.proven for p in early] == [None] and early[0].records == ()  # type: ignore[attr-defined]


def test_history_encode_round_trips_through_normalize(cb: CoinbaseExchange) -> None:
    history = CoinbaseTradeHistory()
    payload = history.encode([_trade("7", "BUY"), _trade("8", "SELL")])
    assert payload.startswith('{"trades":[{"trade_id":"8"')
    trades, rejects = cb.normalize_trades_with_rejects(_raw([(T0, "market_trades", "ETH-USD", payload)]))
    assert rejects.height == 0
    assert trades.sort("trade_id").select("trade_id", "side").rows() == [("7", "sell"), ("8", "buy")]


def test_a_cut_is_healed_from_the_replays_rest(tmp_path: Path) -> None:
    """A capture with 30 s cut out (a disconnection) imported; ``mdp backfill``'s healing fetches the missing
    market_trades from the replay of the full capture (its public market trades endpoint): the hour's trades then
    equal those of the full capture, every id once, and the fetch proves the whole gap."""
    lo, hi = T0 + 30 * 10**9, T0 + 60 * 10**9  # receive times cut out
    cut = tmp_path / "cut.ws.gz"
    with gzip.open(CAPTURE, "rt") as src, gzip.open(cut, "wt") as dst:
        for line in src:
            if line[0].isdigit():
                stamp = line.split(":", 1)[0]
                recv = int(stamp.split(".")[0]) * 10**9 + int(stamp.split(".")[1].ljust(9, "0"))
                if lo <= recv < hi:
                    continue
            dst.write(line)
    full_lake, cut_lake = str(tmp_path / "full"), str(tmp_path / "cut")
    import_capture([CAPTURE], "coinbase", full_lake)
    import_capture([cut], "coinbase", cut_lake)
    hour = T0 - T0 % (3600 * 10**9) + 3600 * 10**9  # 10:00, the hour of the cut

    def btc(root: str, backfill: pl.DataFrame | None = None) -> pl.DataFrame:
        raw = read_raw(root, hour - 3600 * 10**9, hour + 7200 * 10**9)
        window = trades_for_window(
            raw, hour, hour + 3600 * 10**9, 3600 * 10**9, normalize=registry_normalizer, skew_ns=10**10,
            backfill=backfill,
        )  # fmt: skip
        return window.trades.filter(pl.col("symbol") == "BTC-USD").drop("recv_ts")

    full, before = btc(full_lake), btc(cut_lake)
    missing = sorted(set(full["trade_id"]) - set(before["trade_id"]), key=int)
    assert len(missing) == 60 and missing[0] == "1060"
    last_before = int(missing[0]) - 1
    gap = Gap("coinbase", "BTC-USD", "BTC-USD", "market_trades", lo - LAG, hi - LAG, last_before)

    async def heal() -> BackfillReport:
        async with ReplayServer([CAPTURE], speed=0, verbose=False) as server:
            return await heal_gaps(cut_lake, [gap], rest_url=server.rest_base)

    report = asyncio.run(heal())
    healed = report.healed[0]
    assert healed.error is None and healed.whole, healed.describe()
    assert healed.trades == 60 and healed.pages == 1  # 100 a page; the chain reached the last id received
    after = btc(cut_lake, read_backfill(cut_lake, hour - 3600 * 10**9, hour + 7200 * 10**9))
    assert after.sort("trade_id").equals(full.sort("trade_id"))
