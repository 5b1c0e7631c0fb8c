"""The Great Expectations suites of mdplatform.quality on the partitions the pipeline writes from the bundled real
recording (demo/data: Binance spot BTCUSDT and ETHUSDT, 2024-08-08 23:54 to 08-09 00:05), and on copies of them
damaged one way at a time: each damage fails its rule with a readable message and the failing rows as examples."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from assets import MdpResource, hour_key, hourly_assets, hourly_partitions
from mdplatform.capture import import_capture
from mdplatform.quality import (
    Report,
    Suite,
    book_heatmap_suites,
    book_snapshots_suites,
    candles_suites,
    consolidated_book_suites,
    coverage_suites,
    cross_exchange_suites,
    id_continuity_suites,
    quarantine_counts_suites,
    quarantine_rows,
    quarantine_suites,
    trade_heatmap_suites,
    trades_suites,
    validate,
)
from mdplatform.schemas import EVENTS, REJECTS
from mdplatform.warehouse import partition_path

REPO = Path(__file__).resolve().parents[2]
H23 = int(datetime(2024, 8, 8, 23, tzinfo=UTC).timestamp()) * 10**9
H00 = H23 + 3600 * 10**9
TABLES = ("trades", "coverage", "candles", "book_snapshots", "book_invalid", "book_heatmap", "trade_heatmap")
TABLES += ("consolidated_book",)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, dagster_home: str) -> str:
    """The demo recording imported and its two hours materialized (every hourly asset, books included)."""
    root = str(tmp_path_factory.mktemp("quality") / "lake")
    import_capture(sorted((REPO / "demo" / "data" / "binance-spot").glob("*.gz")), "binance", root)
    spot = hourly_partitions(datetime(2024, 8, 8, tzinfo=UTC))
    for hour in (H23, H00):
        result = materialize(
            hourly_assets(spot),
            partition_key=hour_key(hour),
            instance=DagsterInstance.get(),
            resources={"mdp": MdpResource(lake=root)},
        )
        assert result.success
    return root


def _part(lake: str, table: str, hour: int = H00) -> pl.DataFrame:
    return pl.read_parquet(partition_path(lake, table, hour))


def _all_suites(lake: str, hour: int) -> dict[str, list[Suite]]:
    p = {t: _part(lake, t, hour) for t in TABLES}
    return {
        "trades": trades_suites(p["trades"], hour),
        "id_continuity": id_continuity_suites(p["trades"]),
        "cross_exchange": cross_exchange_suites(p["trades"]),
        "coverage": coverage_suites(p["coverage"], hour),
        "candles": candles_suites(p["candles"], hour, p["coverage"]),
        "book_snapshots": book_snapshots_suites(p["book_snapshots"], hour, p["book_invalid"]),
        "book_heatmap": book_heatmap_suites(p["book_heatmap"], hour),
        "trade_heatmap": trade_heatmap_suites(p["trade_heatmap"], hour, p["trades"]),
        "consolidated_book": consolidated_book_suites(p["consolidated_book"], hour),
    }


@pytest.mark.parametrize("hour", [H23, H00])
def test_the_recordings_partitions_pass(lake: str, hour: int) -> None:
    for name, suites in _all_suites(lake, hour).items():
        report = validate(suites, hour_key(hour))
        assert report.passed, (name, report.problems())
        assert [s.name for s in suites][-1] in {o.suite for o in report.outcomes}  # the data suite ran too
        assert not report.skipped
    trades = _part(lake, "trades", hour)
    report = validate(trades_suites(trades, hour), "rows")
    not_null = next(o for o in report.outcomes if o.rule == "price is not null")
    assert not_null.checked == trades.height == {H23: 15_836, H00: 18_583}[hour]
    # BTC-USDT and ETH-USDT ids are contiguous in the recording: every trade but each symbol's first is checked
    (ids,) = validate(id_continuity_suites(trades), "ids").outcomes
    assert ids.passed and ids.checked == trades.height - 2


def _one(report: Report) -> str:
    """The single failed rule's message (the report must have exactly one)."""
    assert len(report.failed) == 1, report.problems()
    return report.failed[0].message()


def _first_row(col: str, value: pl.Expr) -> pl.Expr:
    return pl.when(pl.int_range(pl.len()) == 0).then(value).otherwise(pl.col(col)).alias(col)


Damage = Callable[[pl.DataFrame], pl.DataFrame]

TRADE_DAMAGE: list[tuple[str, Damage, str]] = [
    ("negative price", lambda df: df.with_columns(_first_row("price", -pl.col("price"))), "price > 0: 1 of"),
    ("null side", lambda df: df.with_columns(_first_row("side", pl.lit(None, pl.String))), "side is not null: 1 of"),
    ("side", lambda df: df.with_columns(_first_row("side", pl.lit("BUY"))), "side is buy or sell: 1 of"),
    ("no fill", lambda df: df.with_columns(_first_row("fills", pl.lit(0, pl.Int64))), "fills >= 1: 1 of"),
    (
        "duplicates",
        lambda df: pl.concat([df, df.head(3)]).sort("exchange", "symbol", "ts", maintain_order=True),
        "one row per (exchange, symbol, trade_id): 6 of",
    ),
    (
        "outside the hour",
        lambda df: df.with_columns(_first_row("ts", pl.col("ts") - pl.duration(hours=1, time_unit="ns"))),
        "ts in the partition's hour: 1 of",
    ),
    (
        "time going back",
        lambda df: df.with_columns(
            ts=pl.when(pl.int_range(pl.len()) == 5)
            .then(pl.col("ts").shift(1) - pl.duration(milliseconds=1, time_unit="ns"))
            .otherwise(pl.col("ts"))
        ),
        "ts never decreases per (exchange, symbol): 1 of",
    ),
    (
        "ahead of receipt",
        lambda df: df.with_columns(_first_row("recv_ts", pl.col("ts") - pl.duration(seconds=11, time_unit="ns"))),
        "ts at most 10 s ahead of recv_ts: 1 of",
    ),
]


@pytest.mark.parametrize(("what", "damage", "message"), TRADE_DAMAGE, ids=[d[0] for d in TRADE_DAMAGE])
def test_damaged_trades_fail_their_rule(lake: str, what: str, damage: Damage, message: str) -> None:
    bad = damage(_part(lake, "trades"))
    report = validate(trades_suites(bad, H00), "bad")
    assert message in _one(report), what
    assert report.failed[0].examples


def test_examples_are_the_failing_rows_with_exact_values(lake: str, tmp_path: Path) -> None:
    trades = _part(lake, "trades")
    bad = trades.with_columns(_first_row("price", pl.lit(Decimal("-61686.000000000001")).cast(pl.Decimal(38, 12))))
    report = validate(trades_suites(bad, H00), "2024-08-09-0000", docs=str(tmp_path / "quality"))
    (failed,) = report.failed
    assert failed.message() == "trades: price > 0: 1 of 18583 trades fail"
    (row,) = failed.examples
    assert row["price"] == "-61686.000000000001" and row["trade_id"] == trades["trade_id"][0]
    assert report.failing == 1
    # the results are Data Docs pages in the folder, and the index lists them
    page = Path(report.pages["trades"])
    assert page.is_file() and "2024-08-09-0000" in page.parts and "price > 0" in page.read_text()
    assert report.index is not None and Path(report.index).is_file()


def test_a_wrong_schema_stops_at_the_schema_suite(lake: str) -> None:
    bad = _part(lake, "trades").with_columns(pl.col("price").cast(pl.Float64))
    report = validate(trades_suites(bad, H00), "schema")
    assert report.problems() == [
        "trades.schema: every column as the trades contract has it (name, position, type): 1 of 9 columns fail"
    ]
    assert report.failed[0].examples == [{"column": "6. price: Float64"}]
    missing = validate(trades_suites(_part(lake, "trades").drop("fills"), H00), "schema")
    assert [o.rule for o in missing.failed] == ["9 columns"]


COVERAGE_DAMAGE: list[tuple[str, Damage, str]] = [
    (
        "gap without reason",
        lambda df: df.with_columns(reason=pl.when(pl.col("status") == "gap").then(None).otherwise(pl.col("reason"))),
        "a gap has a reason: ",
    ),
    ("filled", lambda df: df.with_columns(_first_row("filled", pl.lit(2.0))), "filled in [0, 1]: 1 of"),
    ("unknown status", lambda df: df.with_columns(_first_row("status", pl.lit("maybe"))), "status is covered or gap"),
    (
        "a row twice",
        lambda df: pl.concat([df, df.head(1)]),
        "rows tile each stream from the hour's start (no hole, no overlap): 1 of 15",
    ),
]


@pytest.mark.parametrize(("what", "damage", "message"), COVERAGE_DAMAGE, ids=[d[0] for d in COVERAGE_DAMAGE])
def test_damaged_coverage_fails_its_rule(lake: str, what: str, damage: Damage, message: str) -> None:
    report = validate(coverage_suites(damage(_part(lake, "coverage")), H00), "bad")
    assert message in " ".join(report.problems()), (what, report.problems())


def test_damaged_candles_fail_their_rules(lake: str) -> None:
    candles, coverage = _part(lake, "candles"), _part(lake, "coverage")
    high_below_low = candles.with_columns(_first_row("high", pl.col("low") - 1))
    messages = validate(candles_suites(high_below_low, H00, coverage), "bad").problems()
    assert "candles: OHLC in order (low <= open, close <= high): 1 of 12 candles fail" in messages
    dup = pl.concat([candles, candles.head(1)])
    assert "one candle per (exchange, symbol, timeframe, open): 2 of 13 candles fail" in " ".join(
        validate(candles_suites(dup, H00, coverage), "bad").problems()
    )
    # the trade stream's coverage said not observed from 00:02 on: the complete candles after it were not seen
    cut = int(datetime(2024, 8, 9, 0, 2, tzinfo=UTC).timestamp()) * 10**9
    unseen = coverage.with_columns(
        status=pl.when((pl.col("channel") == "trade") & (pl.col("end_time").dt.epoch("ns") > cut))
        .then(pl.lit("gap"))
        .otherwise(pl.col("status")),
        reason=pl.when(pl.col("channel") == "trade").then(pl.lit("silent")).otherwise(pl.col("reason")),
    )
    report = validate(candles_suites(candles, H00, unseen), "bad")
    message = _one(report)
    assert message.startswith("candles: a complete candle of 1h or less was wholly observed")
    assert {row["timeframe"] for row in report.failed[0].examples} <= {"1m", "5m"}


def test_lost_trade_ids_warn(lake: str) -> None:
    trades = _part(lake, "trades")
    btc = trades.filter(pl.col("symbol") == "BTC-USDT")
    lost = trades.filter(pl.col("trade_id") != btc["trade_id"][100])
    report = validate(id_continuity_suites(lost), "ids")
    assert _one(report) == "trades.id_continuity: no fill id missing or repeated before a trade: 1 of 18580 trades fail"
    (row,) = report.failed[0].examples
    assert row["ids_missing_before"] == "1" and row["trade_id"] == btc["trade_id"][101]


def test_a_venue_away_from_the_others_warns(lake: str) -> None:
    trades = _part(lake, "trades")
    okx = trades.with_columns(
        exchange=pl.lit("okx"), price=(pl.col("price") * Decimal("1.001")).cast(pl.Decimal(38, 12))
    )
    bybit = trades.with_columns(exchange=pl.lit("bybit"))
    assert validate(cross_exchange_suites(pl.concat([trades, okx])), "x").passed  # 10 bp apart, 5 from the median
    far = okx.with_columns(price=(pl.col("price") * 2).cast(pl.Decimal(38, 12)))
    report = validate(cross_exchange_suites(pl.concat([trades, bybit, far])), "x")
    message = _one(report)
    # every minute of both symbols: okx doubled, 100 % from the median of the three
    assert message.startswith("trades.cross_exchange: each venue's median price within 50 bp of the venues' median: ")
    assert {row["exchange"] for row in report.failed[0].examples} == {"okx"}


def test_quarantine_and_late_counts_warn() -> None:
    fine = {"rows": 1000, "raw_rows_read": 50_000, "rejects": 2, "late_trades": 3}
    assert validate(quarantine_counts_suites(fine), "n").passed
    many = validate(quarantine_counts_suites({**fine, "rejects": 500, "late_trades": 20}), "n")
    assert many.problems() == [
        "trades.quarantine_and_late: at most 0.1% of raw rows quarantined: 1 of 1 hours fail",
        "trades.quarantine_and_late: at most 1% of trades late: 1 of 1 hours fail",
    ]
    assert many.failed[0].examples[0]["quarantined"] == "500"


def test_damaged_book_partitions_fail_their_rules(lake: str) -> None:
    snaps, invalid = _part(lake, "book_snapshots"), _part(lake, "book_invalid")
    crossed = snaps.with_columns(_first_row("ask_price", pl.col("bid_price") - 1))
    problems = validate(book_snapshots_suites(crossed, H00, invalid), "b").problems()
    assert f"book_snapshots: never crossed or locked (bid < ask): 1 of {snaps.height} samples fail" in problems
    heat = _part(lake, "book_heatmap")
    hot = heat.with_columns(_first_row("intensity", pl.lit(2.0)))
    assert f"book_heatmap: intensity in (0, 1]: 1 of {heat.height} heatmap rows fail" in " ".join(
        validate(book_heatmap_suites(hot, H00), "b").problems()
    )
    theat, trades = _part(lake, "trade_heatmap"), _part(lake, "trades")
    # a flag computed from a null fails (GX skips nulls: the flag is false)
    no_size = theat.with_columns(_first_row("bucket_size", pl.lit(None, pl.Decimal(38, 12))))
    assert validate(trade_heatmap_suites(no_size, H00), "t").problems() == [
        f"trade_heatmap: bucket_size is not null: 1 of {theat.height} heatmap rows fail",
        f"trade_heatmap: price_bucket is an exact multiple of bucket_size: 1 of {theat.height} heatmap rows fail",
    ]
    short = trades.filter(pl.int_range(pl.len()) != 0)  # one trade the heatmap holds is not in the trades
    message = _one(validate(trade_heatmap_suites(theat, H00, short), "t"))
    assert message.startswith("trade_heatmap: per (exchange, symbol) the buckets hold the hour's traded size: ")
    cons = _part(lake, "consolidated_book")
    wrong = cons.with_columns(_first_row("crossed", pl.lit(True)))
    assert _one(validate(consolidated_book_suites(wrong, H00), "c")) == (
        f"consolidated_book: crossed exactly when best_bid >= best_ask: 1 of {cons.height} steps fail"
    )


def test_quarantine_rows_and_their_suite() -> None:
    t = pl.Series([H00 + 5 * 10**9]).cast(pl.Datetime("ns", "UTC"))
    rejects = pl.DataFrame(
        {
            "recv_ts": t,
            "exchange": ["binance"],
            "channel": ["trade"],
            "symbol": ["BTCUSDT"],
            "conn_id": ["c1"],
            "seq": [7],
            "payload": ['{"e":"trade"'],
            "reason": ["malformed JSON"],
        },
        schema=REJECTS,
    )
    events = pl.DataFrame(
        {
            "recv_ts": t,
            "exchange": ["okx"],
            "conn_id": ["c2"],
            "kind": ["frame_error"],
            "channel": ["books"],
            "symbol": ["BTC-USDT"],
            "seq": [9],
            "exchange_ts": pl.Series([None], dtype=pl.Datetime("ns", "UTC")),
            "frame_recv_ts": pl.Series([None], dtype=pl.Datetime("ns", "UTC")),
            "detail": ["NaN price"],
        },
        schema=EVENTS,
    )
    rows = quarantine_rows(H00, rejects, events)
    assert rows.select("stage", "reason", "conn_id", "seq", "source").rows() == [
        ("normalize", "malformed JSON", "c1", 7, "raw/exchange=binance/date=2024-08-09/hour=00"),
        ("collector", "NaN price", "c2", 9, "raw/exchange=okx/date=2024-08-09/hour=00"),
    ]
    assert validate(quarantine_suites(rows), "q").passed
    no_reason = rows.with_columns(_first_row("reason", pl.lit(None, pl.String)))
    assert (
        _one(validate(quarantine_suites(no_reason), "q"))
        == "quarantine: reason is not null: 1 of 2 quarantined rows fail"
    )


def test_the_cli_and_the_library_do_not_import_great_expectations() -> None:
    # printed by an exit handler: `mdp` ends its process itself once its exit handlers ran
    code = (
        "import atexit, sys; import mdplatform.quality, mdplatform.collector; from mdplatform.cli import main\n"
        "atexit.register(lambda: print(sorted(m for m in ('great_expectations', 'pandas') if m in sys.modules)))\n"
        "sys.argv = ['mdp', '--help']\nmain()"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    *usage, imported = out.stdout.strip().splitlines()
    assert usage[0].startswith("Usage: mdp") and imported == "[]"


def test_data_docs_pages_for_failures_by_default_and_for_all_when_asked(lake: str, tmp_path: Path) -> None:
    trades = _part(lake, "trades")
    quiet = validate(trades_suites(trades, H00), "2024-08-09-0000", docs=str(tmp_path / "a"))
    assert not quiet.failed and quiet.pages == {} and quiet.index is None  # a passing hour renders nothing
    every = validate(trades_suites(trades, H00), "2024-08-09-0000", docs=str(tmp_path / "b"), pages=True)
    assert not every.failed and "trades" in every.pages and Path(every.pages["trades"]).is_file()
    assert every.index is not None and Path(every.index).is_file()


def test_hours_merge_into_one_validation_with_the_same_verdicts(lake: str) -> None:
    """A run's hours are validated at once (GX costs about half a second per validation): the merged suites find
    what the hours' own suites find, the schema suite is kept once, and rows of every hour are counted."""
    from mdplatform.quality import merge_suites

    trades = _part(lake, "trades")
    half = trades.height // 2
    # two parts of the hour stand for two hours (their rows are relative to the same hour start)
    good, rest = trades.head(half), trades.tail(trades.height - half)
    bad = rest.with_columns(_first_row("price", pl.lit(Decimal("-1")).cast(pl.Decimal(38, 12))))
    hours = [trades_suites(good, H00), trades_suites(bad, H00)]
    merged = merge_suites(hours)
    assert [s.name for s in merged] == [s.name for s in hours[0]]  # the schema once, the rules once
    assert merged[-1].frame.height == trades.height
    report = validate(merged, "merged")
    assert report.failing == 1 and "price > 0: 1 of" in _one(report)
    assert not validate(merge_suites([trades_suites(good, H00), trades_suites(rest, H00)]), "clean").failed
    # a trade in two hours is one trade twice: the merged uniqueness rule sees it, as no single hour could
    twice = validate(merge_suites([trades_suites(good, H00), trades_suites(good.head(1), H00)]), "twice")
    assert twice.failing == 2 and "one row per (exchange, symbol, trade_id)" in _one(twice)
    # a schema that differs in one hour is validated apart, and names that hour's columns
    odd = merge_suites([trades_suites(good, H00), trades_suites(good.drop("fills"), H00)])
    assert [s.name for s in odd] == ["trades.schema", "trades.schema.2", "trades"]


def test_hours_built_at_once_equal_the_hours_built_alone(lake: str) -> None:
    """The checks of a range build a chunk's suites at once from its hours' rows, each stamped with its hour: the
    suites equal those the hours make alone, merged (the same frames row for row, the same rules). The two hours
    are the recording's own, with the pipeline's quarantine rows and a stream's trades and ids going on across the
    hour: without each shift and grouping keyed by the hour, H00's first trade would step from H23's last, its
    first id would be checked against H23's last id and the coverage rows would not tile from H00's start. A
    damaged hour keeps its failing rows in the chunk."""
    from mdplatform.quality import merge_suites
    from mdplatform.transforms import stamp_window

    hours = (H23, H00)
    parts = {t: {h: _part(lake, t, h) for h in hours} for t in ("trades", "coverage", "candles")}
    parts["quarantine_rows"] = {h: quarantine_rows(h, None, pl.DataFrame(schema=EVENTS)) for h in hours}
    builders: dict[str, tuple[str, Callable[[pl.DataFrame, int | None, pl.DataFrame | None], list[Suite]]]] = {
        "trades": ("trades", lambda df, h, _c: trades_suites(df, h)),
        "id_continuity": ("trades", lambda df, _h, _c: id_continuity_suites(df)),
        "cross_exchange": ("trades", lambda df, _h, _c: cross_exchange_suites(df)),
        "coverage": ("coverage", lambda df, h, _c: coverage_suites(df, h)),
        "candles": ("candles", lambda df, h, c: candles_suites(df, h, c)),
        "quarantine": ("quarantine_rows", lambda df, _h, _c: quarantine_suites(df)),
    }

    def together(
        table: str, build: Callable[[pl.DataFrame, int | None, pl.DataFrame | None], list[Suite]]
    ) -> list[Suite]:
        stamped = {t: pl.concat([stamp_window(parts[t][h], h) for h in hours]) for t in (table, "coverage")}
        return build(stamped[table], None, stamped["coverage"])

    for name, (table, build) in builders.items():
        alone = merge_suites([build(parts[table][h], h, parts["coverage"][h]) for h in hours])
        at_once = together(table, build)
        assert [(s.name, s.rules) for s in at_once] == [(s.name, s.rules) for s in alone], name
        for a, b in zip(at_once, alone, strict=True):
            assert a.frame.equals(b.frame), (name, a.name)
        assert sum(s.frame.height for s in at_once) > {"cross_exchange": -1}.get(name, 0), name  # one venue: none
    assert parts["trades"][H00].height > 0 and parts["coverage"][H00].height > 0

    # a damaged hour keeps its failing rows in the chunk: H00's trades an hour early (out of their hour), a trade of
    # H00 lost (an id missing)
    trades = parts["trades"]
    early = trades[H00].with_columns(ts=pl.col("ts") - pl.duration(hours=1, time_unit="ns"))
    lost = pl.concat([trades[H00].head(100), trades[H00].slice(101)])
    for name, damaged in (("trades", early), ("id_continuity", lost)):
        table, build = builders[name]
        parts["trades"] = {H23: trades[H23], H00: damaged}
        alone = validate(merge_suites([build(parts[table][h], h, None) for h in hours]), "alone")
        at_once = validate(together(table, build), "at-once")
        assert at_once.failing == alone.failing > 0, name
        assert at_once.problems() == alone.problems(), name


def test_the_frames_a_run_kept_are_what_its_files_hold(lake: str) -> None:
    """The checks and the candles step read a file this process wrote as the frame it wrote (``warehouse._kept``):
    every frame the pipeline's run kept (every table, books included) equals its file read from disk, column types
    included, so a check validates what the file holds."""
    from mdplatform.warehouse import _kept

    kept = {
        path: df
        for path, (identity, df) in _kept._KEPT.items()
        if path.startswith(lake) and _kept._identity(path) == identity
    }
    assert {Path(path).relative_to(lake).parts[0] for path in kept} >= {*TABLES, "quarantine_rows"}
    for path, df in kept.items():
        disk = pl.read_parquet(path)
        assert disk.schema == df.schema, path
        assert disk.equals(df), path
