"""`mdp materialize`: trades then candles for each hour of a range, in process, recorded in DAGSTER_HOME."""

from __future__ import annotations

import os
import time

import click

from mdplatform.cli import option_time
from mdplatform.transforms import DAY_NS, HOUR_NS, MINUTE_NS, ceil_ns, floor_ns, from_ns, to_ns

__all__ = ["hours_in_range", "materialize", "no_hours"]


def hours_in_range(start: str | None, end: str | None, lake: str) -> list[int]:
    """Hour starts to materialize. ``--from``: the hour holding it. ``--to``: exclusive; a bare date means
    through the end of that day. Missing bounds come from the raw lake: its first receive minute minus the
    lateness (an earlier hour may hold trades received then) to the end of its last minute plus the clock-skew
    bound (a frame received at the end of that minute may carry an exchange time in the next hour). Hours before
    the lake's first partition (``mdp_start``: MDP_START, else the lake's first hour) or after the open hour are
    left out, as for the sensor."""
    from ._rawscan import minute_bounds
    from ._settings import Settings
    from .partitions import mdp_start

    if os.path.isfile(lake):  # every command of a range reads the lake first: here a file fails it in one line
        raise click.BadParameter(f"{lake} is a file, not a lake folder", param_hint="--lake or MDP_LAKE")
    lo = hi = None
    if start is not None:
        lo = floor_ns(option_time(start, "--from")[0], HOUR_NS)
    if end is not None:
        ns, is_date = option_time(end, "--to")
        hi = ns + DAY_NS if is_date else ceil_ns(ns, HOUR_NS)
    if lo is None or hi is None:
        bounds = minute_bounds(lake)
        if bounds is None:
            raise click.UsageError(f"no raw data under {lake}/raw; give --from and --to")
        settings = Settings(lake=lake)
        if lo is None:
            lo = floor_ns(bounds[0] - settings.lateness_ns, HOUR_NS)
        if hi is None:
            # the last ns of the last minute, not its start: a frame received at 23:59:58.8 whose exchange clock
            # runs 1.3 s ahead holds trades of the next hour
            hi = floor_ns(bounds[1] + MINUTE_NS - 1 + settings.skew_ns, HOUR_NS) + HOUR_NS
    if hi <= lo:
        given = f"--from {start}" if start is not None else f"the raw lake's start ({from_ns(lo):%Y-%m-%d %H:%M} UTC)"
        until = f"--to {end}" if end is not None else f"the raw lake's end ({from_ns(hi):%Y-%m-%d %H:%M} UTC)"
        raise click.UsageError(f"{given} is not before {until}: the range is empty")
    # partitions run from the lake's start (MDP_START, else its first hour) through the open hour
    lo = max(lo, to_ns(mdp_start(lake)))
    hi = min(hi, floor_ns(time.time_ns(), HOUR_NS) + HOUR_NS)
    return list(range(lo, hi, HOUR_NS))


def no_hours(lake: str) -> click.UsageError:
    """Why a range that is not empty holds no hour to run: it lies outside the partitions."""
    from .partitions import mdp_start

    now = floor_ns(time.time_ns(), HOUR_NS)
    return click.UsageError(
        f"no hour of that range is a partition: partitions run from {mdp_start(lake):%Y-%m-%d %H:%M} UTC "
        f"(MDP_START, else where the raw lake starts) through the current hour, {from_ns(now):%Y-%m-%d %H:%M} UTC"
    )


def _summary(warehouse: str, lake: str, lo: int, hi: int) -> str:
    from mdplatform.schemas import TIMEFRAMES
    from mdplatform.warehouse import Warehouse

    wh = Warehouse(warehouse, lake=lake)
    t = wh.query(
        "SELECT exchange, symbol, count(*) AS trades, sum(fills) AS fills FROM trades WHERE ts >= ? AND ts < ? "
        "GROUP BY ALL ORDER BY ALL",
        [from_ns(lo), from_ns(hi)],
    )
    c = wh.query(
        "SELECT exchange, symbol, timeframe, count(*) AS n, count(*) FILTER (WHERE complete) AS whole FROM candles "
        "WHERE close_time > ? AND close_time <= ? GROUP BY ALL",
        [from_ns(lo), from_ns(hi)],
    )
    g = wh.query(
        "SELECT exchange, symbol, count(*) AS gaps, sum(epoch(end_time) - epoch(start_time)) AS seconds FROM coverage "
        "WHERE status = 'gap' AND start_time >= ? AND start_time < ? GROUP BY ALL",
        [from_ns(lo), from_ns(hi)],
    )
    lines = [
        f"{'exchange/symbol':<32} {'trades':>8} {'fills':>8}  candles complete/published "
        f"({' '.join(TIMEFRAMES)})  coverage gaps"
    ]
    keys = sorted({(r[0], r[1]) for df in (t, c, g) for r in df.iter_rows()})
    trades = {(r[0], r[1]): (r[2], r[3]) for r in t.iter_rows()}
    candles = {(r[0], r[1], r[2]): f"{r[4]}/{r[3]}" for r in c.iter_rows()}
    gaps = {(r[0], r[1]): f"{r[2]} ({float(r[3]):.0f} s)" for r in g.iter_rows()}
    for ex, sym in keys:
        n, fills = trades.get((ex, sym), (0, 0))
        per_tf = " ".join(candles.get((ex, sym, tf), "0/0") for tf in TIMEFRAMES)
        lines.append(f"{ex + '/' + sym:<32} {n:>8} {fills or 0:>8}  {per_tf}  {gaps.get((ex, sym), '0')}")
    if not keys:
        lines.append("(no trades or candles in range)")
    return "\n".join(lines)


@click.command("materialize")
@click.option("--from", "start", metavar="TIME", help="first hour (ISO date or time, UTC); default: raw lake start")
@click.option("--to", "end", metavar="TIME", help="end (exclusive; a bare date includes that day); default: lake end")
@click.option("--lake", metavar="PATH", help="lake root (default $MDP_LAKE or ./lake)")
@click.option("--warehouse", metavar="PATH", help="DuckDB file (default $MDP_WAREHOUSE or <lake>/warehouse.duckdb)")
@click.option("--progress/--no-progress", default=True, help="show a progress bar")
def materialize(start: str | None, end: str | None, lake: str | None, warehouse: str | None, progress: bool) -> None:
    """Materialize the hourly `trades`, `coverage` and `candles` partitions (and their checks) for a time range.

    Runs in this process, consecutive hours as one Dagster run over their range (each raw file read once),
    recorded in DAGSTER_HOME (default ./.dagster), then prints trades, candles (complete/published per timeframe)
    and coverage gaps per exchange/symbol.
    """
    from mdplatform.lake import lake_root, remove_stale_temp_files, unreadable_files

    # submodules, not the package: `assets` may be a namespace package in a stale editable install
    from ._runner import HourRunner
    from ._settings import Settings

    root = lake_root(lake)
    settings = Settings(lake=root, warehouse=warehouse)
    hours = hours_in_range(start, end, root)
    if not hours:
        raise no_hours(root)
    # what writers killed mid-write left in the days this run reads and writes (and the warehouse's folder)
    first = floor_ns(hours[0] - settings.lateness_ns, DAY_NS)
    days = range(first, hours[-1] + HOUR_NS + settings.lateness_ns, DAY_NS)
    for path in remove_stale_temp_files(root, [f"{from_ns(d):%Y-%m-%d}" for d in days]):
        click.echo(f"removed a temp file a killed writer left: {path}", err=True)
    runner = HourRunner(root, settings.warehouse_path, progress=progress)
    began = time.monotonic()
    runner.run(hours)
    failed, failed_checks = runner.failed, runner.failed_checks
    late, rejects = runner.totals.get("late_trades", 0), runner.totals.get("rejects", 0)
    elapsed = time.monotonic() - began
    if not runner.done:
        raise click.ClickException(f"stopped by {runner.stopped_by} before the first hour")
    lo, hi = hours[0], hours[runner.done - 1] + HOUR_NS
    click.echo(
        f"materialized {runner.done} hour(s) {from_ns(lo):%Y-%m-%d %H:%M} .. {from_ns(hi):%Y-%m-%d %H:%M} UTC "
        f"in {elapsed:.1f} s; late trades {late}, rejects {rejects}; warehouse {settings.warehouse_path}"
    )
    click.echo(_summary(settings.warehouse_path, root, lo, hi))
    for path, reason in unreadable_files(root):
        # moved aside by a read (the hours went on without it), until someone looks at it
        click.echo(f"unreadable file set aside: {path}: {reason}", err=True)
    # what the Dagster UI shows on each asset's Checks tab (Data Docs of failed ones: <lake>/quality/data_docs/)
    click.echo(f"quality checks: {runner.checks_passed} passed, {len(failed_checks)} failed")
    for line in failed_checks:
        click.echo(f"check failed: {line}", err=True)
    if failed:
        raise click.ClickException(runner.failure())
    if runner.stopped_by:
        rest = f"{from_ns(hi):%Y-%m-%d %H:%M} .. {from_ns(hours[-1] + HOUR_NS):%Y-%m-%d %H:%M} UTC"
        done = f"{from_ns(lo):%Y-%m-%d %H:%M} .. {from_ns(hi):%Y-%m-%d %H:%M} UTC"
        raise click.ClickException(
            f"stopped by {runner.stopped_by} after {runner.done} of {len(hours)} hour(s); not run: {rest}; "
            f"finished whole: {done}"
        )
