"""The book assets: ``book_snapshots``, ``book_heatmap``, ``trade_heatmap`` and ``consolidated_book``, one step
(one rebuild pass over the raw hour feeds the first two and the consolidated book) with the checks of the first two.
The step can be subset: a UI selection or a backfill's run may hold any of the four, and stores only those.
Hourly, single-run backfills, in the ``mdp_warehouse`` pool like the other assets; each hour's work is a function
of ``_books``; the heatmaps' pictures are kept under ``<lake>/pictures/`` and shown in the UI (``_pictures``)."""

# no `from __future__ import annotations`: Dagster inspects the real annotation of `context`
from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from mdplatform.book import CONSOLIDATED
from mdplatform.schemas import TRADES
from mdplatform.transforms import HOUR_NS, USD_LIKE, validate_book_heatmap, validate_book_snapshots
from mdplatform.warehouse import Warehouse, partition_path, read_partition

from ._assets import BACKFILL_POLICY, COVERAGE_KEY, POOL, TRADES_KEY, _each_hour, _hour_log, hour_results
from ._books import (
    BooksHour,
    materialize_books_hour,
    materialize_consolidated_hour,
    materialize_trade_heatmap_hour,
    picture_path,
    stored_samples,
    write_picture,
)
from ._columns import table_metadata
from ._hourly import hour_text
from ._pictures import picture_files_metadata, picture_metadata
from ._resources import MdpResource
from ._settings import Settings
from .partitions import HOURLY, previous_hour

__all__ = [
    "BOOK_HEATMAP_KEY",
    "BOOK_SNAPSHOTS_KEY",
    "CONSOLIDATED_BOOK_KEY",
    "TRADE_HEATMAP_KEY",
    "books",
]

BOOK_SNAPSHOTS_KEY = AssetKey("book_snapshots")
BOOK_HEATMAP_KEY = AssetKey("book_heatmap")
TRADE_HEATMAP_KEY = AssetKey("trade_heatmap")
CONSOLIDATED_BOOK_KEY = AssetKey("consolidated_book")


def _trades_of(trades: pl.DataFrame | None, exchange: str, symbol: str) -> pl.DataFrame | None:
    """The trades drawn over a book's heatmap: the book's own, or for a consolidated one every spot book of the
    base quoted in a USD-like currency."""
    if trades is None:
        return None
    if exchange != CONSOLIDATED:
        return trades.filter(pl.col("exchange") == exchange, pl.col("symbol") == symbol)
    base = symbol.split("-")[0]
    quotes = pl.col("symbol").str.split("-")
    return trades.filter(quotes.list.len() == 2, quotes.list.get(0) == base, quotes.list.get(1).is_in(list(USD_LIKE)))


def _book_pictures(settings: Settings, done: BooksHour) -> list[tuple[str, bytes]]:
    """One picture per consolidated base (first) and per book of the hour, written beside the heatmap partition.
    A base with a single book has no consolidated picture: it would be that book's again (a second of drawing)."""
    from mdplatform.plots import render_book_heatmap

    trades = read_partition(partition_path(settings.root, "trades", done.hour), TRADES)
    fine = done.heatmap.filter(pl.col("step") == "1s")
    alone = set(
        fine.filter(pl.col("exchange") == CONSOLIDATED)
        .group_by("symbol")
        .agg(pl.col("exchange_count").max())
        .filter(pl.col("exchange_count") == 1)
        .get_column("symbol")
        .to_list()
    )
    keys = fine.select("exchange", "symbol").unique().filter(~pl.col("symbol").is_in(list(alone)))
    ordered = sorted(keys.iter_rows(), key=lambda k: (k[0] != CONSOLIDATED, k))
    out: list[tuple[str, bytes]] = []
    for exchange, symbol in ordered:
        heat = done.heatmap.filter(pl.col("exchange") == exchange, pl.col("symbol") == symbol)
        is_book = exchange != CONSOLIDATED
        mine = (pl.col("exchange") == exchange) & (pl.col("symbol") == symbol)
        png = render_book_heatmap(
            heat,
            trades=_trades_of(trades, exchange, symbol),
            samples=done.samples.filter(mine) if is_book else None,
            invalid=done.invalid.filter(mine) if is_book else None,
            title=f"{'consolidated' if not is_book else exchange} {symbol} book, {hour_text(done.hour)}",
        )
        name = f"{'consolidated' if not is_book else exchange}_{symbol.replace('*', '')}"
        write_picture(picture_path(settings, "book_heatmap", done.hour, name), png)
        out.append((name, png))
    return out


_DESCRIPTIONS = {
    BOOK_SNAPSHOTS_KEY: (
        "Every (exchange, symbol) order book rebuilt from the raw layer under the exchange's sync rules, sampled "
        "every second of exchange time while valid: best levels, mid, spread, microprice, depth and imbalance "
        "within 10/25/50/100 bp, top 25 levels. Spans with no valid book (no snapshot yet, gap, checksum, silent, "
        "coverage gaps) have no sample and are in book_invalid. Lake: book_snapshots/, book_invalid/, "
        "book_checkpoints/; DuckDB: book_snapshots, book_invalid."
    ),
    BOOK_HEATMAP_KEY: (
        "Resting size per price bucket and side per second and per minute (mean over the valid seconds), per book "
        "and consolidated per base across spot books quoted in USD/USDT/USDC... (exchange '*', exchange_count). "
        "Pictures (time x price, trades overlaid) in the metadata and under pictures/. Lake: book_heatmap/; "
        "DuckDB: book_heatmap."
    ),
    TRADE_HEATMAP_KEY: (
        "Traded volume per price bucket per minute by taker side (a volume profile over time), exact decimals; "
        "buckets as the book heatmap's. Pictures in the metadata. Lake: trade_heatmap/; DuckDB: trade_heatmap."
    ),
    CONSOLIDATED_BOOK_KEY: (
        "Per base asset and second: best bid/ask across the spot books quoted in USD-like currencies (with the "
        "exchange that has it), summed depth bands and imbalance, the books that contributed and how stale each "
        "was (ms). Lake: consolidated_book/; DuckDB: consolidated_book."
    ),
}
_DEPS = {
    # the previous hour's end state (its checkpoints): the rebuild continues from it, never replays
    BOOK_SNAPSHOTS_KEY: [COVERAGE_KEY, previous_hour(BOOK_SNAPSHOTS_KEY)],
    BOOK_HEATMAP_KEY: [COVERAGE_KEY, TRADES_KEY],
    TRADE_HEATMAP_KEY: [TRADES_KEY],
    # computed from the same step's samples when it rebuilds the books, else from the stored snapshots
    CONSOLIDATED_BOOK_KEY: [BOOK_SNAPSHOTS_KEY],
}


@dataclass(slots=True)
class _Hour:
    """What the run's metadata says of one hour (its frames are not kept: a range may be long); the parts the run
    did not select stay empty."""

    hour: int
    samples: int = 0
    books: list[str] = field(default_factory=list)
    continued: int = 0
    invalid_spans: int = 0
    invalid_seconds: dict[str, float] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    books_replaced: int = 0
    heatmap_rows: int = 0
    heatmap_by_step: dict[str, int] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)
    trade_heatmap_rows: int = 0
    trades_read: int = 0
    trade_heatmap_path: str = ""
    trade_heatmap_replaced: int = 0
    consolidated_rows: int = 0
    consolidated_by_count: dict[str, int] = field(default_factory=dict)
    crossed: int = 0
    consolidated_path: str = ""
    consolidated_replaced: int = 0
    snapshot_problems: list[str] = field(default_factory=list)
    heatmap_problems: list[str] = field(default_factory=list)
    #: the names of the hour's pictures, per heatmap table (each written beside its partition files)
    pictures: dict[str, list[str]] = field(default_factory=dict)


def _check(key: AssetKey, name: str, hours: list[_Hour], problems: list[list[str]]) -> AssetCheckResult:
    """One check over the run's hours (a problem names its hour when the run has several)."""
    found = [
        f"{hour_text(h.hour)}: {p}" if len(hours) > 1 else p for h, ps in zip(hours, problems, strict=True) for p in ps
    ]
    return AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=not found,
        severity=AssetCheckSeverity.ERROR,
        metadata={"problems": MetadataValue.json(found)},
        description="; ".join(found) if found else None,
    )


@multi_asset(
    specs=[
        AssetSpec(
            key,
            group_name="order_books",
            kinds={"polars", "parquet", "duckdb"},
            deps=_DEPS[key],
            description=d,
            metadata=table_metadata(key.path[-1]),
        )
        for key, d in _DESCRIPTIONS.items()
    ],
    check_specs=[
        AssetCheckSpec(
            "book_snapshots_valid",
            asset=BOOK_SNAPSHOTS_KEY,
            description=(
                "schema, never crossed or empty at the top, top level = best level, book_ts <= ts, imbalances in "
                "[-1, 1], one sample per book and second, none inside a span of book_invalid"
            ),
        ),
        AssetCheckSpec(
            "book_heatmap_valid",
            asset=BOOK_HEATMAP_KEY,
            description="schema, sizes > 0, intensity in (0, 1] peaking at 1 per step, exact bucket edges, counts >= 1",
        ),
    ],
    partitions_def=HOURLY,
    backfill_policy=BACKFILL_POLICY,
    pool=POOL,
    # any of the four can be materialized alone (the UI's selection, a backfill whose daemon requests them in
    # different runs): Dagster requires the keys of a multi-asset that cannot be subset to be targeted with equal
    # partition subsets, which its own backfill planning does not always produce for assets of different parents
    can_subset=True,
)
def books(context: AssetExecutionContext, mdp: MdpResource) -> Iterator[MaterializeResult[None] | AssetCheckResult]:
    """One step for the selected book assets and their checks: one rebuild feeds the snapshots and the book heatmap
    (and the consolidated book, which otherwise reads the stored snapshots); the trade heatmap reads the trades.
    Every step of a run costs Dagster's bookkeeping (a fraction of a second each, per hour)."""
    settings = mdp.settings()
    warehouse = Warehouse(settings.warehouse_path, lake=settings.root)
    selected = context.selected_asset_keys
    rebuilt = tuple(k.path[-1] for k in (BOOK_SNAPSHOTS_KEY, BOOK_HEATMAP_KEY) if k in selected)

    log = _hour_log(context)
    #: the last hour's pictures, shown in its metadata (every hour's are written beside its partition files)
    shown: dict[str, list[tuple[str, bytes]]] = {"book_heatmap": [], "trade_heatmap": []}

    def hour_done(hour: int) -> _Hour:
        out = _Hour(hour)
        said = []
        samples = None
        end = hour + HOUR_NS
        if rebuilt:
            done = materialize_books_hour(settings, hour, warehouse, tables=rebuilt)
            samples = done.samples
            out.samples, out.books, out.continued = done.samples.height, done.books, done.continued
            out.invalid_spans, out.invalid_seconds = done.invalid.height, done.invalid_seconds
            out.paths, out.books_replaced = done.paths, done.sink_rows_replaced
            out.heatmap_rows, out.left_out = done.heatmap.height, done.left_out
            out.heatmap_by_step = dict(done.heatmap.group_by("step").len().sort("step").iter_rows())
            out.snapshot_problems = validate_book_snapshots(done.samples, hour, end, done.invalid)
            out.heatmap_problems = validate_book_heatmap(done.heatmap, hour, end)
            said.append(
                f"{done.samples.height} samples of {len(done.books)} books ({done.continued} continued from the "
                f"previous hour), {done.invalid.height} invalid spans, {done.heatmap.height} book heatmap rows"
            )
            if done.left_out:
                context.log.warning(f"left out of the consolidated heatmap (bucket does not nest): {done.left_out}")
            if settings.draw and BOOK_HEATMAP_KEY in selected:
                shown["book_heatmap"] = _book_pictures(settings, done)
                out.pictures["book_heatmap"] = [name for name, _ in shown["book_heatmap"]]
        if TRADE_HEATMAP_KEY in selected:
            heat, trades, out.trade_heatmap_path, out.trade_heatmap_replaced = materialize_trade_heatmap_hour(
                settings, hour, warehouse
            )
            out.trade_heatmap_rows, out.trades_read = heat.height, trades.height
            said.append(f"{heat.height} trade heatmap rows")
            if settings.draw:
                shown["trade_heatmap"] = _trade_pictures(settings, hour, heat)
                out.pictures["trade_heatmap"] = [name for name, _ in shown["trade_heatmap"]]
        if CONSOLIDATED_BOOK_KEY in selected:
            cons, out.consolidated_path, out.consolidated_replaced = materialize_consolidated_hour(
                settings, hour, samples if samples is not None else stored_samples(settings, hour), warehouse
            )
            out.consolidated_rows, out.crossed = cons.height, int(cons["crossed"].sum())
            out.consolidated_by_count = {
                str(k): v for k, v in cons.group_by("exchange_count").len().sort("exchange_count").iter_rows()
            }
            said.append(f"{cons.height} consolidated steps")
        log(f"{hour_text(hour)}: " + ", ".join(said))
        return out

    what = ", ".join(k.path[-1].replace("_", " ") for k in sorted(selected))
    done = _each_hour(context, what, hour_done)
    hours = list(done.values())
    last = hours[-1].hour

    def pictures(table: str, h: _Hour) -> dict[str, MetadataValue]:
        if h.hour == last:
            return picture_metadata(settings, table, h.hour, shown[table])
        return picture_files_metadata(settings, table, h.hour, h.pictures.get(table, []))

    if BOOK_SNAPSHOTS_KEY in selected:
        yield hour_results(
            context,
            BOOK_SNAPSHOTS_KEY,
            {
                hour: {
                    "dagster/row_count": h.samples,
                    "books": MetadataValue.json(sorted(h.books)),
                    "continued_from_checkpoint": h.continued,
                    "invalid_spans": h.invalid_spans,
                    "invalid_seconds_by_book": MetadataValue.json(h.invalid_seconds),
                    "path": MetadataValue.path(h.paths["book_snapshots"]),
                    "pg_rows_replaced": h.books_replaced,
                }
                for hour, h in done.items()
            },
        )
    if BOOK_HEATMAP_KEY in selected:
        yield hour_results(
            context,
            BOOK_HEATMAP_KEY,
            {
                hour: {
                    "dagster/row_count": h.heatmap_rows,
                    "rows_by_step": MetadataValue.json(h.heatmap_by_step),
                    "left_out_of_consolidated": MetadataValue.json(sorted(h.left_out)),
                    "path": MetadataValue.path(h.paths["book_heatmap"]),
                    **pictures("book_heatmap", h),
                }
                for hour, h in done.items()
            },
        )
    if TRADE_HEATMAP_KEY in selected:
        yield hour_results(
            context,
            TRADE_HEATMAP_KEY,
            {
                hour: {
                    "dagster/row_count": h.trade_heatmap_rows,
                    "trades_read": h.trades_read,
                    "path": MetadataValue.path(h.trade_heatmap_path),
                    "pg_rows_replaced": h.trade_heatmap_replaced,
                    **pictures("trade_heatmap", h),
                }
                for hour, h in done.items()
            },
        )
    if CONSOLIDATED_BOOK_KEY in selected:
        yield hour_results(
            context,
            CONSOLIDATED_BOOK_KEY,
            {
                hour: {
                    "dagster/row_count": h.consolidated_rows,
                    "steps_by_exchange_count": MetadataValue.json(h.consolidated_by_count),
                    "crossed_steps": h.crossed,
                    "path": MetadataValue.path(h.consolidated_path),
                    "pg_rows_replaced": h.consolidated_replaced,
                }
                for hour, h in done.items()
            },
        )
    checks = context.selected_asset_check_keys
    for key, name, problems in (
        (BOOK_SNAPSHOTS_KEY, "book_snapshots_valid", [h.snapshot_problems for h in hours]),
        (BOOK_HEATMAP_KEY, "book_heatmap_valid", [h.heatmap_problems for h in hours]),
    ):
        if key in selected and AssetCheckKey(key, name) in checks:
            yield _check(key, name, hours, problems)


def _trade_pictures(settings: Settings, hour: int, heat: pl.DataFrame) -> list[tuple[str, bytes]]:
    """One trade heatmap picture per book of the hour, written beside the partition file."""
    from mdplatform.plots import render_trade_heatmap

    out: list[tuple[str, bytes]] = []
    for exchange, symbol in sorted(heat.select("exchange", "symbol").unique().iter_rows()):
        png = render_trade_heatmap(
            heat.filter(pl.col("exchange") == exchange, pl.col("symbol") == symbol),
            title=f"{exchange} {symbol} trades, {hour_text(hour)}",
        )
        name = f"{exchange}_{symbol}"
        write_picture(picture_path(settings, "trade_heatmap", hour, name), png)
        out.append((name, png))
    return out
