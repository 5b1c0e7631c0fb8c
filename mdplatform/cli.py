"""``mdp``: the command line. Orchestration commands (``materialize``) plug in through the
``mdplatform.cli`` entry-point group, so this library never imports Dagster."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from importlib.metadata import entry_points
from typing import Any, NoReturn

import click

from ._gc import fewer_collections
from ._signals import stop_signals

__all__ = ["cli", "main", "option_time"]


#: commands of this package kept in their own modules ("module:attribute"), imported only when one is run
_LAZY_COMMANDS = {
    "db": "mdplatform._cli_db:db",
    "lake": "mdplatform._cli_lake:lake",
    "sql": "mdplatform._cli_sql:sql",
    "status": "mdplatform._cli_status:status",
}

#: the one-line help `mdp --help` shows for commands it does not import to list them (a plugin's own help is
#: shown by `mdp NAME --help`); importing them would take seconds (Dagster, DuckDB, polars)
_LISTED_HELP = {
    "db": "PostgreSQL/TimescaleDB: migrate, info, retention, reload from the lake.",
    "lake": "Lake maintenance: compact minute files, stats.",
    "sql": "Run a SQL query on the DuckDB warehouse (read-only).",
    "status": "The running ingestor's health, per connection.",
    "materialize": "Materialize the hourly assets of a time range.",
    "backfill": "Heal a range's trade gaps from REST history.",
}


class _PluginGroup(click.Group):
    """Adds the lazy commands of ``_LAZY_COMMANDS`` and those of the ``mdplatform.cli`` entry points, imported
    only when one is run (``materialize`` pulls in Dagster, which takes seconds to import); ``mdp --help`` lists
    them from ``_LISTED_HELP`` without importing them."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows = []
        for name in names:
            own = self.commands.get(name)
            if own is None:
                rows.append((name, _LISTED_HELP.get(name, f"(see `mdp {name} --help`)")))
            elif not own.hidden:
                rows.append((name, own.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def list_commands(self, ctx: click.Context) -> list[str]:
        plugins = (ep.name for ep in entry_points(group="mdplatform.cli"))
        return sorted({*super().list_commands(ctx), *_LAZY_COMMANDS, *plugins})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        if name in _LAZY_COMMANDS:
            from importlib import import_module

            module, attr = _LAZY_COMMANDS[name].split(":")
            with fewer_collections():  # seconds of imports (Dagster's) make objects the collector scans for nothing
                lazy = getattr(import_module(module), attr)
            return lazy if isinstance(lazy, click.Command) else None
        for ep in entry_points(group="mdplatform.cli", name=name):
            with fewer_collections():
                loaded = ep.load()
            if isinstance(loaded, click.Command):
                return loaded
        return None


@click.group(cls=_PluginGroup)
@click.version_option(package_name="mdplatform", prog_name="mdp")
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
@click.option(
    "--shard",
    default=None,
    envvar="MDP_SHARD",
    metavar="I/N",
    help="Collect shard I of N of the config's (exchange, symbol) pairs (default: config 'shard', $MDP_SHARD).",
)
def ingest(
    config_path: str,
    lake: str | None,
    duration: float | None,
    status_file: str | None,
    status_interval: float,
    journal: str | None,
    journal_budget_mb: float | None,
    shard: str | None,
) -> None:
    """Run the collectors of a config file and land every frame in the raw lake (Ctrl-C stops cleanly)."""
    from dataclasses import replace

    from .collector import ConfigError, load_config
    from .ingest import ingest as run
    from .lake import JournalError

    try:
        config = load_config(config_path, shard=shard)
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
    except (JournalError, ConfigError) as exc:  # the journal cannot be opened; a setting checked at start
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
    from .replay import protocol_for, run_replay

    paths = [*captures, *more]
    rest_limit: RateLimit | None = None
    if rest_weight_limit is not None or rest_window is not None:
        from .capture import detect_exchange

        xid = exchange or detect_exchange(paths[0])
        try:
            default = protocol_for(xid).default_rest_limit
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
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
@click.option(
    "--exchange",
    default=None,
    help="Exchange id: binance, binance-usdm, binance-coinm, okx (default: detected from each file's content; "
    "given, every file must be one of its).",
)
@click.option("--lake", default=None, help="Lake root (default: $MDP_LAKE or ./lake).")
@click.option(
    "--alive-every",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds of receive time between the 'alive' events recorded for each session of the capture.",
)
def import_capture(files: tuple[str, ...], exchange: str | None, lake: str | None, alive_every: float) -> None:
    """Write recorded captures straight into the raw layer (recv_ts from the recording), with the events a live
    collector would have recorded (open, subscribed, start, alive, close, ...) in the events table.

    A gzip file cut short (or corrupt) ends the import with an error: its whole lines before the damage are landed,
    as with Ctrl-C; the files after it are not read (importing the files again replaces what landed)."""
    from .capture import import_capture as run
    from .exchanges import get_exchange

    try:
        if exchange is not None:
            get_exchange(exchange)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--exchange") from None
    if not alive_every > 0:
        raise click.BadParameter("must be > 0", param_hint="--alive-every")
    stop, received = threading.Event(), list[str]()
    with stop_signals(stop, received):
        stats = run(list(files), exchange, lake, alive_every_s=alive_every, stop=stop)
    click.echo(str(stats))
    if stats.stopped_at is not None:
        raise click.ClickException(f"stopped by {received[0] if received else 'a signal'} at {stats.stopped_at}")
    if stats.damaged is not None:
        raise click.ClickException(
            f"{stats.damaged}: the lines before it are landed ({stats.rows} rows in all), nothing after it"
        )


@cli.command()
@click.option("--markdown", is_flag=True, help="Print the table as markdown (the README's capability table).")
def exchanges(markdown: bool) -> None:
    """The supported exchanges and markets, and what the platform does for each (capability table)."""
    from .exchanges import capability_markdown, capability_text

    click.echo(capability_markdown() if markdown else capability_text(), nl=False)


def option_time(text: str, option: str) -> tuple[int, bool]:
    """``mdplatform._time.parse_time`` of an option's value: a mistake is a ``click.BadParameter`` naming it."""
    from ._time import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _same_symbol(wanted: str) -> object:
    """Polars filter: the lake's ``BASE-QUOTE`` symbol, given as stored or without dashes (``BTCUSDT``)."""
    import polars as pl

    plain = wanted.replace("-", "").upper()
    return (pl.col("symbol") == wanted) | (pl.col("symbol").str.replace_all("-", "").str.to_uppercase() == plain)


#: mdplatform.schemas.TIMEFRAMES, spelled out: importing it pulls in polars, and `mdp` starts without it
_TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d")

_plot_options = [
    click.option("--exchange", required=True, help="Exchange id as in the lake (binance, okx, ...)."),
    click.option("--symbol", required=True, help="Symbol as in the lake (BTC-USDT) or without dashes (BTCUSDT)."),
    click.option("--from", "start", required=True, metavar="TIME", help="Start (ISO date or time, UTC)."),
    click.option("--to", "end", required=True, metavar="TIME", help="End, exclusive (a bare date includes that day)."),
    click.option("--lake", default=None, help="Lake root (default: $MDP_LAKE or ./lake)."),
    click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG file to write."),
    click.option("--width", type=click.IntRange(min=100), default=1200, show_default=True, help="Pixels."),
    click.option("--height", type=click.IntRange(min=100), default=700, show_default=True, help="Pixels."),
]


def _with_plot_options(f: Any) -> Any:
    for option in reversed(_plot_options):
        f = option(f)
    return f


def _range(start: str, end: str) -> tuple[int, int]:
    from ._time import DAY_NS

    (lo, _), (hi, whole_day) = option_time(start, "--from"), option_time(end, "--to")
    hi += DAY_NS if whole_day else 0  # a bare date as the end means through that day
    if hi <= lo:
        raise click.BadParameter("--to must be after --from", param_hint="--to")
    return lo, hi


@cli.group()
def plot() -> None:
    """Pictures (PNG) of the materialized tables in the lake."""


@plot.command("candles")
@_with_plot_options
@click.option("--timeframe", type=click.Choice(_TIMEFRAMES), default="1m", show_default=True)
def plot_candles(
    exchange: str,
    symbol: str,
    start: str,
    end: str,
    lake: str | None,
    output: str,
    width: int,
    height: int,
    timeframe: str,
) -> None:
    """Candles opening in [--from, --to) from the hourly `candles` partitions: OHLC and volume, incomplete candles
    drawn hollow in grey."""
    import polars as pl

    from .plots import render_candles
    from .schemas import CANDLES, TIMEFRAMES
    from .transforms import HOUR_NS, ceil_ns
    from .warehouse import read_partitions

    lo, hi = _range(start, end)
    # a candle sits in the partition of the hour its close_time ends: those opening before `hi` close by hi + tf
    got = read_partitions(lake, "candles", lo, ceil_ns(hi + TIMEFRAMES[timeframe], HOUR_NS) + HOUR_NS, CANDLES)
    open_ns = pl.col("open_time").cast(pl.Int64)
    got = (
        got.filter(
            (pl.col("exchange") == exchange),
            _same_symbol(symbol),  # type: ignore[arg-type]
            pl.col("timeframe") == timeframe,
            open_ns >= lo,
            open_ns < hi,
        )
        .unique(["exchange", "symbol", "timeframe", "open_time"], keep="last", maintain_order=True)
        .sort("open_time")
    )
    if got.is_empty():
        raise click.ClickException(f"no {timeframe} candles for {exchange} {symbol} in [{start}, {end})")
    if got.get_column("symbol").n_unique() > 1:
        raise click.ClickException(f"{symbol!r} matches {sorted(set(got.get_column('symbol')))}: give one")
    png = render_candles(got, width=width, height=height)
    with open(output, "wb") as fh:
        fh.write(png)
    incomplete = got.filter(~pl.col("complete")).height
    click.echo(f"{output}: {got.height} {timeframe} candles ({incomplete} incomplete), {len(png)} bytes")


@plot.command("trade-heatmap")
@_with_plot_options
@click.option("--bucket", default=None, help="Price bucket size (default: 10 for BTC, 1 for ETH, else ~1 bp).")
def plot_trade_heatmap(
    exchange: str,
    symbol: str,
    start: str,
    end: str,
    lake: str | None,
    output: str,
    width: int,
    height: int,
    bucket: str | None,
) -> None:
    """Traded volume per price bucket per minute by taker side in [--from, --to), from the hourly `trades`
    partitions: green taker buys, red taker sells."""
    from decimal import Decimal, InvalidOperation

    import polars as pl

    from .plots import render_trade_heatmap
    from .schemas import TRADES
    from .transforms import trade_heatmap
    from .warehouse import read_partitions

    lo, hi = _range(start, end)
    size: Decimal | None = None
    if bucket is not None:
        try:
            size = Decimal(bucket)
        except InvalidOperation as exc:
            raise click.BadParameter(f"not a number: {bucket!r}", param_hint="--bucket") from exc
    got = read_partitions(lake, "trades", lo, hi, TRADES).filter(
        pl.col("exchange") == exchange,
        _same_symbol(symbol),  # type: ignore[arg-type]
    )
    if got.is_empty():
        raise click.ClickException(f"no trades for {exchange} {symbol} in [{start}, {end})")
    if got.get_column("symbol").n_unique() > 1:
        raise click.ClickException(f"{symbol!r} matches {sorted(set(got.get_column('symbol')))}: give one")
    try:
        heatmap = trade_heatmap(got, size, start_ns=lo, end_ns=hi)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--bucket") from exc
    if heatmap.is_empty():
        raise click.ClickException(f"no trades for {exchange} {symbol} in [{start}, {end})")
    png = render_trade_heatmap(heatmap, width=width, height=height)
    with open(output, "wb") as fh:
        fh.write(png)
    click.echo(
        f"{output}: {heatmap.get_column('minute').n_unique()} minutes, {heatmap.height} buckets of "
        f"{heatmap.get_column('bucket_size')[0].normalize():f}, {len(png)} bytes"
    )


def _consolidated_base(symbol: str) -> str:
    """The base asset of a consolidated book named as stored (BTC-USD*), without dashes (BTCUSD*) or bare (BTC)."""
    from .transforms import USD_LIKE

    plain = symbol.upper().rstrip("*")
    if "-" in plain:
        return plain.split("-")[0]
    for quote in sorted(USD_LIKE, key=len, reverse=True):
        if plain.endswith(quote) and len(plain) > len(quote):
            return plain.removesuffix(quote)
    return plain


@plot.command("heatmap")
@_with_plot_options
@click.option("--step", type=click.Choice(["1s", "1m"]), default=None, help="Default: 1s up to 2 hours, else 1m.")
@click.option("--trades/--no-trades", "with_trades", default=True, show_default=True, help="Overlay the trades.")
def plot_heatmap(
    exchange: str,
    symbol: str,
    start: str,
    end: str,
    lake: str | None,
    output: str,
    width: int,
    height: int,
    step: str | None,
    with_trades: bool,
) -> None:
    """Resting book per price bucket in [--from, --to) from the hourly `book_heatmap` partitions: bids in blues,
    asks in oranges, with the mid (`book_snapshots`), the spans the book was invalid (`book_invalid`, grey) and
    the trades. --exchange '*' draws the consolidated book of a base (--symbol BTC, BTC-USD* ...) with the spot
    trades of every venue quoting it in a USD-like currency."""
    import polars as pl

    from .book import BOOK_HEATMAP, CONSOLIDATED, invalid_schema, samples_schema, spot_base
    from .plots import render_book_heatmap
    from .plots._book_heatmap import pick_step
    from .schemas import TRADES
    from .transforms import USD_LIKE
    from .warehouse import read_partitions

    lo, hi = _range(start, end)
    t = pl.col("ts").dt.epoch("ns")
    consolidated = exchange == CONSOLIDATED
    base = _consolidated_base(symbol) if consolidated else ""
    which: Any = pl.col("symbol") == f"{base}-USD*" if consolidated else _same_symbol(symbol)
    rows = read_partitions(lake, "book_heatmap", lo, hi, BOOK_HEATMAP).filter(
        pl.col("exchange") == exchange, which, t >= lo, t < hi
    )
    if rows.is_empty():
        raise click.ClickException(
            f"no book heatmap for {exchange} {symbol} between {start} and {end}: materialize book_heatmap first "
            f"(mdp materialize --from {start} --to {end})"
        )
    if rows.get_column("symbol").n_unique() > 1:
        raise click.ClickException(f"{symbol!r} matches {sorted(set(rows.get_column('symbol')))}: give one")
    if step is not None:
        rows = rows.filter(pl.col("step") == step)
        if rows.is_empty():
            raise click.ClickException(f"no {step} book heatmap for {exchange} {symbol} between {start} and {end}")
    stored = str(rows.get_column("symbol")[0])
    drawn = step or pick_step(rows)

    def of_base(df: pl.DataFrame) -> pl.Expr:
        # the spot books of the consolidated base (as consolidate_heatmap picks them), looked up once per symbol
        return pl.col("symbol").is_in([s for s in set(df.get_column("symbol")) if spot_base(s, USD_LIKE) == base])

    snapshots = read_partitions(lake, "book_snapshots", lo, hi, samples_schema())
    invalid: pl.DataFrame | None = None
    if consolidated:
        # the consolidated mid: the best bid and ask across the spot books of the base at each sample
        samples = (
            snapshots.filter(of_base(snapshots))
            .group_by("ts")
            .agg(pl.col("bid_price").max(), pl.col("ask_price").min())
            .with_columns(mid=(pl.col("bid_price") + pl.col("ask_price")) / 2)
            .filter(pl.col("bid_price") < pl.col("ask_price"))  # a crossed consolidated book has no mid
            .sort("ts")
        )
    else:
        samples = snapshots.filter(pl.col("exchange") == exchange, pl.col("symbol") == stored)
        # an interval overlapping the window may sit in an earlier partition: read from an hour before
        invalid = read_partitions(lake, "book_invalid", lo - 3_600 * 10**9, hi, invalid_schema()).filter(
            pl.col("exchange") == exchange, pl.col("symbol") == stored
        )
    trades: pl.DataFrame | None = None
    if with_trades:
        trades = read_partitions(lake, "trades", lo, hi, TRADES)
        if consolidated:
            trades = trades.filter(of_base(trades))
        else:
            trades = trades.filter(pl.col("exchange") == exchange, pl.col("symbol") == stored)
    png = render_book_heatmap(
        rows, trades=trades, samples=samples, invalid=invalid, step=drawn, width=width, height=height
    )
    with open(output, "wb") as fh:
        fh.write(png)
    n_trades = trades.height if trades is not None else 0
    steps = rows.filter(pl.col("step") == drawn).get_column("ts").n_unique()
    click.echo(
        f"{output}: {exchange} {stored}, {steps} {drawn} steps, "
        f"{samples.height} book samples, {n_trades} trades, {len(png)} bytes"
    )


def main() -> None:
    """``mdp``: a mistake of the user's (a bad option, file, lake path or setting) ends in one line on stderr and a
    non-zero exit; any other exception is a bug and keeps its traceback."""
    import sys

    from ._private import private_files

    try:
        private_files()  # the lake, journal and status files this run creates are the user's alone
        code = cli.main(prog_name="mdp", standalone_mode=False)
    except click.UsageError as exc:  # click's own shows the usage and a hint on three more lines
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _fail(f"{exc.format_message()}{where}", exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.Abort:  # Ctrl-C or end of input where the command does not stop by itself, as click says it
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except Exception as exc:
        line = _user_error(exc)
        if line is None:  # a bug (or `mdp -v`): the traceback
            raise
        _fail(line, 1)
    _exit(code if isinstance(code, int) else 0)


def _exit(code: int) -> NoReturn:
    """End the process with ``code`` once the exit handlers ran and stdout and stderr are flushed, without the
    interpreter's teardown: after a command that ran Dagster, polars and GX it frees millions of objects one by one
    (1.6 s of CPU after ``mdp materialize`` of a day had printed its summary), and every file the platform writes is
    closed (atomically renamed into place) before a command returns. With a thread still running that Python would
    wait for, Python's own exit instead."""
    import atexit
    import os
    import sys
    import threading

    main = threading.main_thread()
    if any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _user_error(exc: Exception) -> str | None:
    """The line to show for a user's mistake; None for a bug, and for anything with ``mdp -v``."""
    from ._errors import UserError

    if logging.getLogger().getEffectiveLevel() < logging.WARNING:  # what `-v` set in `cli`
        return None
    if isinstance(exc, UserError):
        return str(exc)
    # a path the user gave (--lake, MDP_LAKE, a file) that cannot be used as one: the line names it and, where a
    # file stands in for a folder, the file
    paths = FileNotFoundError | FileExistsError | NotADirectoryError | IsADirectoryError | PermissionError
    if isinstance(exc, paths) and exc.filename:
        return f"{exc.strerror}: {exc.filename}{_file_in_the_way(str(exc.filename))} (mdp -v shows the traceback)"
    return None


def _file_in_the_way(path: str) -> str:
    """ " (X is a file)" where the deepest existing part X of ``path`` (itself included) is a file: a folder was
    expected there (a lake root, one of its tables)."""
    import os

    part = path
    while part and part != os.path.dirname(part):
        if os.path.exists(part):
            return f" ({part} is a file)" if not os.path.isdir(part) else ""
        part = os.path.dirname(part)
    return ""


def _fail(message: str, code: int) -> NoReturn:
    import sys

    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
