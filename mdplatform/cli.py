"""``mdp``: the command line. Orchestration commands (``materialize``) plug in through the
``mdplatform.cli`` entry-point group, so this library never imports Dagster."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from importlib.metadata import entry_points

import click

from ._signals import stop_signals

__all__ = ["cli", "main"]


class _PluginGroup(click.Group):
    """Adds commands from the ``mdplatform.cli`` entry points, imported only when one is run
    (``materialize`` pulls in Dagster, which takes seconds to import)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(ep.name for ep in entry_points(group="mdplatform.cli"))})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        for ep in entry_points(group="mdplatform.cli", name=name):
            loaded = ep.load()
            if isinstance(loaded, click.Command):
                return loaded
        return None


@click.group(cls=_PluginGroup)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """mdplatform: collect, land and materialize crypto market data."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--lake", default=None, help="Lake root (default: config 'lake', $MDP_LAKE, ./lake).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--status-file", default=None, help="Write status/health JSON here (atomically) as it runs.")
@click.option("--status-interval", type=float, default=10.0, show_default=True, help="Seconds between status reports.")
@click.option(
    "--journal",
    default=None,
    help="Write-ahead journal directory on local disk (default: config 'journal', $MDP_JOURNAL, <lake>-journal).",
)
@click.option(
    "--journal-budget-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Disk the journal may fill while the lake cannot be written (default: config, 2048).",
)
def ingest(
    config_path: str,
    lake: str | None,
    duration: float | None,
    status_file: str | None,
    status_interval: float,
    journal: str | None,
    journal_budget_mb: float | None,
) -> None:
    """Run the collectors of a config file and land every frame in the raw lake (Ctrl-C stops cleanly)."""
    from dataclasses import replace

    from .collector import ConfigError, load_config
    from .ingest import ingest as run
    from .lake import JournalError

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if status_file:
        config = replace(config, status_file=status_file)
    if journal:
        config = replace(config, journal=journal)
    if journal_budget_mb:
        config = replace(config, journal_budget_mb=journal_budget_mb)
    logging.getLogger("mdplatform").setLevel(min(logging.getLogger().level, logging.INFO))
    try:
        result = asyncio.run(run(config, lake=lake, duration_s=duration, status_every_s=status_interval))
    except JournalError as exc:  # the journal cannot be opened (in use, not writable)
        raise click.ClickException(str(exc)) from exc
    status = result.status
    click.echo(
        f"ingest stopped: received={status['messages_received']} processed={status['messages_processed']} "
        f"errors={status['errors']} reconnects={status['reconnects']} "
        f"rows_written={result.rows_written} files={result.files_written} "
        f"replayed_from_journal={status['lake'].get('rows_replayed', 0)}"
    )
    click.echo("INGEST_STATUS=" + json.dumps(status, separators=(",", ":")))
    if result.failure:
        raise click.ClickException(f"collection stopped: {result.failure}")


@cli.command()
@click.option("--capture", "captures", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False))
@click.argument("more", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--exchange", default=None, help="Exchange id (default: detected from the capture).")
@click.option("--speed", type=float, default=1.0, show_default=True, help="Times real speed; 0 = as fast as possible.")
@click.option("--port", type=int, default=0, help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--rebase",
    is_flag=True,
    help="Shift exchange timestamps by whole minutes so the recording looks live: at --speed 1 it starts now, "
    "otherwise it ends just before the current minute.",
)
@click.option("--drop-after", type=int, default=None, help="Drop client connections once after N frames.")
@click.option(
    "--no-pause",
    is_flag=True,
    help="Once the first client subscribed, never wait again: frames sent while nobody is connected are lost, "
    "as on a real exchange (default: the recording pauses while no client is subscribed).",
)
@click.option(
    "--rest-weight-limit",
    type=click.IntRange(min=1),
    default=None,
    help="REST budget: request weight allowed per --rest-window, answered like the exchange when exceeded "
    "(default: the exchange's own, Binance spot 6000/60 s, USD-M and COIN-M 2400/60 s, OKX 20 requests/2 s).",
)
@click.option(
    "--rest-window",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds of the REST budget's sliding window (default: the exchange's own).",
)
def replay(
    captures: tuple[str, ...],
    more: tuple[str, ...],
    exchange: str | None,
    speed: float,
    port: int,
    host: str,
    rebase: bool,
    drop_after: int | None,
    no_pause: bool,
    rest_weight_limit: int | None,
    rest_window: float | None,
) -> None:
    """Serve recorded captures as a local exchange (WebSocket + REST) until Ctrl-C."""
    from .history import RateLimit
    from .replay import PROTOCOLS, run_replay

    paths = [*captures, *more]
    rest_limit: RateLimit | None = None
    if rest_weight_limit is not None or rest_window is not None:
        from .capture import detect_exchange

        xid = exchange or detect_exchange(paths[0])
        if xid not in PROTOCOLS:
            raise click.ClickException(f"no replay protocol for {xid!r}")
        default = PROTOCOLS[xid](xid).default_rest_limit
        rest_limit = RateLimit(
            rest_weight_limit if rest_weight_limit is not None else default.weight,
            rest_window if rest_window is not None else default.per_s,
        )
    run_replay(
        paths,
        exchange=exchange,
        speed=speed,
        host=host,
        port=port,
        rebase=rebase,
        drop_after=drop_after,
        pause_when_idle=not no_pause,
        rest_limit=rest_limit,
    )


@cli.command("import-capture")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--exchange", required=True, help="Exchange id: binance, binance-usdm, binance-coinm, okx.")
@click.option("--lake", default=None, help="Lake root (default: $MDP_LAKE or ./lake).")
@click.option(
    "--alive-every",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds of receive time between the 'alive' events recorded for each session of the capture.",
)
def import_capture(files: tuple[str, ...], exchange: str, lake: str | None, alive_every: float) -> None:
    """Write recorded captures straight into the raw layer (recv_ts from the recording), with the events a live
    collector would have recorded (open, subscribed, start, alive, close, ...) in the events table."""
    from .capture import import_capture as run
    from .exchanges import get_exchange

    try:
        get_exchange(exchange)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    if not alive_every > 0:
        raise click.BadParameter("must be > 0", param_hint="--alive-every")
    stop, received = threading.Event(), list[str]()
    with stop_signals(stop, received):
        stats = run(list(files), exchange, lake, alive_every_s=alive_every, stop=stop)
    click.echo(str(stats))
    if stats.stopped_at is not None:
        raise click.ClickException(f"stopped by {received[0] if received else 'a signal'} at {stats.stopped_at}")


@cli.command()
def exchanges() -> None:
    """List the supported exchanges and their capabilities."""
    from .exchanges import EXCHANGES

    for ex in EXCHANGES.values():
        cap = ex.capabilities
        click.echo(
            f"{ex.id:15} channels={','.join(sorted(cap.channels))} book_sync={cap.book_sync} "
            f"sequence_check={cap.sequence_check} checksum={cap.checksum}"
        )


def main() -> None:
    cli(prog_name="mdp")


if __name__ == "__main__":
    main()
