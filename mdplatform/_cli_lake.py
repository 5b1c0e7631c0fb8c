"""``mdp lake``: compact the raw lake's minute files into hour and day files, and see what the lake holds."""

from __future__ import annotations

import re

import click

__all__ = ["lake"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def _duration_ns(text: str) -> int:
    """``90s``, ``75m``, ``2h``, ``2d`` (or bare seconds) in ns."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if m is None:
        raise click.BadParameter(f"not a duration like 75m, 2h or 2d: {text!r}")
    return round(float(m.group(1)) * _UNITS[m.group(2) or "s"] * 10**9)


_LAKE = click.option("--lake", default=None, help="Lake root (default: $MDP_LAKE or ./lake; s3://bucket/prefix works).")
_MIN_AGE = click.option(
    "--min-age",
    default="75m",
    show_default=True,
    help="An hour is final (compacted into one file) this long after its end: the lateness plus what a restarted "
    "collector's journal may still land.",
)
_DAY_AGE = click.option(
    "--day-age", default="2d", show_default=True, help="A day becomes one file this long after its end."
)


@click.group()
def lake() -> None:
    """The raw lake's files: compaction and statistics."""


@lake.command()
@_LAKE
@_MIN_AGE
@_DAY_AGE
@click.option("--table", "tables", multiple=True, type=click.Choice(["raw", "events"]), help="Only these trees.")
@click.option("--exchange", "exchanges", multiple=True, help="Only these exchanges (registry ids).")
@click.option("-q", "--quiet", is_flag=True, help="Only the summary line.")
def compact(
    lake: str | None, min_age: str, day_age: str, tables: tuple[str, ...], exchanges: tuple[str, ...], quiet: bool
) -> None:
    """Rewrite final hours' minute files into one file per exchange and hour, and older days into one per day
    (raw/ and events/). Safe to interrupt and to run again: readers never see a half-compacted hour, and a run
    with nothing to do changes nothing."""
    from .lake import COMPACTED_TABLES, CompactionBusy, SpanStats
    from .lake import compact as run

    def progress(span: SpanStats) -> None:
        if not quiet:
            click.echo(span.line())

    try:
        stats = run(
            lake,
            min_age_ns=_duration_ns(min_age),
            day_age_ns=_duration_ns(day_age),
            tables=[t for t in COMPACTED_TABLES if not tables or t in tables],
            exchanges=list(exchanges) or None,
            progress=progress,
        )
    except CompactionBusy as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(stats.summary())


@lake.command()
@_LAKE
@_MIN_AGE
@_DAY_AGE
def stats(lake: str | None, min_age: str, day_age: str) -> None:
    """Files, rows and bytes per layer and exchange; what compaction saved (the minute files and bytes today's
    files first landed in) and what it would do now."""
    from .lake import lake_root, lake_stats

    rows = lake_stats(lake, min_age_ns=_duration_ns(min_age), day_age_ns=_duration_ns(day_age))
    click.echo(f"lake {lake_root(lake)}")
    header = (
        f"{'layer':17} {'exchange':14} {'files':>8} {'rows':>13} {'MB':>9}  {'min/hour/day files':>20}  "
        f"{'landed as':>22}  {'compactable now':>26}"
    )
    click.echo(header)
    total = [0, 0, 0, 0, 0]
    for s in rows:
        depth = f"{s.minute_files}/{s.hour_files}/{s.day_files}" if s.exchange else ""
        landed = f"{s.landed_files:,} files {s.landed_bytes / 2**20:,.1f} MB" if s.exchange else ""
        todo = (
            f"{s.compactable_files:,} files -> {s.compacted_to:,}"
            if s.compactable_files
            else ("none" if s.exchange else "")
        )
        left = f"  ({s.leftover_files} left-over)" if s.leftover_files else ""
        click.echo(
            f"{s.layer:17} {s.exchange or '-':14} {s.files:>8,} {s.rows:>13,} {s.bytes / 2**20:>9,.1f}  {depth:>20}  "
            f"{landed:>22}  {todo:>26}{left}"
        )
        for i, v in enumerate((s.files, s.rows, s.bytes, s.landed_files, s.landed_bytes)):
            total[i] += v
    click.echo(
        f"{'total':17} {'':14} {total[0]:>8,} {total[1]:>13,} {total[2] / 2**20:>9,.1f}  {'':>20}  "
        f"{f'{total[3]:,} files {total[4] / 2**20:,.1f} MB':>22}"
    )
    if total[3] > total[0]:
        click.echo(
            f"compaction saved {total[3] - total[0]:,} files ({1 - total[0] / total[3]:.1%}) and "
            f"{(total[4] - total[2]) / 2**20:,.1f} MB ({1 - total[2] / max(total[4], 1):.1%})"
        )
