"""The trades window: which raw rows a partition keeps, what counts as late/duplicate/reject, exact numbers and
aggregated trades.

Built from the real recording with its frames moved, repeated or damaged the way a network or a second
collector would."""

from __future__ import annotations

import json
from decimal import Decimal

import polars as pl
from candle_reference import H00, H23, HOUR, MIN, Recording, as_agg_trades, raw_frame

from mdplatform.schemas import REJECTS, TRADES
from mdplatform.transforms import (
    TradesReads,
    normalize_raw,
    registry_normalizer,
    reject,
    trades_for_window,
    validate_candles,
    validate_trades,
    window_trades,
    window_trades_many,
)
from mdplatform.transforms._trades import _leading_number

SKEW, LATENESS = 10 * 10**9, 15 * MIN
TS = pl.col("recv_ts").cast(pl.Int64)


def _window(raw: pl.DataFrame, hour: int):  # type: ignore[no-untyped-def]
    return trades_for_window(raw, hour, hour + HOUR, LATENESS, normalize=registry_normalizer, skew_ns=SKEW)


def _trade_time() -> pl.Expr:
    return pl.col("payload").str.json_path_match("$.data.T").cast(pl.Int64) * 1_000_000


def test_clean_recording(spot: Recording) -> None:
    raw = raw_frame(spot.lines)
    for hour, n in ((H23, 9738), (H00, 10166)):
        w = _window(raw, hour)
        assert w.trades.height == n
        assert (w.late.height, w.duplicates, w.overlaps, w.rejects.height) == (0, 0, 0, 0)
        assert w.trades.schema == pl.Schema(TRADES)
        assert validate_trades(w.trades, hour, hour + HOUR) == []
        # exact: the sum of sizes is the sum of the frames' decimal strings, to the last digit
        mine = [t for t in spot.trades if hour <= t.ts < hour + HOUR]
        assert w.trades.get_column("size").sum() == sum((t.size for t in mine), Decimal(0))
        assert w.trades.get_column("fills").sum() == n
    # both windows read the raw minutes around midnight; each trade is kept by exactly one
    assert _window(raw, H23).raw_rows == raw.filter(TS - TS % MIN < H00 + LATENESS).height
    # the head of the window reaches back as far as its tail reaches forward (id chains across the hour's edges)
    assert _window(raw, H00).raw_rows == raw.filter(TS - TS % MIN >= H00 - LATENESS).height


def test_late_trades_are_counted_once_and_not_written(spot: Recording) -> None:
    raw = raw_frame(spot.lines)
    moving = (pl.col("channel") == "trade") & (_trade_time() >= H00 - 30 * 10**9) & (_trade_time() < H00)
    n_moved = raw.filter(moving).height
    assert n_moved > 100
    # delivered 20 minutes late: after hour 23's window stopped reading (00:15)
    late_raw = raw.with_columns(
        recv_ts=pl.when(moving)
        .then(pl.col("recv_ts") + pl.duration(minutes=20, time_unit="ns"))
        .otherwise(pl.col("recv_ts"))
    )
    w23, w00 = _window(late_raw, H23), _window(late_raw, H00)
    assert w23.trades.height == 9738 - n_moved and w23.late.height == 0
    assert w00.trades.height == 10166 and w00.late.height == n_moved
    assert (w00.late.get_column("ts").cast(pl.Int64) < H00).all()
    # within the lateness (10 minutes late) they are simply kept by their own hour
    ok_raw = raw.with_columns(
        recv_ts=pl.when(moving)
        .then(pl.col("recv_ts") + pl.duration(minutes=10, time_unit="ns"))
        .otherwise(pl.col("recv_ts"))
    )
    assert _window(ok_raw, H23).trades.height == 9738
    assert _window(ok_raw, H00).late.height == 0


def test_trades_dated_ahead_of_their_receipt_are_quarantined(spot: Recording) -> None:
    """A trade dated a year ahead (a broken frame) and one stamped by a receive clock 10 minutes behind are both
    further ahead of their receipt than the clock-skew bound: quarantined with the reason, in no window's trades.
    One 5 s ahead (within the bound) is kept by its own hour."""
    raw = raw_frame(spot.lines)
    trade_rows = raw.filter(pl.col("channel") == "trade")
    year = trade_rows.row(100, named=True)
    behind = trade_rows.filter(_trade_time() >= H00 + 30 * 10**9).row(0, named=True)
    near = trade_rows.filter(_trade_time() >= H00 + 40 * 10**9).row(0, named=True)
    t_year = int(json.loads(year["payload"])["data"]["T"])
    moved = raw.with_columns(
        payload=pl.when(pl.col("seq") == year["seq"])
        .then(pl.col("payload").str.replace(f'"T":{t_year}', f'"T":{t_year + 365 * 24 * 3600 * 1000}'))
        .otherwise(pl.col("payload")),
        recv_ts=pl.when(pl.col("seq") == behind["seq"])
        .then(pl.col("recv_ts") - pl.duration(minutes=10, time_unit="ns"))
        .when(pl.col("seq") == near["seq"])
        .then(_trade_time().cast(pl.Datetime("ns", "UTC")) - pl.duration(seconds=5, time_unit="ns"))
        .otherwise(pl.col("recv_ts")),
    )
    w23, w00 = _window(moved, H23), _window(moved, H00)
    assert w23.trades.height == 9738 - 1 and w00.trades.height == 10166 - 1
    reasons = {r["seq"]: r["reason"] for r in pl.concat([w23.rejects, w00.rejects]).iter_rows(named=True)}
    assert set(reasons) == {year["seq"], behind["seq"]}
    assert reasons[year["seq"]].startswith(f"trade {json.loads(year['payload'])['data']['t']}: trade time is 31536001.")
    assert reasons[year["seq"]].endswith("s ahead of its receive time (clock-skew bound 10.0 s)")
    assert ": trade time is 601.27" in reasons[behind["seq"]]  # 10 minutes early plus the clocks' 1.27 s
    # the quarantine keeps the frames exactly as received
    quarantined = pl.concat([w23.rejects, w00.rejects]).sort("seq")
    assert (
        quarantined.get_column("payload").to_list()
        == moved.filter(pl.col("seq").is_in([year["seq"], behind["seq"]])).sort("seq").get_column("payload").to_list()
    )
    assert near["seq"] not in reasons
    # neither moves anything: the quarantined trades are not evidence either
    assert (
        pl.concat([w23.observed, w00.observed]).get_column("ts").max()
        < pl.Series([H00 + HOUR]).cast(pl.Datetime("ns", "UTC")).item()
    )


def test_aggregated_trades_count_their_fills_and_are_not_counted_twice(spot: Recording) -> None:
    """aggTrade alone gives the same fills as trade; both together give the trade stream's rows, each fill once."""
    trade_only = {h: _window(raw_frame(spot.lines), h) for h in (H23, H00)}
    agg_only = {h: _window(raw_frame(as_agg_trades([spot.lines])[0]), h) for h in (H23, H00)}
    both = {h: _window(raw_frame(as_agg_trades([spot.lines], keep_trades=True)[0]), h) for h in (H23, H00)}
    for h in (H23, H00):
        t, a, b = trade_only[h].trades, agg_only[h].trades, both[h].trades
        assert a.height < t.height  # aggregated rows
        assert a.get_column("fills").sum() == t.height == t.get_column("fills").sum()
        assert a.get_column("size").sum() == t.get_column("size").sum()
        multi = a.filter(pl.col("fills") > 1)
        first, last = multi.row(0, named=True)["trade_id"].split("-")
        assert int(last) - int(first) + 1 == multi.row(0, named=True)["fills"]
        # with both streams every fill is there once: the aggregates of several fills give way to the fills,
        # the one-fill aggregates repeat a trade's id
        assert b.select(list(TRADES)).equals(t.select(list(TRADES)))
        assert both[h].overlaps == a.height


def test_duplicates_from_a_second_connection(spot: Recording) -> None:
    raw = raw_frame(spot.lines)
    again = raw.filter(pl.col("channel") == "trade").head(1000)
    # a second collector receives the same frames a millisecond later
    twice = pl.concat(
        [
            raw,
            again.with_columns(
                conn_id=pl.lit("second"),
                recv_ts=pl.col("recv_ts") + pl.duration(milliseconds=1, time_unit="ns"),
            ),
        ]
    )
    w = _window(twice, H23)
    assert w.trades.height == 9738 and w.duplicates == 1000
    assert set(w.trades.get_column("recv_ts").to_list()) <= set(raw.get_column("recv_ts").to_list())
    assert w.trades.select("exchange", "symbol", "trade_id").is_unique().all()


def test_rejects_are_quarantined_with_a_reason(spot: Recording) -> None:
    raw = raw_frame(spot.lines)
    trades = raw.filter(pl.col("channel") == "trade")
    bad_seqs = trades.get_column("seq").gather([10, 20, 30]).to_list()
    damaged = raw.with_columns(
        payload=pl.when(pl.col("seq") == bad_seqs[0])
        .then(pl.col("payload").str.slice(0, 60))  # torn frame
        .when(pl.col("seq") == bad_seqs[1])
        .then(pl.col("payload").str.replace(r'"p":"[0-9.]+"', '"p":"-1"'))  # negative price
        .when(pl.col("seq") == bad_seqs[2])
        .then(pl.col("payload").str.replace(r'"e":"trade"', '"e":"aggTrade"'))
        .otherwise(pl.col("payload"))
    )
    w = _window(damaged, H23)
    assert w.trades.height == 9738 - 3
    assert w.rejects.height == 3
    assert w.rejects.schema == pl.Schema(REJECTS)
    assert w.rejects.get_column("seq").to_list() == bad_seqs
    assert w.rejects.get_column("reason").null_count() == 0
    assert (
        w.rejects.get_column("payload").to_list()
        == damaged.filter(pl.col("seq").is_in(bad_seqs)).get_column("payload").to_list()
    )
    # a reject belongs to the window of its receive hour only
    assert _window(damaged, H00).rejects.height == 0


def test_unknown_exchange_is_quarantined(spot: Recording) -> None:
    raw = raw_frame(spot.lines).head(500).with_columns(exchange=pl.lit("nowhere"))
    w = trades_for_window(raw, H23, H00, LATENESS, normalize=registry_normalizer, skew_ns=SKEW)
    assert w.trades.height == 0
    assert w.rejects.height == raw.filter(pl.col("channel") != "control").height
    assert set(w.rejects.get_column("reason")) == {"unknown exchange 'nowhere'"}


def test_reject_helper_keeps_raw_columns(spot: Recording) -> None:
    raw = raw_frame(spot.lines).head(3)
    assert reject(raw, "x").columns == list(REJECTS)


def test_validators_catch_damage(spot: Recording) -> None:
    trades = _window(raw_frame(spot.lines), H23).trades
    broken = pl.concat([trades, trades.head(2)]).with_columns(
        price=pl.when(pl.col("trade_id") == trades.get_column("trade_id")[5])
        .then(pl.lit(-1).cast(trades.schema["price"]))
        .otherwise(pl.col("price"))
    )
    problems = validate_trades(broken, H23, H00)
    assert any("duplicate" in p for p in problems) and any("price" in p for p in problems)
    assert validate_trades(trades.drop("side"))[0].startswith("columns")
    assert any("outside" in p for p in validate_trades(trades, H00, H00 + HOUR))
    assert validate_candles(pl.DataFrame(schema=TRADES))[0].startswith("columns")


def test_trade_ids_sort_by_the_number_they_start_with() -> None:
    """``sort_trades``' key: the leading digits of an id, as the regex ``^(\\d+)`` reads them, whether the ids are
    all plain numbers (cast directly) or not (the others through the regex): signs, spaces, aggregated "f-l" ids,
    Unicode digits, numbers too large for Int64."""
    odd = ["5", "+5", "-5", " 5", "5 ", "05", "٣", "5٣", "99999999999999999999", "1-2", "12abc", "", None, "0x10"]
    plain = ["1", "22", None, "9223372036854775807", "007"]
    for ids in (odd, plain, [*plain, "1-2"]):
        series = pl.Series("trade_id", ids, dtype=pl.String)
        expected = series.str.extract(r"^(\d+)").cast(pl.Int64, strict=False)
        assert _leading_number(series).to_list() == expected.to_list(), ids
    assert _leading_number(pl.Series("trade_id", odd)).to_list() == [
        5, None, None, None, 5, 5, None, None, None, 1, 12, None, None, 0
    ]  # fmt: skip


def test_several_windows_at_once_equal_each_alone(spot: Recording) -> None:
    """``window_trades_many`` (a range run's hours at once, each hour's reads stamped with it) gives each hour what
    windowing it alone gives, with everything that makes a window more than a filter reaching across the hours'
    edges: trade and aggTrade frames of the same fills (overlaps), 2,000 frames received again by a second
    connection (duplicates), frames delivered 20 minutes late, damaged frames (rejects), two parts of normalized
    rows (a range's read spans) and a minute of trades lost live and fetched from REST history, one record of it
    broken. The backfill rows are built from the recording's own trades in Binance's documented
    ``historicalTrades`` layout (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-
    endpoints, "Old trade lookup": id, price, qty, quoteQty, time, isBuyerMaker, isBestMatch): no REST recording
    of this market exists."""
    raw = raw_frame(as_agg_trades([spot.lines], keep_trades=True)[0])
    trades = raw.filter(pl.col("channel") == "trade")
    lost = trades.filter(_trade_time().is_between(H00 + 5 * MIN, H00 + 6 * MIN, closed="left"))
    late = (pl.col("channel") != "control") & _trade_time().is_between(H00 - 30 * 10**9, H00, closed="left")
    bad = trades.get_column("seq").gather([10, 5000, 12000]).to_list()
    raw = pl.concat(
        [
            raw.join(lost.select("seq"), on="seq", how="anti").with_columns(
                recv_ts=pl.when(late).then(pl.col("recv_ts") + pl.duration(minutes=20)).otherwise("recv_ts"),
                payload=pl.when(pl.col("seq").is_in(bad)).then(pl.col("payload").str.slice(0, 60)).otherwise("payload"),
            ),
            trades.slice(2000, 2000).with_columns(
                conn_id=pl.lit("second"), recv_ts=pl.col("recv_ts") + pl.duration(milliseconds=1)
            ),
        ]
    ).sort("recv_ts", maintain_order=True)
    records = [json.loads(p)["data"] for p in lost.get_column("payload")]
    rest = [
        {"id": d["t"], "price": d["p"], "qty": d["q"], "quoteQty": "0", "time": d["T"], "isBuyerMaker": d["m"],
         "isBestMatch": True}
        for d in records
    ]  # fmt: skip
    broken = [{**rest[0], "price": 1.5}]  # a JSON number: rejected with its reason
    backfill = pl.DataFrame(
        {
            "recv_ts": [H00 + 3 * HOUR] * 2,
            "exchange": ["binance"] * 2,
            "channel": ["trade"] * 2,
            "symbol": ["BTCUSDT"] * 2,
            "conn_id": ["backfill-1"] * 2,
            "seq": [0, 1],
            "payload": [json.dumps(rest), json.dumps(broken)],
            "minute": [H00 + 5 * MIN] * 2,
        },
        schema_overrides={"recv_ts": pl.Datetime("ns", "UTC")},
    )
    recv = pl.col("recv_ts").cast(pl.Int64)
    parts = [
        normalize_raw(raw.filter(cond), normalize=registry_normalizer, skew_ns=SKEW)
        for cond in (recv < H00, recv >= H00)
    ]
    hours = [H23 - HOUR, H23, H00, H00 + HOUR]

    many = window_trades_many(
        [TradesReads(h, parts, backfill) for h in hours], HOUR, LATENESS, normalize=registry_normalizer, skew_ns=SKEW
    )

    assert list(many) == hours
    for h in hours:
        alone = window_trades(parts, h, h + HOUR, LATENESS, normalize=registry_normalizer, skew_ns=SKEW,
                              backfill=backfill)  # fmt: skip
        for name in ("trades", "observed", "rejects", "late"):
            assert getattr(many[h], name).equals(getattr(alone, name)), f"{name} of hour {h}"
        assert (many[h].raw_rows, many[h].duplicates, many[h].overlaps) == (
            alone.raw_rows, alone.duplicates, alone.overlaps
        )  # fmt: skip
    w23, w00 = many[H23], many[H00]
    assert (w23.duplicates, w00.duplicates) == (2000, 0) and w23.overlaps > 0 and w00.overlaps > 0
    assert w23.late.height == 0 and w00.late.height > 0  # H23's trades received after its window stopped reading
    lost_ids = {str(d["t"]) for d in records}
    assert w00.trades.filter(pl.col("trade_id").is_in(lost_ids)).height == len(lost_ids) > 0  # from the backfill
    assert w00.rejects.filter(pl.col("conn_id") == "backfill-1").get_column("seq").to_list() == [1]
    assert w23.rejects.height == 2 and w00.rejects.height == 2
    assert many[H23 - HOUR].trades.height == 0 and many[H00 + HOUR].trades.height == 0
