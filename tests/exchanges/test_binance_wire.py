"""Binance routing, typed parsing and trade normalization on the hftbacktest and cryptofeed recordings."""

from __future__ import annotations

import timeit
from collections.abc import Callable
from decimal import Decimal

import orjson
import polars as pl
import pytest
from _exchange_util import binance, is_snapshot

from mdplatform.exchanges import (
    NORMALIZED_TRADES,
    BookDelta,
    BookSnapshot,
    Ticker,
    Trade,
    normalize_trades_with_rejects,
)
from mdplatform.schemas import REJECTS

Lines = Callable[[str], tuple[tuple[int, str], ...]]

RECORDINGS = {
    "spot/btcusdt": "binance",
    "spot/ethusdt": "binance",
    "usdm/btcusdt": "binance-usdm",
    "usdm/ethusdt": "binance-usdm",
    "cm/btcusd_perp": "binance-coinm",
}


@pytest.mark.parametrize("name", list(RECORDINGS))
def test_route_every_frame(hft: Lines, name: str) -> None:
    x = binance(RECORDINGS[name])
    counts: dict[str, int] = {}
    for _, frame in hft(name):
        route = x.route(frame)
        if is_snapshot(frame):
            assert route == ("control", "")
            continue
        stream = orjson.loads(frame)["stream"]
        symbol, channel = stream.split("@")[:2]
        assert route == (channel, symbol.upper())
        counts[channel] = counts.get(channel, 0) + 1
    assert set(counts) == {"depth", "bookTicker", "trade"}


def test_route_control_and_cryptofeed_streams(
    cryptofeed: Callable[[str], tuple[tuple[str, int, str], ...]],
) -> None:
    x = binance("binance")
    assert x.route('{"result":null,"id":1}') == ("control", "")
    assert x.route('{"id":1,"result":null}') == ("control", "")
    frames = [text for kind, _, text in cryptofeed("BINANCE.ws.1.0.gz") if kind == "recv"]
    seen = {x.route(f) for f in frames}
    assert {
        ("aggTrade", "NKNUSDT"),
        ("depth", "BLZETH"),
        ("bookTicker", "LRCBTC"),
        ("kline_1m", "LRCBTC"),
        ("depth", "RUNEEUR"),
    } <= seen
    # a frame whose "stream" key is not first still routes
    assert x.route('{"data":{"e":"trade"},"stream":"btcusdt@trade"}') == ("trade", "BTCUSDT")


def test_route_speed(hft: Lines) -> None:
    x = binance("binance")
    frames = [f for _, f in hft("spot/btcusdt")]
    route = x.route
    seconds = min(timeit.repeat(lambda: [route(f) for f in frames], number=1, repeat=3))
    per_frame_us = seconds / len(frames) * 1e6
    print(f"binance route: {per_frame_us:.3f} us/frame over {len(frames)} frames")
    assert per_frame_us < 5.0  # measured ~0.3 us; generous for slow CI machines


def test_spot_btc_trades(hft: Lines) -> None:
    x = binance("binance")
    trades = [e for _, f in hft("spot/btcusdt") if "@trade" in f[:40] for e in x.parse(f) if isinstance(e, Trade)]
    assert len(trades) == 19_904
    assert all(isinstance(t, Trade) and t.channel == "trade" and t.symbol == "BTCUSDT" for t in trades)
    ids = [int(t.trade_id) for t in trades]
    assert ids == list(range(ids[0], ids[0] + 19_904))
    first = trades[0]
    assert first == Trade(
        exchange="binance",
        channel="trade",
        symbol="BTCUSDT",
        ts=1_723_161_255_342_000_000,
        trade_id="3735683259",
        price=Decimal("61837.63"),  # exact, from "61837.63000000"
        size=Decimal("0.02"),
        side="sell",  # "m": true: the buyer was the maker, the taker sold
        fills=1,
    )
    assert str(first.price) == "61837.63000000" and str(first.size) == "0.02000000"
    raw_maker = sum('"m":true' in f for _, f in hft("spot/btcusdt") if "@trade" in f[:40])
    assert sum(t.side == "sell" for t in trades) == raw_maker
    assert sum(t.side == "buy" for t in trades) == 19_904 - raw_maker
    assert 0 < raw_maker < 19_904


def test_parse_book_events(hft: Lines) -> None:
    x = binance("binance-usdm")
    lines = hft("usdm/btcusdt")
    delta = x.parse(lines[0][1])[0]
    assert isinstance(delta, BookDelta)
    assert (delta.first_update_id, delta.last_update_id, delta.prev_update_id) == (
        5123107832006,
        5123107837557,
        5123107831937,
    )
    assert delta.ts == 1723161256298 * 1_000_000  # futures: transaction time T
    assert delta.bids[0] == (58710.2, 0.014)
    ticker = x.parse(lines[1][1])[0]
    assert ticker == Ticker(
        exchange="binance-usdm",
        channel="bookTicker",
        symbol="BTCUSDT",
        ts=1723161256313 * 1_000_000,
        bid_price=61800.2,
        bid_size=2.507,
        ask_price=61800.3,
        ask_size=2.51,
        update_id=5123107839020,
    )
    snap_line = next(f for _, f in lines if is_snapshot(f))
    (snap,) = x.parse(snap_line)
    assert isinstance(snap, BookSnapshot)
    assert snap.update_id == orjson.loads(snap_line)["lastUpdateId"]
    assert len(snap.bids) == len(snap.asks) == 1000
    # spot bookTicker carries no time
    spot_ticker = binance("binance").parse(hft("spot/btcusdt")[2][1])[0]
    assert isinstance(spot_ticker, Ticker) and spot_ticker.ts is None and spot_ticker.update_id == 50093239212
    assert x.parse('{"result":null,"id":1}') == []


@pytest.mark.parametrize(
    ("sample", "xid", "expected", "multi"),
    [("BINANCE.ws.1.0.gz", "binance", 2, 0), ("BINANCE_FUTURES.ws.1.0.gz", "binance-usdm", 91, 27)],
)
def test_parse_agg_trades(
    cryptofeed: Callable[[str], tuple[tuple[str, int, str], ...]], sample: str, xid: str, expected: int, multi: int
) -> None:
    x = binance(xid)
    frames = [t for kind, _, t in cryptofeed(sample) if kind == "recv" and "@aggTrade" in t[:40]]
    events = [e for f in frames for e in x.parse(f) if isinstance(e, Trade)]
    assert len(events) == len(frames) == expected
    for f, e in zip(frames, events, strict=True):
        d = orjson.loads(f)["data"]
        assert isinstance(e, Trade) and e.channel == "aggTrade"
        # the ids of the trades it holds: one id when it is one fill, "first-last" otherwise
        assert e.trade_id == (str(d["f"]) if d["f"] == d["l"] else f"{d['f']}-{d['l']}")
        assert e.fills == d["l"] - d["f"] + 1
        assert (e.price, e.size) == (Decimal(d["p"]), Decimal(d["q"]))
        assert e.side == ("sell" if d["m"] else "buy")
        assert e.ts == d["T"] * 1_000_000
    assert sum(e.fills > 1 for e in events) == multi


@pytest.mark.parametrize(
    ("name", "expected_symbol", "expected_count"),
    [
        ("spot/btcusdt", "BTC-USDT", 19_904),
        ("usdm/btcusdt", "BTC-USDT-PERP", None),
        ("cm/btcusd_perp", "BTC-USD-PERP", None),
    ],
)
def test_normalize_trades_equals_per_message_parse(
    hft: Lines,
    to_raw: Callable[..., pl.DataFrame],
    name: str,
    expected_symbol: str,
    expected_count: int | None,
) -> None:
    x = binance(RECORDINGS[name])
    lines = [(ts, f) for ts, f in hft(name) if not is_snapshot(f)]
    raw = to_raw(x, lines)  # every channel: normalize must pick the trade rows itself
    trades, rejects = x.normalize_trades_with_rejects(raw)
    assert rejects.height == 0
    assert trades.schema == pl.Schema(NORMALIZED_TRADES)
    expected = [(ts, e) for ts, f in lines if "@trade" in f[:50] for e in x.parse(f) if isinstance(e, Trade)]
    if expected_count is not None:
        assert len(expected) == expected_count
    assert trades.height == len(expected) > 0
    assert trades.get_column("exchange").unique().to_list() == [x.id]
    assert trades.get_column("symbol").unique().to_list() == [expected_symbol]
    assert trades.get_column("trade_id").to_list() == [e.trade_id for _, e in expected]
    # Decimal == Decimal: exact, whatever the scale
    assert trades.get_column("price").to_list() == [e.price for _, e in expected]
    assert trades.get_column("size").to_list() == [e.size for _, e in expected]
    assert trades.get_column("side").to_list() == [e.side for _, e in expected]
    assert trades.get_column("ts").dt.epoch("ns").to_list() == [e.ts for _, e in expected]
    assert trades.get_column("recv_ts").dt.epoch("ns").to_list() == [ts for ts, _ in expected]
    assert trades.get_column("fills").unique().to_list() == [1]
    # lineage: the trade channel's own id is the fill id, and it is the stream's contiguous sequence
    ids = [int(e.trade_id) for _, e in expected]
    assert trades.get_column("seq_id").to_list() == ids
    assert trades.get_column("fill_first").to_list() == ids == trades.get_column("fill_last").to_list()
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert trades.get_column("channel").unique().to_list() == ["trade"]
    assert trades.get_column("conn_id").unique().to_list() == ["rec-0"]
    assert x.normalize_trades(raw).equals(trades)


def test_unparseable_rows_become_rejects(hft: Lines, to_raw: Callable[..., pl.DataFrame]) -> None:
    x = binance("binance")
    lines = [(ts, f) for ts, f in hft("spot/btcusdt") if "@trade" in f[:40]][:50]
    good = lines[0][1]
    broken = [
        (1, good[: len(good) // 2]),  # truncated frame
        (2, good.replace('"m":true', '"m":"maybe"')),
        (3, good.replace('"p":"61837.63000000"', '"p":"n/a"')),
        (4, good.replace('"e":"trade"', '"e":"aggTrade"')),
        (5, "not json at all"),
        (6, '{"result":null,"id":1}'),
        (7, good.replace('"s":"BTCUSDT",', "").replace('"t":', '"x":')),
    ]
    raw = to_raw(x, lines + broken)
    # the collector routed these rows as trades; make sure broken ones keep that channel
    raw = raw.with_columns(channel=pl.lit("trade"), symbol=pl.lit("BTCUSDT"))
    trades, rejects = x.normalize_trades_with_rejects(raw)
    assert trades.height == 50
    assert rejects.schema == pl.Schema(REJECTS)
    assert rejects.get_column("reason").to_list() == [
        "payload is not a trade event in the documented layout",
        "payload is not a trade event in the documented layout",
        "price is not a plain decimal number: n/a",
        "event type is not trade",
        "payload is not a trade event in the documented layout",
        "payload is not a combined-stream event",
        "missing trade id",
    ]
    assert rejects.get_column("payload").to_list() == [f for _, f in broken]
    assert rejects.get_column("seq").to_list() == [51, 52, 53, 54, 55, 56, 57]
    # the registry-level helper gives the same split
    t2, r2 = normalize_trades_with_rejects("binance", raw)
    assert t2.equals(trades) and r2.equals(rejects)


def test_normalize_ignores_other_exchanges_and_empty_input(hft: Lines, to_raw: Callable[..., pl.DataFrame]) -> None:
    spot, usdm = binance("binance"), binance("binance-usdm")
    lines = [(ts, f) for ts, f in hft("spot/btcusdt") if "@trade" in f[:40]][:10]
    raw = to_raw(spot, lines)
    assert usdm.normalize_trades(raw).height == 0
    assert spot.normalize_trades(raw.head(0)).schema == pl.Schema(NORMALIZED_TRADES)
