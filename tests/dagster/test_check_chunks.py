"""A run's hours are validated in chunks: consecutive hours together (GX's cost is per validation), bounded in rows
(what GX converts at once) and in hours; a chunk that fails is validated again hour by hour, so each hour has its
own verdict."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from assets._checks import CHUNK_HOURS, CHUNK_ROWS, Partitions, _chunks, _each_alone, _PerHour
from assets._settings import Settings
from mdplatform.quality import Suite, merge_suites, trades_suites, validate
from mdplatform.quality._rules import between, unique
from mdplatform.schemas import TRADES
from mdplatform.transforms import HOUR_NS
from mdplatform.warehouse import partition_path, write_partition


def test_busy_hours_fill_a_chunk_up_to_the_row_budget() -> None:
    per_hour = CHUNK_ROWS // 9  # nine hours fit the budget, ten would not
    chunks = list(_chunks([(h, per_hour) for h in range(24)]))
    assert [len(c) for c in chunks] == [9, 9, 6]
    assert [h for c in chunks for h in c] == list(range(24))  # every hour once, in order


def test_a_chunk_is_given_before_the_hours_after_it_are_built() -> None:
    """A run's hours are built as the chunks take them: a week of a busy symbol is never in memory at once."""
    per_hour = CHUNK_ROWS // 9
    taken: list[int] = []

    def hours() -> Iterator[tuple[int, int]]:
        for h in range(24):
            taken.append(h)
            yield h, per_hour

    chunks = _chunks(hours())
    first = next(chunks)
    assert first == list(range(9))
    assert taken == list(range(10))  # the tenth hour showed the first chunk full; none after it was built
    assert [len(c) for c in chunks] == [9, 6]


def test_quiet_hours_go_a_week_at_a_time_and_a_huge_hour_alone() -> None:
    hours = 2 * CHUNK_HOURS + 2
    assert [len(c) for c in _chunks([(h, 0) for h in range(hours)])] == [CHUNK_HOURS, CHUNK_HOURS, 2]
    assert [len(c) for c in _chunks([(0, 2 * CHUNK_ROWS), (1, 5), (2, 5)])] == [1, 2]
    assert list(_chunks([])) == []


def _values(values: list[int]) -> list[Suite]:
    rules = (between("a", 0, 10, "a in [0, 10]"), unique(["a"], "one row per a"))
    return [Suite("t", pl.DataFrame({"a": values}), rules)]


def _checked(chunk: list[tuple[int, list[Suite]]], tmp_path: Path) -> tuple[list[int], _PerHour]:
    """The chunk's hours and a check holding their suites, as a run has them when it validates the chunk."""
    suites = dict(chunk)
    checked = _PerHour(lambda _settings, hour: suites[hour], Settings(lake=str(tmp_path)))
    for hour, _ in chunk:
        checked.rows(hour)
    return [hour for hour, _ in chunk], checked


def test_a_failed_chunk_gives_each_hour_its_own_verdict(tmp_path: Path) -> None:
    chunk = [(0, _values([1, 2])), (HOUR_NS, _values([3, 20])), (2 * HOUR_NS, _values([4, 5]))]
    together = validate(merge_suites([s for _, s in chunk]), "chunk")
    assert together.failing == 1
    alone = _each_alone(*_checked(chunk, tmp_path), together, None, False)
    assert {h // HOUR_NS: r.failing for h, r in alone.items()} == {0: 0, 1: 1, 2: 0}
    assert alone[HOUR_NS].problems() == ["t: a in [0, 10]: 1 of 2 rows fail"]
    # a passing chunk is every hour passing: nothing validated again
    assert _each_alone(*_checked(chunk[:1], tmp_path), validate(chunk[0][1], "one"), None, False) == {}


def test_what_only_the_hours_together_show_stays_the_chunks(tmp_path: Path) -> None:
    """A value in two hours (a trade in two partitions) breaks uniqueness only together: no hour alone shows it,
    so the hours keep the chunk's verdict; an hour that fails alone as well gets its own."""
    chunk = [(0, _values([1, 2])), (HOUR_NS, _values([2, 3])), (2 * HOUR_NS, _values([4, 5]))]
    together = validate(merge_suites([s for _, s in chunk]), "chunk")
    assert together.problems() == ["t: one row per a: 2 of 6 rows fail"]
    assert _each_alone(*_checked(chunk, tmp_path), together, None, False) == {}
    chunk[2] = (2 * HOUR_NS, _values([4, 50]))
    together = validate(merge_suites([s for _, s in chunk]), "chunk")
    alone = _each_alone(*_checked(chunk, tmp_path), together, None, False)
    assert {h // HOUR_NS: r.failing for h, r in alone.items()} == {2: 1}


def _trades(hour: int, ids: range) -> pl.DataFrame:
    """Trades of BTC-USDT at the hour's first seconds, ids ``ids`` (the TRADES contract)."""
    times = [datetime.fromtimestamp(hour / 1e9 + i, UTC) for i in range(len(ids))]
    return pl.DataFrame(
        {
            "exchange": "binance",
            "symbol": "BTC-USDT",
            "ts": times,
            "recv_ts": times,
            "trade_id": [str(i) for i in ids],
            "price": [Decimal("61000.5")] * len(ids),
            "size": [Decimal("0.001")] * len(ids),
            "side": "buy",
            "fills": 1,
        }
    ).cast(TRADES)  # type: ignore[arg-type]


def test_a_chunk_with_an_odd_hour_is_built_hour_by_hour(tmp_path: Path) -> None:
    """The checks build a chunk's suites at once when its hours' files share one schema (``Partitions``); an
    hour whose file differs (a column missing) has the chunk built hour by hour and merged, so that hour's schema
    suite fails apart and each hour alone gets its verdict; a missing file is the hour's own problem."""
    settings = Settings(lake=str(tmp_path))
    start = 1_723_161_600 * 10**9
    hours = [start + i * HOUR_NS for i in range(3)]
    frames = {hours[0]: _trades(hours[0], range(1, 4)), hours[1]: _trades(hours[1], range(4, 6))}
    frames[hours[2]] = _trades(hours[2], range(6, 9)).drop("fills")
    for hour, df in frames.items():
        write_partition(partition_path(settings.root, "trades", hour), df)
    check = Partitions(("trades",), lambda _s, f, h: trades_suites(f[0], h) if f[0] is not None else [])
    checked = check(settings)
    assert [checked.rows(h) for h in hours] == [3, 2, 3]
    odd = validate(checked.suites(hours), "odd")
    # the odd hour's own schema suite fails (8 columns, not 9): the chunk's data suite is not run, and the hours
    # are validated again alone (``_each_alone``), where the good ones pass
    assert [o.suite for o in odd.failed] == ["trades.schema.2"] and odd.skipped == ["trades"]
    assert "trades.schema.2: 9 columns: fails" in odd.problems()
    alone = {h: validate(checked.alone(h), "alone") for h in hours}
    assert [r.passed for r in alone.values()] == [True, True, False]
    # the two good hours together: one build, the same verdict as each alone
    together = checked.suites(hours[:2])
    assert [s.name for s in together] == ["trades.schema", "trades"] and together[-1].frame.height == 5
    checked.release(hours)
    assert isinstance(check(settings).rows(start + 5 * HOUR_NS), str)  # no file: why, not rows
