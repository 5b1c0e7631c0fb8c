"""Coverage rules on small, hand-built event logs (the shapes the collector and import-capture record; see
mdplatform.exchanges.EventKind): what counts as observed, and why a gap is one."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from mdplatform._time import from_ns
from mdplatform.schemas import EVENTS, TRADE_LINEAGE, TRADES
from mdplatform.transforms import (
    CoverageRules,
    build_candles,
    build_candles_hours,
    compute_coverage,
    compute_coverage_windows,
    registry_stream_kinds,
    registry_trade_channels,
    symbol_coverage,
    validate_candles,
    validate_coverage,
)

S = 10**9
M = 60 * S
H = 1723158000 * S  # 2024-08-08 23:00 UTC
OFFSET = 1_300_000_000  # the exchange clock runs 1.3 s ahead of ours, as in the bundled recordings
RULES = CoverageRules()


class Log:
    """Builds an events log and the trades received, for one Binance spot connection at a time."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []
        self.trades: list[dict[str, object]] = []
        self.next_id = 1000

    def event(self, r: int, conn: str, kind: str, *, channel: str = "", symbol: str = "", e: int | None = None,
              fr: int | None = None, detail: str = "", exchange: str = "binance") -> None:  # fmt: skip
        self.events.append(
            dict(
                recv_ts=r,
                exchange=exchange,
                conn_id=conn,
                kind=kind,
                channel=channel,
                symbol=symbol,
                seq=0,
                exchange_ts=e,
                frame_recv_ts=fr,
                detail=detail,
            )
        )

    def session(self, conn: str, r0: int, r1: int, *, close: str | None = "1000 bye", pongs: bool = True,
                symbol: str = "BTCUSDT", channel: str = "trade", exchange: str = "binance",
                frames_until: int | None = None, restate: bool = False) -> None:  # fmt: skip
        """A connection up over local time [r0, r1]: open, subscribed, start; frames (with exchange times) arrive
        until ``frames_until`` (default r1); pongs every 5 s while ``pongs``; close at r1 unless None (crash).
        ``restate``: the subscription restated with the first pong of every minute, as the collector does (an
        hour read on its own sees a long connection's streams)."""
        self.event(r0, conn, "open", exchange=exchange, detail="ws://x")
        self.event(r0, conn, "subscribed", channel=channel, symbol=symbol, exchange=exchange)
        self.event(r0 + S, conn, "start", e=r0 + S + OFFSET, fr=r0 + S, exchange=exchange)
        stop = r1 if frames_until is None else frames_until
        r = r0 + 5 * S
        while r < r1:
            newest = min(r, stop)
            if pongs:
                self.event(r, conn, "alive", e=newest + OFFSET, fr=newest, exchange=exchange)
                if restate and (r - r0) % M < 5 * S:
                    self.event(r, conn, "subscribed", channel=channel, symbol=symbol, exchange=exchange)
            r += 5 * S
        if close is not None:
            newest = min(r1, stop)
            self.event(r1, conn, "close", e=newest + OFFSET, fr=newest, detail=close, exchange=exchange)

    def trade(self, ts: int, conn: str, *, skip_ids: int = 0, symbol: str = "BTC-USDT", price: str = "61000.5",
              recv: int | None = None, seq: bool = True) -> None:  # fmt: skip
        self.next_id += skip_ids
        tid = self.next_id
        self.next_id += 1
        self.trades.append(
            dict(
                exchange="binance",
                symbol=symbol,
                ts=ts,
                recv_ts=recv if recv is not None else ts - OFFSET + 50_000_000,
                trade_id=str(tid),
                price=Decimal(price),
                size=Decimal("0.001"),
                side="buy",
                fills=1,
                channel="trade",
                conn_id=conn,
                seq_id=tid if seq else None,
                fill_first=tid if seq else None,
                fill_last=tid if seq else None,
            )
        )

    def coverage(self, start: int = H, end: int = H + 3600 * S, lateness: int | None = None) -> pl.DataFrame:
        """The coverage of [start, end); with ``lateness``, from what was received in [start - lateness, end +
        lateness) only, as the pipeline reads an hour (else from everything)."""
        events = pl.DataFrame(self.events, schema=EVENTS)
        trades = pl.DataFrame(self.trades, schema={**TRADES, **TRADE_LINEAGE})
        if lateness is not None:
            received = pl.col("recv_ts").dt.epoch("ns").is_between(start - lateness, end + lateness, closed="left")
            events, trades = events.filter(received), trades.filter(received)
        cov = compute_coverage(events, trades, start, end, kinds=registry_stream_kinds(), rules=RULES)
        assert validate_coverage(cov, start, end) == []
        return cov

    def windows(self, starts: list[int], length: int, lateness: int) -> dict[int, pl.DataFrame]:
        """``compute_coverage_windows`` of [w, w + length) for each w, each from what was received in [w - lateness,
        w + length + lateness), stamped with its window (as a range run reads its hours)."""
        events = pl.DataFrame(self.events, schema=EVENTS)
        trades = pl.DataFrame(self.trades, schema={**TRADES, **TRADE_LINEAGE})

        def read(df: pl.DataFrame, w: int) -> pl.DataFrame:
            received = pl.col("recv_ts").dt.epoch("ns").is_between(w - lateness, w + length + lateness, closed="left")
            return df.filter(received).with_columns(_w=pl.lit(w, pl.Int64))

        return compute_coverage_windows(
            pl.concat([read(events, w) for w in starts]),
            pl.concat([read(trades, w) for w in starts]),
            starts,
            length,
            kinds=registry_stream_kinds(),
            rules=RULES,
        )

    def candles(self, cov: pl.DataFrame) -> pl.DataFrame:
        trades = pl.DataFrame(self.trades, schema={**TRADES, **TRADE_LINEAGE}).select(list(TRADES))
        covered, horizon = symbol_coverage(cov, registry_trade_channels())
        got = build_candles(trades, covered, horizon, publish_start_ns=H, publish_end_ns=H + 3600 * S)
        assert validate_candles(got, H, H + 3600 * S) == []
        return got


def _rows(cov: pl.DataFrame) -> list[tuple[str, str, str, str | None]]:
    return [
        (f"{a:%H:%M:%S.%f}"[:-3], f"{b:%H:%M:%S.%f}"[:-3], status, reason)
        for a, b, status, reason in cov.select("start_time", "end_time", "status", "reason").iter_rows()
    ]


def _minutes(candles: pl.DataFrame, tf: str = "1m") -> dict[str, tuple[int, bool]]:
    one = candles.filter(pl.col("timeframe") == tf)
    return {f"{t:%H:%M}": (n, c) for t, n, c in one.select("open_time", "trade_count", "complete").iter_rows()}


def test_quiet_stretch_with_pongs_is_covered_and_flat_candles_are_complete() -> None:
    """No trade for 3 minutes, the connection answers pings: a quiet market, not an outage."""
    log = Log()
    log.session("A", H - 2 * M, H + 10 * M)
    for t in (H + 10 * S, H + 50 * S, H + 4 * M + 5 * S, H + 8 * M):
        log.trade(t, "A")
    cov = log.coverage()
    assert [r[2] for r in _rows(cov)] == ["covered"]
    mins = _minutes(log.candles(cov))
    # the session closes at 23:10 (exchange clock 23:10:01.3): every minute through 23:09 is observed
    assert [m for m, (n, c) in mins.items() if n == 0] == [
        "23:01",
        "23:02",
        "23:03",
        "23:05",
        "23:06",
        "23:07",
        "23:09",
    ]
    assert all(c for _, c in mins.values())
    candles = log.candles(cov)
    flat = candles.filter((pl.col("timeframe") == "1m") & (pl.col("trade_count") == 0))
    assert set(flat.get_column("close").to_list()) == {Decimal("61000.5")}


def test_silence_without_pongs_is_a_gap_and_gets_no_candles() -> None:
    """The same stretch without pongs (and no id to prove anything): not observed, so no flat candles."""
    log = Log()
    log.session("A", H - 2 * M, H + 10 * M, pongs=False)
    for r in range(H - 2 * M, H + M, 5 * S):  # frames (and pongs) only until 23:01
        log.event(r, "A", "alive", e=r + OFFSET, fr=r)
    for r in range(H + 4 * M, H + 10 * M, 5 * S):
        log.event(r, "A", "alive", e=r + OFFSET, fr=r)
    log.trade(H + 10 * S, "A", seq=False)
    log.trade(H + 5 * M, "A", seq=False)
    cov = log.coverage()
    gaps = cov.filter(pl.col("status") == "gap")
    assert gaps.get_column("reason").to_list() == ["silent"]
    assert gaps.get_column("detail").item().startswith("nothing received for 185")
    mins = _minutes(log.candles(cov))
    # 23:00 traded but its end is not proven (23:00:59.x - grace): incomplete; 23:01..23:03: not observed, no candle;
    # 23:04: observed from 23:04:01.3, no trades: no candle; 23:05 traded, complete
    assert "23:01" not in mins and "23:02" not in mins and "23:03" not in mins and "23:04" not in mins
    assert mins["23:00"] == (1, False) and mins["23:05"] == (1, True)
    # the price after an unobserved stretch is unknown until the next trade: 23:06.. flats follow the 23:05 trade
    assert mins["23:06"] == (0, True)


def test_reconnect_gap_is_not_connected_unless_consecutive_ids_prove_it() -> None:
    log = Log()
    log.session("A", H - 2 * M, H + 3 * M + 30 * S, close="1006 connection lost")
    log.session("B", H + 5 * M, H + 70 * M)
    log.trade(H + 3 * M + 20 * S, "A")
    log.trade(H + 5 * M + 30 * S, "B", skip_ids=7)
    cov = log.coverage()
    # the ids bound the loss to [23:03:20, 23:05:30]; the connection was down from 23:03:30.3 (its newest exchange
    # time less the grace) until the new one's first frame, 23:05:01 local = 23:05:02.3 exchange
    assert _rows(cov.filter(pl.col("status") == "gap")) == [
        ("23:03:20.000", "23:03:30.300", "gap", "id gap"),
        ("23:03:30.300", "23:05:02.300", "gap", "not connected"),
        ("23:05:02.300", "23:05:30.000", "gap", "id gap"),
    ]
    gaps = cov.filter(pl.col("status") == "gap")
    assert gaps.get_column("missing").to_list() == [7, None, None]
    assert gaps.get_column("detail").to_list()[1] == (
        "connection A closed: 1006 connection lost; ids 1001..1007 missing"
    )
    mins = _minutes(log.candles(cov))
    assert mins["23:03"] == (1, False) and mins["23:05"] == (1, False)
    assert "23:04" not in mins
    five = _minutes(log.candles(cov), "5m")
    assert five["23:00"] == (1, False) and five["23:05"] == (1, False)

    # the same outage where the next trade has the next id: nothing was missed, everything is complete
    proven = Log()
    proven.session("A", H - 2 * M, H + 3 * M + 30 * S, close="1006 connection lost")
    proven.session("B", H + 5 * M, H + 70 * M)
    proven.trade(H + 3 * M + 20 * S, "A")
    proven.trade(H + 5 * M + 30 * S, "B")
    cov = proven.coverage()
    assert [r[2] for r in _rows(cov)] == ["covered"]
    mins = _minutes(proven.candles(cov))
    assert mins["23:04"] == (0, True) and mins["23:03"] == (1, True)


def test_id_gap_inside_a_live_session_wins_over_the_session() -> None:
    log = Log()
    log.session("A", H - 2 * M, H + 70 * M)
    log.trade(H + 2 * M + 10 * S, "A")
    log.trade(H + 2 * M + 40 * S, "A", skip_ids=3)
    cov = log.coverage()
    gap = cov.filter(pl.col("status") == "gap").row(0, named=True)
    assert (gap["reason"], gap["missing"], gap["detail"]) == ("id gap", 3, "ids 1001..1003 missing")
    assert _minutes(log.candles(cov))["23:02"] == (2, False)


def test_crash_is_lost_on_crash_and_the_stream_closes_on_the_exchange_clock() -> None:
    """A collector killed at 23:10 (no close event) and restarted at 23:20 on another connection."""
    log = Log()
    log.session("A", H - 2 * M, H + 10 * M, close=None)
    log.session("B", H + 20 * M, H + 70 * M)
    log.trade(H + 5 * M, "A")
    log.trade(H + 25 * M, "B", skip_ids=100)
    cov = log.coverage()
    gaps = cov.filter(pl.col("status") == "gap")
    assert gaps.get_column("reason").to_list() == ["id gap", "lost on crash", "id gap"]
    assert gaps.get_column("detail").to_list()[1].startswith("connection A stopped without closing (crash or kill)")


def test_lagging_connection_holds_back_only_its_own_streams() -> None:
    """Two connections: ETH's lags 2 minutes behind BTC's at the end of the window. Each stream's rows end where
    its own connection has shown the exchange clock to be."""
    log = Log()
    log.session("A", H - 2 * M, H + 40 * M, close=None, symbol="BTCUSDT")
    log.session("B", H - 2 * M, H + 38 * M, close=None, symbol="ETHUSDT")
    cov = log.coverage(H, H + 3600 * S)
    ends = {s: f"{e:%H:%M:%S}" for s, e in cov.group_by("symbol").agg(pl.col("end_time").max()).iter_rows()}
    # newest pong 23:39:55 (23:37:55 for ETH), exchange clock 1.3 s ahead, less the 1 s grace
    assert ends == {"BTC-USDT": "23:39:55", "ETH-USDT": "23:37:55"}


def test_bogus_exchange_time_moves_nothing() -> None:
    """An alive row whose newest frame claims a time a year ahead (a broken frame) is not evidence."""
    log = Log()
    log.session("A", H - 2 * M, H + 10 * M, close=None)
    log.event(H + 10 * M + 2 * S, "A", "alive", e=H + 365 * 24 * 3600 * S, fr=H + 10 * M + 2 * S)
    cov = log.coverage()
    assert cov.get_column("end_time").max() < pl.Series([H + 11 * M]).cast(pl.Datetime("ns", "UTC")).item()


def test_book_sequence_gap_until_synced() -> None:
    log = Log()
    log.session("A", H - 2 * M, H + 70 * M, channel="depth")
    log.event(
        H + 5 * M,
        "A",
        "gap",
        channel="depth",
        symbol="BTCUSDT",
        e=H + 5 * M + OFFSET,
        fr=H + 5 * M,
        detail="U=12 > previous u+1=10",
    )
    log.event(
        H + 5 * M + 2 * S,
        "A",
        "synced",
        channel="depth",
        symbol="BTCUSDT",
        e=H + 5 * M + 2 * S + OFFSET,
        fr=H + 5 * M + 2 * S,
    )
    cov = log.coverage()
    assert _rows(cov) == [
        ("23:00:00.000", "23:05:01.300", "covered", None),
        ("23:05:01.300", "23:05:03.300", "gap", "sequence gap"),
        ("23:05:03.300", "00:00:00.000", "covered", None),
    ]


def test_refused_subscription() -> None:
    log = Log()
    log.session("A", H - 2 * M, H + 70 * M, close=None)
    log.event(H - 2 * M, "A", "subscribed", channel="trade", symbol="FOOUSDT")
    log.event(H - 2 * M, "A", "sub_error", channel="trade", symbol="FOOUSDT", detail="-1121: Invalid symbol.")
    cov = log.coverage()
    foo = cov.filter(pl.col("symbol") == "FOO-USDT")
    assert foo.select("status", "reason").rows() == [("gap", "subscription refused")]


def test_other_trade_channel_fills_a_gap() -> None:
    """trade drops out for two minutes while aggTrade (another connection) goes on: the trade stream's gap is
    filled by the other stream and the symbol's candles stay complete."""
    log = Log()
    log.session("A", H - 2 * M, H + 3 * M, channel="trade", close="1006 lost")
    log.session("T2", H + 5 * M, H + 70 * M, channel="trade")
    log.session("G", H - 2 * M, H + 70 * M, channel="aggTrade")
    cov = log.coverage()
    gap = cov.filter((pl.col("channel") == "trade") & (pl.col("status") == "gap")).row(0, named=True)
    assert gap["reason"] == "not connected" and gap["filled"] == 1.0
    covered, _ = symbol_coverage(cov, registry_trade_channels())
    assert covered.select("start", "end").rows() == [(H, H + 3600 * S)]


def test_nothing_observed_gives_no_rows_and_no_candles() -> None:
    log = Log()
    cov = log.coverage()
    assert cov.height == 0
    assert log.candles(cov).height == 0
    # trades without any event (a lake written by another tool): the trades themselves are the evidence
    log.trade(H + 10 * S, "X")
    log.trade(H + 20 * S, "X")
    cov = log.coverage()
    assert _rows(cov) == [
        ("23:00:00.000", "23:00:10.000", "gap", "not connected"),
        ("23:00:10.000", "23:00:20.000", "covered", None),
    ]


def test_a_4h_candle_over_an_hour_never_materialized_is_not_complete() -> None:
    """Four hours fully observed (20:00 .. 24:00); the 4h candle closing at midnight is built from the stored 1m
    candles of the hours before. With hour 21 never materialized it is published, but not complete."""
    log = Log()
    h20 = H - 3 * 3600 * S
    log.session("A", h20 - 2 * M, H + 70 * M)
    for t in range(h20, H + 3600 * S, 20 * S):
        log.trade(t, "A")
    trades = pl.DataFrame(log.trades, schema={**TRADES, **TRADE_LINEAGE}).select(list(TRADES))

    def hours(skip: int | None) -> pl.DataFrame:
        earlier: pl.DataFrame | None = None
        for hour in range(h20, H + 3600 * S, 3600 * S):
            if hour == skip:
                continue
            cov = log.coverage(hour, hour + 3600 * S)
            covered, horizon = symbol_coverage(cov, registry_trade_channels())
            got = build_candles(
                trades, covered, horizon, publish_start_ns=hour, publish_end_ns=hour + 3600 * S, earlier_1m=earlier
            )
            earlier = got if earlier is None else pl.concat([earlier, got])
        assert earlier is not None
        return earlier.filter(pl.col("timeframe") == "4h")

    whole = hours(None).row(0, named=True)
    assert (whole["complete"], whole["trade_count"], whole["coverage"]) == (True, 720, 1.0)
    missing = hours(h20 + 3600 * S).row(0, named=True)
    assert (missing["complete"], missing["trade_count"], missing["coverage"]) == (False, 540, 0.75)


def test_candles_of_consecutive_hours_in_one_pass_equal_hour_by_hour() -> None:
    """``build_candles_hours`` (a range run builds its hours' candles at once) gives each hour what building the
    hours one after the other gives, each hour's coverage from what was received around it (15 minutes either
    side, as the pipeline reads): flat minutes carried across an hour's start; a collector lost at 23:55 (hour 23
    stops at its horizon) and a new one from 00:29 whose first trade id follows the last one's (hour 00's first
    minutes are proven to have had no trade, but no price is carried into them: the hour before ended short of
    them); a 1h candle from the hour's 1m candles; an hour with nothing observed."""
    log = Log()
    hour, late = 3600 * S, 15 * M
    h21 = H - 2 * hour
    log.session("A", h21 - 2 * M, H + 55 * M, close=None)
    log.session("C", H + hour + 29 * M, H + 2 * hour + 10 * M)
    quiet = [(H - hour - 3 * M, H - hour + 2 * M), (H - 2 * M, H + M)]  # no trades around 22:00 and 23:00
    for conn, t0, t1, step in [
        ("A", h21, H + 55 * M, 20 * S),
        ("C", H + hour + 29 * M + S, H + 2 * hour + 9 * M, 30 * S),
    ]:
        for t in range(t0, t1, step):
            if not any(lo <= t < hi for lo, hi in quiet):
                log.trade(t, conn)
    trades = pl.DataFrame(log.trades, schema={**TRADES, **TRADE_LINEAGE}).select(list(TRADES))
    hours = list(range(h21, H + 4 * hour, hour))
    coverage = {h: log.coverage(h, h + hour, late) for h in hours}

    one_by_one: dict[int, pl.DataFrame] = {}
    earlier: pl.DataFrame | None = None
    for h in hours:
        covered, horizon = symbol_coverage(coverage[h], registry_trade_channels())
        own = trades.filter(pl.col("ts").dt.epoch("ns").is_between(h, h + hour, closed="left"))
        one_by_one[h] = build_candles(own, covered, horizon, publish_start_ns=h, publish_end_ns=h + hour,
                                      earlier_1m=earlier)  # fmt: skip
        earlier = one_by_one[h] if earlier is None else pl.concat([earlier, one_by_one[h]])

    stamped = pl.concat([coverage[h].with_columns(_w=pl.lit(h, pl.Int64)) for h in hours])
    covered, horizon = symbol_coverage(stamped, registry_trade_channels(), by=["_w"])
    at_once = build_candles_hours(trades, covered, horizon, start_ns=hours[0], end_ns=hours[-1] + hour)

    assert list(at_once) == hours
    for h in hours:
        assert at_once[h].equals(one_by_one[h]), f"hour {from_ns(h):%H}"
    minutes = {h: _minutes(at_once[h]) for h in hours}
    assert minutes[H - hour]["22:00"] == (0, True) and minutes[H]["23:00"] == (0, True)  # flat, carried over
    assert max(minutes[H]) == "23:53"  # the hour ends at its horizon (its collector's last pong, less the grace)
    # hour 00: complete minutes without trades (the ids prove none happened), but no candle before the first trade
    assert min(minutes[H + hour]) == "00:29" and minutes[H + hour]["00:29"][0] > 0
    assert at_once[H].filter(pl.col("timeframe") == "1h").height == 0  # 00:00 is past hour 23's horizon
    assert at_once[H - hour].filter(pl.col("timeframe") == "1h").select("complete").item() is True
    assert at_once[H + 3 * hour].height == 0


def test_coverage_of_several_windows_at_once_equals_each_alone() -> None:
    """``compute_coverage_windows`` (a range run's hours at once, each hour's reads stamped with it) gives each
    hour what computing it alone gives, over every kind of evidence, many of them reaching across an hour's edge:
    a connection lost (closed) at 21:40 and one killed at 23:10 without closing; a connection silent from 22:55
    to 23:01; an id gap inside a session and a new session whose first id jumps; another trade channel (aggTrade)
    filling trade's gaps; a depth stream out of sync across 23:00; a refused subscription; a REST backfill
    proving a stretch and another it could not reach; a bogus exchange time; and an hour with nothing received."""
    log = Log()
    hour, late = 3600 * S, 15 * M
    h21 = H - 2 * hour
    log.session("A", h21 - 2 * M, h21 + 40 * M, close="1006 connection lost", restate=True)
    log.session("B", h21 + 45 * M, H + 10 * M, close=None, restate=True)
    log.session("C", H + 20 * M, H + hour + 30 * M, restate=True)
    log.session("G", h21 - 2 * M, H + 50 * M, channel="aggTrade", restate=True)
    log.session("D", h21 - 2 * M, H + hour, channel="depth", close=None, restate=True)
    log.session("E", H - 10 * M, H - 5 * M, symbol="ETHUSDT", close=None, restate=True)
    for r in range(H + M, H + 5 * M, 5 * S):  # E's pongs come back after six minutes of nothing
        log.event(r, "E", "alive", e=r + OFFSET, fr=r)
    log.event(H + 5 * M, "E", "close", e=H + 5 * M + OFFSET, fr=H + 5 * M, detail="1000 bye")
    log.event(h21 - 2 * M, "A", "subscribed", channel="trade", symbol="FOOUSDT")
    log.event(h21 - 2 * M, "A", "sub_error", channel="trade", symbol="FOOUSDT", detail="-1121: Invalid symbol.")
    for r, kind in [(H - 3 * M, "gap"), (H + 2 * M, "synced"), (H + 40 * M, "checksum"), (H + 41 * M, "synced")]:
        log.event(r, "D", kind, channel="depth", symbol="BTCUSDT", e=r + OFFSET, fr=r, detail="U=12 > u+1=10")
    log.event(H + 9 * M, "B", "alive", e=H + 365 * 24 * 3600 * S, fr=H + 9 * M)  # a broken frame's time
    log.event(H + 12 * M, "backfill-1", "backfilled", channel="trade", symbol="BTCUSDT", e=H + 10 * M,
              fr=H + 12 * M, detail=f'{{"end": {H + 15 * M}, "trades": 3}}')  # fmt: skip
    log.event(H + 12 * M, "backfill-1", "unreachable", channel="trade", symbol="BTCUSDT", e=H + 15 * M,
              fr=H + 12 * M, detail=f'{{"end": {H + 20 * M}, "reason": "history ends"}}')  # fmt: skip
    for conn, t0, t1, step in [
        ("A", h21, h21 + 40 * M, 20 * S),
        ("B", h21 + 46 * M, H + 10 * M, 20 * S),
        ("C", H + 21 * M, H + hour + 30 * M, 30 * S),
    ]:
        for i, t in enumerate(range(t0, t1, step)):
            log.trade(t, conn, skip_ids=100 if i == 0 and conn == "C" else 3 if i == 50 else 0)
    hours = list(range(h21 - hour, H + 3 * hour, hour))

    at_once = log.windows(hours, hour, late)

    assert list(at_once) == hours
    for h in hours:
        alone = log.coverage(h, h + hour, late)
        assert at_once[h].equals(alone), f"hour {from_ns(h):%H}"
    got = pl.concat(at_once.values())
    reasons = set(got.get_column("reason").drop_nulls().to_list())
    assert reasons == {
        "not connected", "lost on crash", "silent", "id gap", "sequence gap", "checksum mismatch",
        "subscription refused",
    }  # fmt: skip
    assert got.filter(pl.col("filled") > 0).height > 0  # aggTrade filled some of trade's gaps
    assert got.filter(pl.col("detail").str.contains("REST history")).height > 0  # the backfill proved a stretch
    assert got.filter(pl.col("detail").str.contains("history ends")).height > 0
    assert at_once[hours[-1]].height == 0  # nothing received around 01:00
