"""`mdp sql` on a lake built as the demo's (conftest.py): every column type of the warehouse comes out exact in
every format (intervals, lists, decimals, UTC instants, dates, nulls), each parsed back here from the text a user
gets and compared with what DuckDB's Python client returns for the same query; and `mdp sql` is read-only for real
(issue 18): each attack fails with one line, exit 1, and changes nothing, while other readers keep reading."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from mdplatform._cli_sql import sql
from mdplatform.warehouse import Warehouse

#: one query per kind of column; together they hold every type the warehouse serves
QUERIES = {
    # INTERVAL, TIMESTAMPTZ, BIGINT with nulls, DOUBLE, VARCHAR
    "coverage_gaps": "SELECT start_time, end_time, duration, missing, filled, reason, channel FROM coverage_gaps "
    "ORDER BY start_time, symbol, channel",
    # DECIMAL(38,12), BIGINT
    "trades": "SELECT ts, recv_ts, price, size, fills, side FROM trades ORDER BY ts, trade_id LIMIT 150",
    # DECIMAL(38,18), BOOLEAN, DOUBLE
    "candles": "SELECT close_time, timeframe, quote_volume, vwap, taker_buy_quote_volume, complete, coverage, "
    "trade_count FROM candles ORDER BY symbol, timeframe, close_time LIMIT 150",
    # DOUBLE[] (and a nullable BIGINT)
    "book_snapshots": "SELECT ts, update_id, bid_px, ask_sz, imbalance_100bps FROM book_snapshots "
    "ORDER BY symbol, ts LIMIT 30",
    # VARCHAR[], DOUBLE[], INTEGER
    "consolidated_book": "SELECT ts, exchanges, symbols, staleness_ms, crossed, exchange_count FROM "
    "consolidated_book ORDER BY base, ts LIMIT 30",
    # HUGEINT (a sum of BIGINT)
    "trade_counts": "SELECT * FROM trade_counts ORDER BY symbol",
    # DATE and INTEGER Hive columns of the lake views
    "raw": "SELECT date, hour, minute, recv_ts, seq, channel FROM raw ORDER BY recv_ts, seq LIMIT 30",
    # edges no table has yet: a day and a negative interval, the smallest and a large decimal, a null of each kind,
    # a microsecond, a non-finite double
    "edges": "SELECT INTERVAL '1 day 02:03:04.5' AS days, -INTERVAL '5 minutes' AS negative, "
    "0.000000000001::DECIMAL(38,12) AS tiny, 12345678901234567890.123456789012::DECIMAL(38,12) AS large, "
    "NULL::DECIMAL(38,12) AS no_decimal, NULL::INTERVAL AS no_interval, NULL::DOUBLE[] AS no_list, "
    "TIMESTAMPTZ '2024-08-09 00:00:00.000001+00' AS micro, ['a', NULL]::VARCHAR[] AS with_null, "
    "'nan'::DOUBLE AS not_a_number",
}
_INTERVAL = re.compile(r"^(?:(-?\d+) days? ?)?(?:(-?)(\d+):(\d{2}):(\d{2}(?:\.\d+)?))?$")


def _expected(lake: Path, query: str) -> tuple[list[str], list[tuple[object, ...]]]:
    with Warehouse(str(lake / "warehouse.duckdb")).connect() as con:
        cur = con.execute(query)
        return [d[0] for d in cur.description], cur.fetchall()


def _interval(text: str) -> timedelta:
    m = _INTERVAL.match(text)
    assert m is not None and text, text
    days, sign, h, mi, s = m.groups()
    clock = timedelta(hours=int(h or 0), minutes=int(mi or 0), seconds=float(s or 0))
    return timedelta(days=int(days or 0)) + (-clock if sign else clock)


def _instant(text: str, suffix: str) -> datetime:
    assert text.endswith(suffix), text  # a UTC instant says so
    got = datetime.fromisoformat(text)
    assert got.utcoffset() == timedelta(0)
    return got


def _from_text(text: str, like: object, fmt: str) -> object:
    """The value ``text`` (a table or csv cell) stands for, read as a user would, as ``like``'s type."""
    if like is None:
        assert text == ("NULL" if fmt == "table" else ""), text
        return None
    if isinstance(like, bool):
        return {"true": True, "false": False}[text]
    if isinstance(like, Decimal):
        return Decimal(text)
    if isinstance(like, float):
        return float(text)
    if isinstance(like, int):
        return int(text)
    if isinstance(like, datetime):
        return _instant(text, "+00" if fmt == "table" else "Z")
    if isinstance(like, date):
        return date.fromisoformat(text)
    if isinstance(like, timedelta):
        return _interval(text)
    if isinstance(like, list):
        if fmt == "csv":  # nested values are JSON
            return json.loads(text)
        inner = text.removeprefix("[").removesuffix("]")
        kind = next((x for x in like if x is not None), None)
        items = inner.split(", ") if inner else []
        return [_from_text(item, kind if item != "NULL" else None, fmt) for item in items]
    return text


def _from_json(value: object, like: object) -> object:
    if like is None or value is None:
        return value
    if isinstance(like, float) and isinstance(value, (Decimal, str)):
        return float(value)  # a number, or "nan"/"inf" as text (JSON has none)
    if isinstance(like, datetime):
        assert isinstance(value, str)
        return _instant(value, "+00")
    if isinstance(like, date):
        assert isinstance(value, str)
        return date.fromisoformat(value)
    if isinstance(like, timedelta):
        assert isinstance(value, str)
        return _interval(value)
    if isinstance(like, list):
        assert isinstance(value, list)
        kind = next((x for x in like if x is not None), None)
        return [_from_json(v, kind) for v in value]
    return value


def _same(got: list[tuple[object, ...]], expected: list[tuple[object, ...]]) -> bool:
    # NaN is not equal to itself: compare its text
    def norm(v: object) -> object:
        return "nan" if isinstance(v, float) and v != v else v

    return [tuple(map(norm, r)) for r in got] == [tuple(map(norm, r)) for r in expected]


def _table_rows(output: str) -> tuple[list[str], list[list[str]]]:
    lines = output.splitlines()
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    ends = [b for (b, _) in spans[1:]] + [None]
    cut = [[line[a:end].rstrip() for (a, _), end in zip(spans, ends, strict=True)] for line in lines]
    assert re.fullmatch(r"\(\d+ rows?\)", lines[-1]), lines[-1]
    return cut[0], cut[2:-1]


@pytest.mark.parametrize("name", list(QUERIES))
def test_every_type_in_every_format(demo_lake: Path, tmp_path: Path, name: str) -> None:
    query = QUERIES[name]
    columns, expected = _expected(demo_lake, query)
    assert expected, name
    like = [next((r[i] for r in expected if r[i] is not None), None) for i in range(len(columns))]
    runner = CliRunner()
    lake = ["--lake", str(demo_lake)]

    table = runner.invoke(sql, [query, *lake])
    assert table.exit_code == 0, table.output
    assert "MonthDayNano" not in table.output
    header, cells = _table_rows(table.output)
    assert header == columns
    got = [tuple(_from_text(c, like[i] if c != "NULL" else None, "table") for i, c in enumerate(row)) for row in cells]
    assert _same(got, expected), name

    out = runner.invoke(sql, [query, *lake, "--format", "csv"])
    assert out.exit_code == 0, out.output
    rows = list(csv.reader(io.StringIO(out.output)))
    assert rows[0] == columns
    got = [tuple(_from_text(c, like[i] if c != "" else None, "csv") for i, c in enumerate(row)) for row in rows[1:]]
    assert _same(got, expected), name

    out = runner.invoke(sql, [query, *lake, "--format", "json"])
    assert out.exit_code == 0, out.output
    objects = [json.loads(line, parse_float=Decimal) for line in out.output.splitlines()]
    assert all(list(o) == columns for o in objects)
    got = [tuple(_from_json(o[c], like[i]) for i, c in enumerate(columns)) for o in objects]
    assert _same(got, expected), name

    path = tmp_path / "out.parquet"
    out = runner.invoke(sql, [query, *lake, "--format", "parquet", "--out", str(path)])
    assert out.exit_code == 0, out.output
    frame = pl.read_parquet(path)
    assert frame.columns == columns
    assert _same(frame.rows(), expected), name
    for column, value in zip(columns, like, strict=True):
        dtype = frame.schema[column]
        if isinstance(value, Decimal):
            assert isinstance(dtype, pl.Decimal) and dtype.scale in (12, 18), (column, dtype)
        elif isinstance(value, datetime):
            assert dtype == pl.Datetime("us", "UTC"), (column, dtype)
        elif isinstance(value, timedelta):
            assert dtype == pl.Duration("us"), (column, dtype)


def test_columns_named_alike_and_rows_beyond_the_table(demo_lake: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    lake = ["--lake", str(demo_lake)]
    twice = runner.invoke(sql, ["SELECT 1 AS a, 2 AS a", *lake, "--format", "csv"])
    assert twice.exit_code == 0 and twice.output.splitlines() == ['"a","a"', "1,2"]
    many = runner.invoke(sql, ["SELECT ts FROM trades", *lake])
    assert many.exit_code == 0 and many.output.splitlines()[-1] == "(first 200 rows; --format csv or json for all)"
    every = runner.invoke(sql, ["SELECT ts FROM trades", *lake, "--format", "json"])
    assert len(every.output.splitlines()) == 19_904 + 14_515  # the recording's BTC and ETH trades
    out = tmp_path / "m.parquet"
    months = runner.invoke(sql, ["SELECT INTERVAL 1 MONTH AS m", *lake, "--format", "parquet", "--out", str(out)])
    assert months.exit_code == 1 and "months has no fixed length" in months.output
    assert not out.exists()  # no half-written file


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_mdp_sql_is_read_only(demo_lake: Path, tmp_path: Path) -> None:
    lake = demo_lake
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("a,b\n1,2\n")
    pl.DataFrame({"x": [1]}).write_parquet(outside / "secret.parquet")
    # a DuckDB file of someone else's, as the writer file of earlier releases was
    victim = outside / "victim.duckdb"
    con = duckdb.connect(str(victim))
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(10)")
    con.close()
    snapshot = (lake / "warehouse.duckdb").resolve()
    before, before_outside = _files(lake), _files(outside)

    attacks = [
        (f"COPY (SELECT * FROM trades) TO '{lake}/trades/evil.parquet'", "not COPY"),
        (f"COPY (SELECT 1) TO '{outside}/x.csv'", "not COPY"),
        (f"EXPORT DATABASE '{lake}/export'", "not EXPORT"),
        (f"EXPORT DATABASE '{outside}/export'", "not EXPORT"),
        (f"ATTACH '{victim}' AS w (READ_WRITE)", "not ATTACH"),
        (f"SELECT 1; ATTACH '{victim}' AS w (READ_WRITE); DELETE FROM w.t", "not ATTACH"),
        (f"ATTACH '{snapshot}' AS w (READ_WRITE)", "not ATTACH"),
        (f"ATTACH '{lake}/new.duckdb' AS w", "not ATTACH"),
        (f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{lake}/x.csv'", "not EXPLAIN COPY"),
        (f"IMPORT DATABASE '{outside}'", "not PRAGMA"),
        (f"SELECT * FROM read_csv('{outside}/secret.csv')", "Permission Error"),
        (f"SELECT * FROM read_parquet('{outside}/secret.parquet')", "Permission Error"),
        (f"SELECT * FROM read_text('{lake}/../outside/secret.csv')", "Permission Error"),
        ("SELECT * FROM read_text('/etc/hostname')", "Permission Error"),
        ("SELECT * FROM glob('/etc/*')", "Permission Error"),
        (f"SELECT * FROM sniff_csv('{outside}/secret.csv')", "Permission Error"),
        ("SET enable_external_access = true", "not SET"),
        ("RESET lock_configuration", "not SET"),
        ("SET allowed_directories = ['/']", "not SET"),
        ("CALL enable_logging(storage = 'file', storage_path = '/tmp')", "not CALL"),
        ("PRAGMA enable_profiling", "not PRAGMA"),
        ("INSTALL httpfs", "not LOAD"),
        ("CREATE TEMP TABLE t AS SELECT 1", "not CREATE"),
        ("DELETE FROM trades", "not DELETE"),
        ("CHECKPOINT", "not CALL"),
    ]
    runner = CliRunner()
    for query, words in attacks:
        got = runner.invoke(sql, [query, "--lake", str(lake)])
        assert got.exit_code == 1, (query, got.output)
        assert got.output.startswith("Error: ") and got.output.count("\n") == 1, (query, got.output)
        assert words in got.output and "Traceback" not in got.output, (query, got.output)

    assert _files(lake) == before and _files(outside) == before_outside
    con = duckdb.connect(str(victim), read_only=True)
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(10,)]
    con.close()
    # the lake's own files stay readable, by the views and by name
    files = f"{lake}/trades/*/*/data.parquet"
    ok = runner.invoke(sql, [f"SELECT count(*) FROM read_parquet('{files}')", "--lake", str(lake)])
    assert ok.exit_code == 0 and "34419" in ok.output, ok.output


def test_the_connection_itself_is_confined(demo_lake: Path, tmp_path: Path) -> None:
    """Beneath the statement check: the connection `mdp sql` uses cannot reach files outside the lake, nor unlock
    its settings, whatever statement reaches it."""
    public = str(demo_lake / "warehouse.duckdb")
    (tmp_path / "mine.csv").write_text("a\n1\n")
    plain = duckdb.connect(public, read_only=True)  # a connection of this process's own code, to the same file
    with Warehouse(public).connect(confined=True) as con:
        assert con.execute("SELECT count(*) FROM trades").fetchall() == [(34_419,)]
        for statement in (
            f"COPY (SELECT 1) TO '{tmp_path}/x.csv'",
            f"SELECT * FROM read_text('{tmp_path}')",
            "SET enable_external_access = true",
            "SET lock_configuration = false",
            "SET TimeZone = 'America/New_York'",
        ):
            with pytest.raises(duckdb.Error, match=r"disabled by configuration|configuration has been locked"):
                con.execute(statement)
        assert con.execute("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]
        # the confinement is the confined connection's alone
        assert plain.execute(f"SELECT count(*) FROM read_csv('{tmp_path}/mine.csv')").fetchall() == [(1,)]
    plain.close()
    assert [p.name for p in tmp_path.iterdir()] == ["mine.csv"]


# holds the published warehouse open read-only until stdin closes; on each line, counts trades through it
_READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("SELECT count(*) FROM trades").fetchall()[0][0], flush=True)
for line in sys.stdin:
    print(con.execute("SELECT count(*) FROM trades").fetchall()[0][0], flush=True)
"""


def test_readers_never_lock_each_other_out(demo_lake: Path) -> None:
    public = str(demo_lake / "warehouse.duckdb")
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, public], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "34419"
        # another process holds the catalog: mdp sql still opens it ...
        got = CliRunner().invoke(sql, ["SELECT count(*) AS n FROM trades", "--lake", str(demo_lake), "--format", "csv"])
        assert got.exit_code == 0 and got.output.splitlines() == ['"n"', "34419"], got.output
        # ... and while mdp sql's connection is open, the other reader still reads, and a new one opens
        with Warehouse(public).connect(confined=True) as con:
            reader.stdin.write("again\n")
            reader.stdin.flush()
            assert reader.stdout.readline().strip() == "34419"
            other = subprocess.run([sys.executable, "-c", _READER, public], input="", capture_output=True, text=True)
            assert other.returncode == 0 and other.stdout.strip() == "34419", other.stderr
            assert con.execute("SELECT count(*) FROM trades").fetchall() == [(34_419,)]
    finally:
        if reader.stdin is not None:
            reader.stdin.close()
        reader.wait(timeout=30)
    assert reader.returncode == 0


def test_an_s3_lake_is_confined_to_its_prefix(tmp_path: Path, moto_s3: dict[str, str]) -> None:
    """On an S3 lake (a local moto server) the views read the lake's objects through s3fs; another bucket, and
    local files, are out of reach."""
    import boto3
    from s3fs import S3FileSystem

    boto3.client("s3", endpoint_url=moto_s3["MDP_S3_ENDPOINT"]).create_bucket(Bucket="mdp-lake")
    boto3.client("s3", endpoint_url=moto_s3["MDP_S3_ENDPOINT"]).create_bucket(Bucket="mdp-other")
    fs = S3FileSystem(client_kwargs={"endpoint_url": moto_s3["MDP_S3_ENDPOINT"]})
    ts = pl.Series([1_723_161_600_000_000_000]).cast(pl.Datetime("ns", "UTC"))
    frame = pl.DataFrame({"exchange": ["x"], "symbol": ["A-B"], "ts": ts, "recv_ts": ts, "trade_id": ["1"]})
    for key in ("mdp-lake/lake/trades/date=2024-08-09/hour=00/data.parquet", "mdp-other/secret.parquet"):
        with fs.open(key, "wb") as fh:
            frame.write_parquet(fh)
    args = ["--lake", "s3://mdp-lake/lake", "--warehouse", str(tmp_path / "warehouse.duckdb")]
    runner = CliRunner()
    ok = runner.invoke(sql, ["SELECT count(*) AS n FROM trades", *args, "--format", "csv"])
    assert ok.exit_code == 0 and ok.output.splitlines() == ['"n"', "1"], ok.output
    own = runner.invoke(sql, ["SELECT count(*) AS n FROM 's3://mdp-lake/lake/trades/*/*/data.parquet'", *args])
    assert own.exit_code == 0, own.output
    for query in ("SELECT * FROM 's3://mdp-other/secret.parquet'", "SELECT * FROM read_text('/etc/hostname')"):
        got = runner.invoke(sql, [query, *args])
        assert got.exit_code == 1 and "Permission Error" in got.output and got.output.count("\n") == 1, got.output
