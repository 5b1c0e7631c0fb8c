"""The book assets: ``book_snapshots``, ``book_heatmap``, ``trade_heatmap`` and ``consolidated_book``, one step
(one rebuild pass over the raw hour feeds them all) with the checks of the first two. Hourly, single-run
backfills, in the ``mdp_warehouse`` pool like the other assets; each hour's work is a function of ``_books`` and
each heatmap hour's pictures are shown in the UI (PNG in markdown) and kept beside the partition file."""

# no `from __future__ import annotations`: Dagster inspects the real annotation of `context`
import base64
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
from dagster import (
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

from ._assets import BACKFILL_POLICY, COVERAGE_KEY, POOL, TRADES_KEY, _each_hour, _hour_log, _path, _total
from ._books import (
    BooksHour,
    materialize_books_hour,
    materialize_consolidated_hour,
    materialize_trade_heatmap_hour,
    picture_path,
    write_picture,
)
from ._hourly import hour_text
from ._resources import MdpResource
from ._settings import Settings
from .partitions import HOURLY, hour_key, previous_hour

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

#: pictures embedded in one materialization's metadata (every one is written beside the partition file)
SHOWN = 3


def _png_markdown(pictures: list[tuple[str, bytes]], settings: Settings) -> MetadataValue:
    parts = [
        f"**{name}**\n\n![{name}](data:image/png;base64,{base64.b64encode(png).decode()})"
        for name, png in pictures[:SHOWN]
    ]
    if parts:
        return MetadataValue.md("\n\n".join(parts))
    return MetadataValue.md("pictures are off (MDP_PICTURES=0)" if not settings.draw else "nothing to draw this hour")


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
        "Pictures (time x price, trades overlaid) in the metadata and beside the partition. Lake: book_heatmap/; "
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
    CONSOLIDATED_BOOK_KEY: [COVERAGE_KEY],  # and this step's book_snapshots, computed just before it
}


@dataclass(frozen=True, slots=True)
class _Hour:
    """What the run's metadata says of one hour (its frames are not kept: a range may be long)."""

    hour: int
    samples: int
    books: list[str]
    continued: int
    invalid_spans: int
    invalid_seconds: dict[str, float]
    paths: dict[str, str]
    heatmap_rows: int
    heatmap_by_step: dict[str, int]
    left_out: list[str]
    trade_heatmap_rows: int
    trades_read: int
    trade_heatmap_path: str
    consolidated_rows: int
    consolidated_by_count: dict[str, int]
    crossed: int
    consolidated_path: str
    deleted: int
    snapshot_problems: list[str]
    heatmap_problems: list[str]


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
        AssetSpec(key, group_name="order_books", kinds={"polars", "parquet", "duckdb"}, deps=_DEPS[key], description=d)
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
)
def books(context: AssetExecutionContext, mdp: MdpResource) -> Iterator[MaterializeResult[None] | AssetCheckResult]:
    """One step for the four book assets and their checks: the rebuild feeds them all, and every step of a run
    costs Dagster's bookkeeping (a fraction of a second each, per hour)."""
    settings = mdp.settings()
    warehouse = Warehouse(settings.warehouse_path, lake=settings.root)

    log = _hour_log(context)
    #: the last hour's pictures, shown in the metadata (every hour's are written beside its partition files)
    shown: dict[str, list[tuple[str, bytes]]] = {"book": [], "trade": []}

    def hour_done(hour: int) -> _Hour:
        done = materialize_books_hour(settings, hour, warehouse)
        heat, trades, heat_path, heat_deleted = materialize_trade_heatmap_hour(settings, hour, warehouse)
        cons, cons_path, cons_deleted = materialize_consolidated_hour(settings, hour, done.samples, warehouse)
        log(
            f"{hour_text(hour)}: {done.samples.height} samples of {len(done.books)} books "
            f"({done.continued} continued from the previous hour), {done.invalid.height} invalid spans, "
            f"{done.heatmap.height} book heatmap rows, {heat.height} trade heatmap rows, {cons.height} "
            "consolidated steps"
        )
        if done.left_out:
            context.log.warning(f"left out of the consolidated heatmap (bucket does not nest): {done.left_out}")
        if settings.draw:
            shown["book"] = _book_pictures(settings, done)
            shown["trade"] = _trade_pictures(settings, hour, heat)
        end = hour + HOUR_NS
        return _Hour(
            hour=hour,
            samples=done.samples.height,
            books=done.books,
            continued=done.continued,
            invalid_spans=done.invalid.height,
            invalid_seconds=done.invalid_seconds,
            paths=done.paths,
            heatmap_rows=done.heatmap.height,
            heatmap_by_step=dict(done.heatmap.group_by("step").len().sort("step").iter_rows()),
            left_out=done.left_out,
            trade_heatmap_rows=heat.height,
            trades_read=trades.height,
            trade_heatmap_path=heat_path,
            consolidated_rows=cons.height,
            consolidated_by_count={
                str(k): v for k, v in cons.group_by("exchange_count").len().sort("exchange_count").iter_rows()
            },
            crossed=int(cons["crossed"].sum()),
            consolidated_path=cons_path,
            deleted=done.sink_rows_replaced + heat_deleted + cons_deleted,
            snapshot_problems=validate_book_snapshots(done.samples, hour, end, done.invalid),
            heatmap_problems=validate_book_heatmap(done.heatmap, hour, end),
        )

    hours = list(_each_hour(context, "book snapshots, heatmaps and the consolidated book", hour_done).values())
    last = hours[-1].hour
    yield MaterializeResult(
        asset_key=BOOK_SNAPSHOTS_KEY,
        metadata={
            "dagster/row_count": sum(h.samples for h in hours),
            "hours": len(hours),
            "books": MetadataValue.json(sorted({b for h in hours for b in h.books})),
            "continued_from_checkpoint": sum(h.continued for h in hours),
            "invalid_spans": sum(h.invalid_spans for h in hours),
            "invalid_seconds_by_book": MetadataValue.json(_total(h.invalid_seconds for h in hours)),
            "path": _path([h.paths["book_snapshots"] for h in hours]),
            "pg_rows_replaced": sum(h.deleted for h in hours),
            "by_hour": MetadataValue.json(
                {hour_key(h.hour): {"samples": h.samples, "invalid_spans": h.invalid_spans} for h in hours}
            ),
        },
    )
    yield MaterializeResult(
        asset_key=BOOK_HEATMAP_KEY,
        metadata={
            "dagster/row_count": sum(h.heatmap_rows for h in hours),
            "hours": len(hours),
            "rows_by_step": MetadataValue.json(_total(h.heatmap_by_step for h in hours)),
            "left_out_of_consolidated": MetadataValue.json(sorted({b for h in hours for b in h.left_out})),
            "path": _path([h.paths["book_heatmap"] for h in hours]),
            f"pictures ({hour_key(last)})": _png_markdown(shown["book"], settings),
            "picture_files": MetadataValue.json(
                [picture_path(settings, "book_heatmap", last, name) for name, _ in shown["book"]]
            ),
        },
    )
    yield MaterializeResult(
        asset_key=TRADE_HEATMAP_KEY,
        metadata={
            "dagster/row_count": sum(h.trade_heatmap_rows for h in hours),
            "hours": len(hours),
            "trades_read": sum(h.trades_read for h in hours),
            "path": _path([h.trade_heatmap_path for h in hours]),
            f"pictures ({hour_key(last)})": _png_markdown(shown["trade"], settings),
        },
    )
    yield MaterializeResult(
        asset_key=CONSOLIDATED_BOOK_KEY,
        metadata={
            "dagster/row_count": sum(h.consolidated_rows for h in hours),
            "hours": len(hours),
            "steps_by_exchange_count": MetadataValue.json(_total(h.consolidated_by_count for h in hours)),
            "crossed_steps": sum(h.crossed for h in hours),
            "path": _path([h.consolidated_path for h in hours]),
        },
    )
    yield _check(BOOK_SNAPSHOTS_KEY, "book_snapshots_valid", hours, [h.snapshot_problems for h in hours])
    yield _check(BOOK_HEATMAP_KEY, "book_heatmap_valid", hours, [h.heatmap_problems for h in hours])


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
