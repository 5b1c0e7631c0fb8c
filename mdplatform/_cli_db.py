"""``mdp db``: the PostgreSQL sink's migrations, contents, retention and reload from the lake (mdplatform.pg)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import click

__all__ = ["db"]

_DSN = click.option(
    "--dsn",
    envvar="MDP_PG_DSN",
    show_envvar=True,
    help="PostgreSQL DSN (postgresql://user@host:5432/db); default $MDP_PG_DSN.",
)


def _require(dsn: str | None) -> str:
    if not dsn:
        raise click.UsageError("no PostgreSQL DSN: pass --dsn or set MDP_PG_DSN")
    return dsn


def _fail(exc: Exception) -> click.ClickException:
    # mdplatform.pg's errors carry no password; anything else is reported by type only, for the same reason
    from mdplatform.pg import PgError

    return click.ClickException(str(exc) if isinstance(exc, PgError) else type(exc).__name__)


@click.group()
def db() -> None:
    """The PostgreSQL / TimescaleDB sink: migrate it, see what it holds, reload it from the lake."""


@db.command()
@_DSN
def migrate(dsn: str | None) -> None:
    """Apply the migrations not applied yet (sql/postgres/NNN_*.sql); a no-op when up to date."""
    from mdplatform.pg import PgError, migrate, redact_dsn

    try:
        applied = migrate(_require(dsn))
    except PgError as exc:
        raise _fail(exc) from None
    target = redact_dsn(_require(dsn))
    if not applied:
        click.echo(f"{target}: up to date")
    for m in applied:
        click.echo(f"{target}: applied {m.name} ({m.checksum[:12]})")


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _echo_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Left-aligned columns two spaces apart, the header first."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _utc(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else "-"


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


@db.command()
@_DSN
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the table.")
def info(dsn: str | None, as_json: bool) -> None:
    """Which server, whether TimescaleDB is present, the migrations applied and what each table holds."""
    from mdplatform.pg import PgError, info

    try:
        found = info(_require(dsn))
    except PgError as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(asdict(found), default=_plain, indent=2))
        return
    click.echo(f"database:    {found.dsn}")
    click.echo(f"server:      PostgreSQL {found.server_version}")
    ts = f"yes ({found.timescaledb}): hypertables" if found.timescaledb else "no: plain tables"
    click.echo(f"timescaledb: {ts}")
    last = found.migrations[-1].name if found.migrations else "none (run `mdp db migrate`)"
    click.echo(f"migrations:  {len(found.migrations)} applied, last {last}")
    if not found.tables:
        return
    header = ("table", "rows", "size", "from", "to", "retention")
    rows = [
        (
            t.name + (" (hypertable)" if t.hypertable else ""),
            f"{t.rows:,}",
            _human_bytes(t.bytes),
            t.first.isoformat() if t.first else "-",
            t.last.isoformat() if t.last else "-",
            t.retention or "forever",
        )
        for t in found.tables
    ]
    _echo_table(header, rows)


@db.command()
@_DSN
@click.argument("table", required=False)
@click.argument("keep", required=False)
@click.option("--enforce", is_flag=True, help="Delete what the report lists (default: only report it).")
def retention(dsn: str | None, table: str | None, keep: str | None, enforce: bool) -> None:
    """What each table's retention deletes now: rows and time range older than its cutoff (a dry run), or with
    --enforce deleted. TABLE KEEP first sets TABLE's retention to KEEP (an interval such as '30 days', or
    'forever', the default: retention is opt-in)."""
    from mdplatform.pg import PgError, enforce_retention, plan_retention, set_retention

    if table is not None and keep is None:
        raise click.UsageError("give the interval to keep TABLE's rows for, e.g. '30 days', or 'forever'")
    try:
        if table is not None:
            set_retention(table, None if keep == "forever" else keep, dsn=_require(dsn))
            click.echo(f"{table}: kept {keep}")
        plans = enforce_retention(dsn=_require(dsn)) if enforce else plan_retention(dsn=_require(dsn))
    except PgError as exc:
        raise _fail(exc) from None
    click.echo("deleted:" if enforce else "dry run, nothing deleted (--enforce deletes these rows):")
    header = ("table", "keep", "cutoff", "rows", "from", "to")
    rows = [
        (
            p.table,
            p.keep or "forever",
            _utc(p.cutoff),
            f"{p.rows:,}" + ("" if p.chunks is None else f" ({p.chunks} chunks)"),
            _utc(p.first),
            _utc(p.last),
        )
        for p in plans
    ]
    _echo_table(header, rows)


def _hour_ns(text: str, *, end: bool) -> int:
    """An ISO date or date-time (UTC when naive) as ns, on the hour: ``--from`` the hour holding it; ``--to`` is
    exclusive, rounded up to the hour, and a bare date means through the end of that day."""
    from datetime import timedelta

    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "T"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO date or date-time") from None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    if end and len(text.strip()) <= 10:
        value += timedelta(days=1)
    ns = round(value.timestamp()) * 10**9
    hour = 3_600 * 10**9
    return -(-ns // hour) * hour if end else ns - ns % hour


@db.command()
@_DSN
@click.option("--from", "start", required=True, metavar="TIME", help="first hour (ISO date or time, UTC)")
@click.option("--to", "end", required=True, metavar="TIME", help="end (exclusive; a bare date includes that day)")
@click.option("--lake", metavar="PATH", help="lake root (default $MDP_LAKE or ./lake)")
@click.option("--table", "tables", multiple=True, metavar="NAME", help="only these tables (repeatable)")
def reload(dsn: str | None, start: str, end: str, lake: str | None, tables: tuple[str, ...]) -> None:
    """Bring PostgreSQL back to the lake: each hour's derived partitions in the lake replace that hour's rows.

    For a database dropped and recreated, restored from an old backup, or down while hours were materialized.
    Applies the migrations first; one transaction per hour; an hour the lake has no partition for is left as
    it is (and counted).
    """
    from mdplatform.lake import lake_root
    from mdplatform.pg import PgError, redact_dsn, reload_from_lake

    lo, hi = _hour_ns(start, end=False), _hour_ns(end, end=True)
    if hi <= lo:
        raise click.UsageError("empty time range: --to must be after --from")
    root = lake_root(lake)
    try:
        found = reload_from_lake(root, lo, hi, dsn=_require(dsn), tables=list(tables) or None)
    except PgError as exc:
        raise _fail(exc) from None
    click.echo(f"{redact_dsn(_require(dsn))}: {found.hours} hour(s) reloaded from {root}")
    for table in sorted(set(found.inserted) | set(found.missing)):
        missing = found.missing.get(table, 0)
        note = f"; {missing} hour(s) not in the lake, left as they were" if missing else ""
        click.echo(
            f"  {table}: {found.inserted.get(table, 0):,} rows loaded, {found.deleted.get(table, 0):,} replaced{note}"
        )
    for table in found.skipped:
        click.echo(f"  {table}: no such table in PostgreSQL, skipped")
