"""`mdp backfill`: fill the trade gaps of a range from the exchanges' REST history, then re-materialize what
changed (in process, recorded in DAGSTER_HOME like `mdp materialize`)."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import click
from tqdm import tqdm  # type: ignore[import-untyped]

from mdplatform.backfill import Gap
from mdplatform.exchanges import HistoryPage
from mdplatform.transforms import HOUR_NS, from_ns

__all__ = ["backfill"]


@click.command("backfill")
@click.option("--from", "start", metavar="TIME", required=True, help="start (ISO date or time, UTC)")
@click.option("--to", "end", metavar="TIME", required=True, help="end (exclusive; a bare date includes that day)")
@click.option("--exchange", "exchanges", multiple=True, metavar="ID", help="only this exchange (repeatable)")
@click.option("--symbol", "symbols", multiple=True, metavar="S", help="only this symbol, BTC-USDT or BTCUSDT")
@click.option(
    "--rest-url",
    metavar="URL",
    help="REST host to ask instead of the exchange's own (scheme://host[:port], e.g. an `mdp replay`)",
)
@click.option("--lake", metavar="PATH", help="lake root (default $MDP_LAKE or ./lake)")
@click.option("--warehouse", metavar="PATH", help="DuckDB file (default $MDP_WAREHOUSE or <lake>/warehouse.duckdb)")
@click.option("--progress/--no-progress", default=True, help="show progress bars")
@click.option(
    "--max-pages", type=click.IntRange(min=1), default=1000, show_default=True, help="replies per gap before giving up"
)
@click.option(
    "--max-mb", type=click.IntRange(min=1), default=256, show_default=True, help="reply MB per gap before giving up"
)
@click.option(
    "--gap-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    metavar="S",
    help="seconds per gap, rate-limit waits and retries included, before giving up",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    metavar="S",
    help="seconds for one whole request, body included",
)
@click.option(
    "--retries", type=click.IntRange(min=0), default=5, show_default=True, help="times a failed request is sent again"
)
@click.option(
    "--price-band",
    type=click.FloatRange(min=0, min_open=True),
    default=25.0,
    show_default=True,
    metavar="PCT",
    help="reject a page with a price this many percent beyond the trades either side of the gap",
)
def backfill(
    start: str,
    end: str,
    exchanges: tuple[str, ...],
    symbols: tuple[str, ...],
    rest_url: str | None,
    lake: str | None,
    warehouse: str | None,
    progress: bool,
    max_pages: int,
    max_mb: int,
    gap_timeout: float,
    request_timeout: float,
    retries: int,
    price_band: float,
) -> None:
    """Fill every trade gap of a time range from the exchanges' REST history and re-materialize what changed.

    Hours of the range not materialized yet are materialized first (their coverage says what is missing). The
    fetched trades land in the lake's backfill tables as the exchange sent them; then the hours they belong to
    are materialized again, with the later hours holding their 4h and 1d candles. Gaps REST history cannot fill
    (order books have no history; an exchange that keeps none) stay recorded in coverage and are listed.

    Each gap's fetch is bounded (pages, bytes, time; each request has a deadline) and each page's prices are
    checked against the trades either side of the gap; time before a stream was first collected is never asked
    for. The exit status is 1 when a gap stays unfilled because of an error (each gap gets one line saying why).
    """
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    from mdplatform.backfill import HealLimits, find_gaps, heal_gaps
    from mdplatform.exchanges import EXCHANGES
    from mdplatform.lake import lake_root
    from mdplatform.schemas import TIMEFRAMES
    from mdplatform.transforms import publishing_hours
    from mdplatform.warehouse import partition_exists

    from ._runner import HourRunner
    from ._settings import Settings
    from .cli import hours_in_range, no_hours

    unknown = sorted(set(exchanges) - set(EXCHANGES))
    if unknown:
        raise click.BadParameter(f"unknown exchange(s) {', '.join(unknown)}", param_hint="--exchange")
    root = lake_root(lake)
    settings = Settings(lake=root, warehouse=warehouse)
    hours = hours_in_range(start, end, root)
    if not hours:
        raise no_hours(root)
    lo, hi = hours[0], hours[-1] + HOUR_NS
    only_exchanges, only_symbols = set(exchanges) or None, set(symbols) or None
    runner = HourRunner(root, settings.warehouse_path, progress=progress)
    began = time.monotonic()

    # coverage says what is missing: hours never materialized get it first
    unseen = [h for h in hours if not partition_exists(root, "coverage", h)]
    if unseen:
        runner.run(unseen)
    if runner.stopped_by:
        raise click.ClickException(f"stopped by {runner.stopped_by} while materializing the range; nothing fetched")

    gaps = find_gaps(root, lo, hi, exchanges=only_exchanges, symbols=only_symbols)
    click.echo(f"{len(gaps)} trade gap(s) in {from_ns(lo):%Y-%m-%d %H:%M} .. {from_ns(hi):%Y-%m-%d %H:%M} UTC")
    with tqdm(total=len(gaps), unit="gap", disable=not progress, file=sys.stderr) as bar:

        def on_page(gap: Gap, page: HistoryPage) -> None:
            bar.set_postfix_str(
                f"{gap.exchange} {gap.symbol} {from_ns(page.times_ns[-1] if page.times_ns else 0):%H:%M:%S}"
            )

        limits = HealLimits(
            max_pages=max_pages,
            max_bytes=max_mb << 20,
            max_seconds=gap_timeout,
            request_s=request_timeout,
            retries=retries,
            price_band=price_band / 100,
        )
        report = asyncio.run(heal_gaps(root, gaps, rest_url=rest_url, on_page=on_page, limits=limits))
        bar.update(len(gaps))
    for healed in report.healed:
        click.echo(f"  {healed.describe()}")
    click.echo(
        f"filled {sum(1 for h in report.healed if h.whole)} of {len(report.healed)} gap(s): "
        f"{sum(h.trades for h in report.healed)} trades fetched in {report.requests} requests "
        f"({report.throttled} throttled, {report.waited_s:.1f} s waited)"
    )

    # what the new data changes: its hours (trades, coverage, candles), then the later hours holding their 4h/1d
    # candles, where those were materialized already
    redo = report.hours()
    later = sorted({p for h in redo for p in publishing_hours(h, TIMEFRAMES)} - set(redo))
    later = [p for p in later if partition_exists(root, "candles", p)]
    if redo:
        runner.run(redo)
    if later:
        runner.run(later, candles_only=True)
    remaining = find_gaps(root, lo, hi, exchanges=only_exchanges, symbols=only_symbols)
    click.echo(
        f"re-materialized {len(redo)} hour(s) and the candles of {len(later)} later hour(s) in "
        f"{time.monotonic() - began:.1f} s; {len(remaining)} trade gap(s) remain"
    )
    for gap in remaining:
        click.echo(
            f"  still missing: {gap.exchange} {gap.symbol} {from_ns(gap.start_ns):%Y-%m-%d %H:%M:%S} .. "
            f"{from_ns(gap.end_ns):%Y-%m-%d %H:%M:%S} UTC"
        )
    if runner.failed:
        raise click.ClickException(runner.failure())
    errors = [h for h in report.healed if h.error]
    if errors:
        # what was fetched before the errors is landed and re-materialized; the gaps themselves are not filled
        raise click.ClickException(
            f"{len(errors)} of {len(report.healed)} gap(s) not filled because of errors (listed above)"
        )
    if runner.stopped_by:
        # what was fetched is landed: the sensor (or `mdp materialize` of those hours) finishes the job
        raise click.ClickException(
            f"stopped by {runner.stopped_by} after {runner.done} run(s); the fetched trades are in the lake"
        )
