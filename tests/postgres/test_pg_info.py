"""``mdp db info`` reports the server, TimescaleDB's absence and each table's rows and time range; no message,
output or returned value shows the DSN's password."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import psycopg
import pytest
from click.testing import CliRunner
from pgdata import H0, HOUR, trades_frame

from mdplatform.cli import cli
from mdplatform.pg import PgConfigError, PgError, default_migrations_dir, info, migrate, redact_dsn, replace_window

SECRET = "hunter2-s3cret"
FILES = sorted(p.name for p in default_migrations_dir().glob("*.sql"))
#: the last trade loaded below (to the microsecond, as PostgreSQL keeps it)
LAST = datetime.fromtimestamp((H0 + HOUR + 33 * (HOUR // 34) + 1_000) // 1_000 / 1e6, UTC)


@pytest.fixture(scope="module")
def loaded(migrated: str) -> str:
    replace_window("trades", trades_frame(H0, 1_200), "ts", H0, H0 + HOUR, dsn=migrated)
    replace_window("trades", trades_frame(H0 + HOUR, 34, seed=1), "ts", H0 + HOUR, H0 + 2 * HOUR, dsn=migrated)
    return migrated


def with_password(dsn: str) -> str:
    """The same DSN with a password (the test server trusts local connections, so it is accepted and unused)."""
    return str(psycopg.conninfo.make_conninfo(dsn, password=SECRET))


def test_info_values(loaded: str) -> None:
    found = info(loaded)
    assert int(found.server_version.split(".")[0]) >= 13
    assert found.timescaledb is None
    assert [m.name for m in found.migrations] == FILES
    tables = {t.name: t for t in found.tables}
    trades = tables["trades"]
    assert (trades.rows, trades.time_column, trades.hypertable, trades.retention) == (1_234, "ts", False, None)
    assert trades.first == datetime.fromtimestamp(H0 / 1e9, UTC)
    assert trades.last == LAST
    assert trades.bytes > 100_000
    assert tables["candles"].rows == 0 and tables["candles"].first is None
    assert {t.retention for t in found.tables} == {None}  # retention is opt-in (005_retention_opt_in.sql)


def test_cli_info_table_and_json(loaded: str) -> None:
    result = CliRunner().invoke(cli, ["db", "info", "--dsn", with_password(loaded)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"database:    {redact_dsn(loaded)}"
    assert lines[1].startswith("server:      PostgreSQL ")
    assert lines[2] == "timescaledb: no: plain tables"
    assert lines[3] == f"migrations:  {len(FILES)} applied, last {FILES[-1]}"
    trades = next(line.split() for line in lines if line.startswith("trades "))
    assert trades[:2] == ["trades", "1,234"]
    assert trades[4:] == ["2024-08-09T00:00:00+00:00", LAST.isoformat(), "forever"]
    assert SECRET not in result.output

    result = CliRunner().invoke(cli, ["db", "info", "--json"], env={"MDP_PG_DSN": with_password(loaded)})
    data = json.loads(result.output)
    assert data["dsn"] == redact_dsn(loaded) and data["timescaledb"] is None
    assert {t["name"]: t["rows"] for t in data["tables"]}["trades"] == 1_234
    assert SECRET not in result.output


def test_no_dsn_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MDP_PG_DSN", raising=False)
    result = CliRunner().invoke(cli, ["db", "migrate"])
    assert result.exit_code == 2
    assert "no PostgreSQL DSN: pass --dsn or set MDP_PG_DSN" in result.output
    with pytest.raises(PgConfigError, match="MDP_PG_DSN"):
        info()


def test_passwords_stay_out_of_errors_and_logs(loaded: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:1/nowhere"  # nothing listens on port 1
    assert redact_dsn(url) == "postgresql://postgres@127.0.0.1:1/nowhere"
    with pytest.raises(PgError) as failed:
        migrate(url)
    assert "postgresql://postgres@127.0.0.1:1/nowhere" in str(failed.value) and SECRET not in str(failed.value)
    with pytest.raises(PgError) as failed:
        replace_window("trades", trades_frame(H0, 1), "ts", H0, H0 + HOUR, dsn=url)
    assert SECRET not in str(failed.value)
    result = CliRunner().invoke(cli, ["db", "info", "--dsn", f"host=127.0.0.1 password='{SECRET}' dbname"])
    assert result.exit_code == 1 and "cannot be parsed" in result.output and SECRET not in result.output
    # a load through the pool, logged at DEBUG, and a failing load: the password shows nowhere
    replace_window("trades", trades_frame(H0, 1_200), "ts", H0, H0 + HOUR, dsn=with_password(loaded))
    with pytest.raises(PgError) as failed:
        replace_window("nope", trades_frame(H0, 1), "ts", H0, H0 + HOUR, dsn=with_password(loaded))
    assert SECRET not in str(failed.value)
    assert SECRET not in caplog.text
