"""Readers of the DuckDB warehouse while the pipeline writes the lake (docs/duckdb.md): the warehouse is a catalog of
views over the lake's partition files, so a read-only connection held in another process never delays nor fails a
materialization, and sees a new day once it reopens; publishing costs a listing, not a copy of the data; a query
opens only the files of the days it reaches; the lake views (`raw`, `raw_between`) with plain timestamp literals;
the rebuild from the lake; `mdp sql`."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from candle_reference import H00, H23, spot_files
from click.testing import CliRunner

from assets._hourly import materialize_candles_hour, materialize_trades_hour
from assets._settings import Settings
from mdplatform._cli_sql import sql
from mdplatform.capture import import_capture
from mdplatform.warehouse import Warehouse

# holds the published warehouse open read-only until stdin closes; on each line of stdin, counts the hour's
# trades through the connection it holds
_READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("open", flush=True)
for line in sys.stdin:
    print(con.execute("SELECT count(*) FROM trades WHERE ts >= ?::TIMESTAMPTZ", [line.strip()]).fetchone()[0],
          flush=True)
"""


def _ts(ns: int) -> str:
    return f"{datetime.fromtimestamp(ns / 1e9, UTC):%Y-%m-%d %H:%M}"


@pytest.fixture(scope="module")
def spot_lake(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The spot recording's raw lake with hour 23 materialized (hour 00 is left to the tests)."""
    root = tmp_path_factory.mktemp("spot") / "lake"
    import_capture(spot_files(shared_data), "binance", str(root))
    settings = Settings(lake=str(root))
    materialize_trades_hour(settings, H23)
    materialize_candles_hour(settings, H23)
    return root


def test_a_reader_in_another_process_never_delays_a_materialization(spot_lake: Path) -> None:
    public = spot_lake / "warehouse.duckdb"
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(public)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "open"
        settings = Settings(lake=str(spot_lake))
        trades = materialize_trades_hour(settings, H00)
        candles = materialize_candles_hour(settings, H00)
        assert trades.window.trades.height > 0 and candles.candles.height > 0

        # the reader still answers from the catalog it opened, which did not have the hour's day yet
        reader.stdin.write(_ts(H00) + "\n")
        reader.stdin.flush()
        assert int(reader.stdout.readline()) == 0
    finally:
        if reader.stdin is not None:
            reader.stdin.close()
        reader.wait(timeout=30)
    assert reader.returncode == 0

    # reopened, a reader sees the hour: in DuckDB as in the lake
    con = duckdb.connect(str(public), read_only=True)
    try:
        got = con.execute("SELECT count(*) FROM trades WHERE ts >= ?::TIMESTAMPTZ", [_ts(H00)]).fetchone()
        closes = con.execute("SELECT count(*) FROM candles WHERE close_time > ?::TIMESTAMPTZ", [_ts(H00)]).fetchone()
    finally:
        con.close()
    assert got == (trades.window.trades.height,)
    assert closes == (candles.candles.height,)


def test_publishing_is_a_listing_and_old_catalogs_go(spot_lake: Path) -> None:
    public = spot_lake / "warehouse.duckdb"
    wh = Warehouse(str(public))
    assert public.is_symlink()
    snapshots = sorted((spot_lake / ".warehouse.duckdb").glob("snapshot-*.duckdb"))
    assert 1 <= len(snapshots) <= 2
    assert public.resolve() == snapshots[-1]
    # the catalog holds views, not rows: no table, whatever the data
    con = duckdb.connect(str(snapshots[-1]), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone()[0] >= 8  # type: ignore[index]
    finally:
        con.close()
    assert snapshots[-1].stat().st_size < 1 << 20
    # nothing new in the lake: nothing published; an hour rewritten in a day the catalog has: nothing either
    assert wh.refresh() is False
    materialize_candles_hour(Settings(lake=str(spot_lake)), H23)
    assert public.resolve() == snapshots[-1]


def test_a_query_opens_only_the_files_of_the_days_it_reaches(tmp_path: Path) -> None:
    """120 days of a small table: the recent days get a view branch each, older months one each; a query on one
    day reads that day's files only (a day of an older month: its month's), every day reads back what its files
    hold, and no day is read twice."""
    lake = tmp_path / "lake"
    day0 = datetime(2024, 1, 1, tzinfo=UTC)
    written = 0
    for d in range(120):
        for h in (0, 13):
            start = day0.timestamp() + d * 86400 + h * 3600
            ts = [int((start + m * 60) * 1e9) for m in range(3)]
            df = pl.DataFrame({"exchange": "x", "symbol": "A-B", "ts": ts, "recv_ts": ts, "trade_id": ["1", "2", "3"]})
            df = df.with_columns(pl.col("ts", "recv_ts").cast(pl.Datetime("ns", "UTC")))
            folder = lake / "trades" / f"date={datetime.fromtimestamp(start, UTC):%Y-%m-%d}" / f"hour={h:02d}"
            folder.mkdir(parents=True)
            df.write_parquet(folder / "data.parquet")
            written += 3
    wh = Warehouse(str(lake / "warehouse.duckdb"))
    assert wh.refresh() is True
    with wh.connect() as con:
        view = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'trades'").fetchone()
        assert view is not None
        # newest 2024-04-29: from February (62 days back: 02-27) a branch a day, January in one
        assert view[0].count("UNION ALL") + 1 == 1 + 29 + 31 + 29, view[0][:2000]
        assert con.execute("SELECT count(*), count(DISTINCT ts::DATE) FROM trades").fetchone() == (written, 120)
        for day in ("2024-01-10", "2024-03-25"):  # in a month branch; in a day branch
            q = f"SELECT count(*) FROM trades WHERE ts >= '{day}' AND ts < TIMESTAMPTZ '{day}' + INTERVAL 1 DAY"
            assert con.execute(q).fetchone() == (6,)
            plan = con.execute("EXPLAIN ANALYZE " + q).fetchall()[0][1]
            opened = sum(int(n) for n in re.findall(r"Total Files Read: (\d+)", plan))
            # the empty anchor and that day's two files (a month branch: its month's), never the other days'
            assert opened == 1 + (2 if day == "2024-03-25" else 31 * 2), plan
        # the columns are the DDL's, missing ones null (these files hold only a few)
        assert con.execute("SELECT count(*) FROM trades WHERE price IS NULL").fetchone() == (written,)


def test_timestamps_take_plain_literals(spot_lake: Path) -> None:
    con = duckdb.connect(str(spot_lake / "warehouse.duckdb"), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    try:
        types = dict(
            con.execute(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                "WHERE data_type LIKE 'TIMESTAMP%'"
            ).fetchall()
        )
        assert types and set(types.values()) == {"TIMESTAMP WITH TIME ZONE"}, types
        assert "raw.recv_ts" in types and "trades.ts" in types
        hour = "'2024-08-09 00:00'"
        for literal in (hour, f"TIMESTAMP {hour}", f"TIMESTAMPTZ {hour}"):
            for table, column in (("raw", "recv_ts"), ("trades", "ts"), ("candles", "close_time")):
                n = con.execute(f"SELECT count(*) FROM {table} WHERE {column} >= {literal}").fetchone()
                assert n is not None and n[0] > 0, (table, literal)
        assert con.execute("SELECT count(*) FROM raw WHERE recv_ts >= now() - INTERVAL 100 YEAR").fetchone()
    finally:
        con.close()


def test_raw_between_counts_what_the_hours_files_hold(spot_lake: Path) -> None:
    lo, hi = "2024-08-09 00:00", "2024-08-09 01:00"
    per_minute = "SELECT date_trunc('minute', recv_ts) AS m, count(*) AS n FROM {} GROUP BY 1 ORDER BY 1"
    con = duckdb.connect(str(spot_lake / "warehouse.duckdb"), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    try:
        # an import writes one file per exchange and hour (lake/README.md)
        files = str(spot_lake / "raw" / "*" / "date=2024-08-09" / "hour=00" / "*.parquet")
        direct = con.execute(per_minute.format(f"(SELECT recv_ts::TIMESTAMPTZ AS recv_ts FROM '{files}')")).fetchall()
        through_macro = con.execute(per_minute.format(f"raw_between('{lo}', '{hi}')")).fetchall()
        through_view = con.execute(
            per_minute.format(f"raw WHERE date = '2024-08-09' AND hour = 0 AND recv_ts < '{hi}'")
        ).fetchall()
        # a part of an hour, starting mid-minute: the partitions of those minutes, then recv_ts exactly
        minutes = [m for m, _ in direct]
        part_lo, part_hi = f"{minutes[0]:%Y-%m-%d %H:%M}:30", f"{minutes[-1]:%Y-%m-%d %H:%M}"
        part = con.execute(f"SELECT count(*) FROM raw_between('{part_lo}', '{part_hi}')").fetchone()
        part_direct = con.execute(
            f"SELECT count(*) FROM '{files}' WHERE recv_ts::TIMESTAMPTZ >= '{part_lo}' "
            f"AND recv_ts::TIMESTAMPTZ < '{part_hi}'"
        ).fetchone()
        # hours nothing was recorded in read as no rows, not as an error
        none = con.execute("SELECT count(*) FROM raw_between('2020-01-01', '2020-01-01 05:00')").fetchone()
        plan = con.execute(f"EXPLAIN ANALYZE SELECT count(*) FROM raw_between('{lo}', '{hi}')").fetchall()[0][1]
    finally:
        con.close()
    assert direct and through_macro == direct and through_view == direct
    assert part == part_direct and part is not None and part[0] > 0
    assert none == (0,)
    # only that hour's file was read, beside the empty anchors (one per depth: minute, hour, day files)
    n_files = len(list((spot_lake / "raw").glob("*/date=2024-08-09/hour=00/*.parquet")))
    assert n_files == 1
    read = [int(n) for n in re.findall(r"Total Files Read: (\d+)", plan)]
    # the hour files' read: its anchor and that hour's file, not the 23:00 one; the other depths: their anchors at most
    assert max(read) == 1 + n_files and sum(read) <= 1 + n_files + 2, plan


def test_the_warehouse_is_rebuilt_from_the_lake(spot_lake: Path, tmp_path: Path) -> None:
    public = spot_lake / "warehouse.duckdb"
    tables = ("trades", "coverage", "candles")
    before = {t: Warehouse(str(public)).query(f"SELECT * FROM {t} ORDER BY ALL") for t in tables}
    # the catalog gone altogether: rebuilt from the lake's folders
    for f in (spot_lake / ".warehouse.duckdb").glob("snapshot-*"):
        f.unlink()
    public.unlink()
    result = CliRunner().invoke(sql, ["--lake", str(spot_lake), "--rebuild-warehouse"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for t in tables:
        after = Warehouse(str(public)).query(f"SELECT * FROM {t} ORDER BY ALL")
        assert after.height == before[t].height > 0 and after.equals(before[t]), t
        lake_rows = pl.read_parquet(spot_lake / t / "*" / "*" / "data.parquet").height
        assert re.search(rf"^{t} +{after.height:,d} rows$", result.output, re.M) and after.height == lake_rows


def test_mdp_sql_formats_and_errors(spot_lake: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    lake = ["--lake", str(spot_lake)]
    q = "SELECT symbol, count(*) AS n FROM trades WHERE ts >= '2024-08-09 00:00' GROUP BY ALL"
    table = runner.invoke(sql, [q, *lake])
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[0].split() == ["symbol", "n"] and "BTC-USDT" in table.output
    csv = runner.invoke(sql, [q, *lake, "--format", "csv"])
    assert csv.exit_code == 0 and csv.output.splitlines()[0] == '"symbol","n"'
    out = tmp_path / "q.parquet"
    pq = runner.invoke(sql, [q, *lake, "--format", "parquet", "--out", str(out)])
    assert pq.exit_code == 0, pq.output
    assert pl.read_parquet(out).get_column("symbol").to_list() == ["BTC-USDT"]

    for bad, words in (
        ("SELEC 1", "syntax error"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("CREATE TABLE t (x INT)", "read-only"),
    ):
        got = runner.invoke(sql, [bad, *lake])
        assert got.exit_code == 1, (bad, got.output)
        assert words in got.output and "Traceback" not in got.output, got.output
    missing = runner.invoke(sql, ["SELECT 1", "--lake", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "no warehouse" in missing.output and "no lake" in missing.output


def test_a_warehouse_of_an_earlier_release_is_replaced(tmp_path: Path) -> None:
    """Earlier releases kept the tables in DuckDB (a plain file, then a private writer file): their data is in the
    lake, so the catalog replaces the plain file and the writer file goes."""
    public = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(public))
    con.execute("CREATE TABLE trades AS SELECT 42 AS x")
    con.close()
    legacy = tmp_path / ".warehouse.duckdb" / "writer.duckdb"
    legacy.parent.mkdir()
    legacy.write_bytes(b"old")
    wh = Warehouse(str(public))
    assert wh.refresh() is True
    assert public.is_symlink() and not legacy.exists()
    assert wh.query("SELECT count(*) FROM trades").rows() == [(0,)]
    assert "price" in wh.query("SELECT * FROM trades").columns
