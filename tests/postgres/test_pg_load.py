"""Window loads: what is loaded is what is read back, a re-run replaces instead of duplicating, a failure half-way
changes nothing, and two partitions load side by side."""

from __future__ import annotations

import threading

import polars as pl
import pytest
from pgdata import H0, HOUR, TRADE_COLUMNS, fetch, trades_frame

from mdplatform.pg import PgError, Window, replace_window, replace_windows


@pytest.fixture
def dsn(migrated: str) -> str:
    fetch_clear(migrated)
    return migrated


def fetch_clear(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("TRUNCATE trades, coverage, candles")


def trades_in(dsn: str, start_ns: int, end_ns: int) -> list[tuple[object, ...]]:
    return fetch(
        dsn,
        f"SELECT {TRADE_COLUMNS} FROM trades WHERE ts >= to_timestamp(%s) AND ts < to_timestamp(%s) ORDER BY trade_id",
        [start_ns // 10**9, end_ns // 10**9],
    )


def test_load_then_read_back_the_same_rows(dsn: str) -> None:
    df = trades_frame(H0, 500)
    assert replace_window("trades", df, "ts", H0, H0 + HOUR, dsn=dsn) == (0, 500)
    assert trades_in(dsn, H0, H0 + HOUR) == df.sort("trade_id").rows()


def test_rerunning_a_partition_replaces_it(dsn: str) -> None:
    before, hour, after = (
        trades_frame(H0 - HOUR, 50, seed=1),
        trades_frame(H0, 300),
        trades_frame(H0 + HOUR, 70, seed=2),
    )
    for start, df in ((H0 - HOUR, before), (H0, hour), (H0 + HOUR, after)):
        replace_window("trades", df, "ts", start, start + HOUR, dsn=dsn)
    result = replace_window("trades", hour, "ts", H0, H0 + HOUR, dsn=dsn)
    assert (result.deleted, result.inserted) == (300, 300)
    assert trades_in(dsn, H0, H0 + HOUR) == hour.sort("trade_id").rows()
    assert fetch(dsn, "SELECT count(*), count(DISTINCT trade_id) FROM trades") == [(420, 420)]
    # a re-run with fewer rows (a late correction) leaves exactly those; the neighbours are untouched
    assert replace_window("trades", hour.head(10), "ts", H0, H0 + HOUR, dsn=dsn) == (300, 10)
    assert trades_in(dsn, H0, H0 + HOUR) == hour.head(10).sort("trade_id").rows()
    assert trades_in(dsn, H0 - HOUR, H0) == before.sort("trade_id").rows()
    assert trades_in(dsn, H0 + HOUR, H0 + 2 * HOUR) == after.sort("trade_id").rows()


def test_an_empty_partition_clears_its_window(dsn: str) -> None:
    replace_window("trades", trades_frame(H0, 20), "ts", H0, H0 + HOUR, dsn=dsn)
    assert replace_window("trades", trades_frame(H0, 0), "ts", H0, H0 + HOUR, dsn=dsn) == (20, 0)
    assert fetch(dsn, "SELECT count(*) FROM trades") == [(0,)]


def test_closed_right_windows_own_their_end(dsn: str) -> None:
    """Candles are loaded by close_time in (hour, hour + 1h]: a candle closing on the hour belongs to the hour
    before, and replacing the next hour must not delete it."""
    import datetime as dt
    from decimal import Decimal

    from mdplatform.schemas import CANDLES

    def candle(close_ns: int) -> dict[str, object]:
        close = dt.datetime.fromtimestamp(close_ns / 1e9, dt.UTC)
        p = Decimal("1.000000000001")
        return {
            "exchange": "binance", "symbol": "BTC-USDT", "timeframe": "1h", "open_time": close - dt.timedelta(hours=1),
            "close_time": close, "open": p, "high": p, "low": p, "close": p, "volume": p, "quote_volume": p,
            "trade_count": 1, "taker_buy_volume": p, "taker_buy_quote_volume": p, "vwap": p, "complete": True,
            "coverage": 1.0,
        }  # fmt: skip

    on_the_hour = pl.DataFrame([candle(H0 + HOUR)], schema=CANDLES)
    replace_window("candles", on_the_hour, "close_time", H0, H0 + HOUR, closed="right", dsn=dsn)
    empty = on_the_hour.clear()
    assert replace_window("candles", empty, "close_time", H0 + HOUR, H0 + 2 * HOUR, closed="right", dsn=dsn) == (0, 0)
    assert fetch(dsn, "SELECT count(*) FROM candles") == [(1,)]
    assert replace_window("candles", empty, "close_time", H0, H0 + HOUR, closed="right", dsn=dsn) == (1, 0)


def test_a_row_failing_half_way_changes_nothing(dsn: str) -> None:
    first = trades_frame(H0, 1_000)
    replace_window("trades", first, "ts", H0, H0 + HOUR, dsn=dsn)
    rerun = trades_frame(H0, 1_000, seed=7)
    # row 600 of the COPY breaks CHECK (side IN ('buy', 'sell')): the server has taken 599 rows and deleted the
    # window by then
    bad = rerun.with_columns(
        pl.when(pl.int_range(pl.len()) == 600).then(pl.lit("hold")).otherwise("side").alias("side")
    )
    with pytest.raises(PgError, match="trades_side_check"):
        replace_window("trades", bad, "ts", H0, H0 + HOUR, dsn=dsn)
    assert trades_in(dsn, H0, H0 + HOUR) == first.sort("trade_id").rows()


def test_a_failure_in_the_second_table_keeps_the_first(dsn: str) -> None:
    """``replace_windows`` is one transaction: the coverage load failing undoes the trades load too."""
    from mdplatform.schemas import COVERAGE

    old = trades_frame(H0, 100)
    replace_window("trades", old, "ts", H0, H0 + HOUR, dsn=dsn)
    broken_coverage = pl.DataFrame(
        {"exchange": ["binance"], "symbol": ["BTC-USDT"], "channel": ["trade"], "start_time": [H0], "end_time": [H0],
         "status": ["unknown"], "reason": [None], "detail": [None], "missing": [None], "filled": [0.0]},
    ).with_columns(pl.col("start_time", "end_time").cast(pl.Datetime("ns", "UTC"))).cast(COVERAGE)  # type: ignore[arg-type]  # fmt: skip
    with pytest.raises(PgError, match="coverage_status_check"):
        replace_windows(
            [
                Window("trades", trades_frame(H0, 200, seed=3), "ts", H0, H0 + HOUR),
                Window("coverage", broken_coverage, "start_time", H0, H0 + HOUR),
            ],
            dsn=dsn,
        )
    assert trades_in(dsn, H0, H0 + HOUR) == old.sort("trade_id").rows()
    assert fetch(dsn, "SELECT count(*) FROM coverage") == [(0,)]


def test_rows_outside_the_window_are_refused(dsn: str) -> None:
    """A row past the window would survive the next re-run's DELETE and be duplicated by it."""
    stray = trades_frame(H0, 10).vstack(trades_frame(H0 + HOUR, 1, seed=9))
    with pytest.raises(PgError, match=r"1 row.*outside the window"):
        replace_window("trades", stray, "ts", H0, H0 + HOUR, dsn=dsn)
    assert fetch(dsn, "SELECT count(*) FROM trades") == [(0,)]


def test_two_partitions_load_concurrently(dsn: str) -> None:
    frames = {start: trades_frame(start, 20_000, seed=i) for i, start in enumerate((H0, H0 + HOUR))}
    barrier = threading.Barrier(len(frames))
    errors: list[BaseException] = []

    def load(start: int) -> None:
        try:
            barrier.wait()
            for _ in range(3):  # re-runs while the other hour loads
                replace_window("trades", frames[start], "ts", start, start + HOUR, dsn=dsn)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(start,)) for start in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for start, df in frames.items():
        assert trades_in(dsn, start, start + HOUR) == df.sort("trade_id").rows()
    assert fetch(dsn, "SELECT count(*) FROM trades") == [(40_000,)]
