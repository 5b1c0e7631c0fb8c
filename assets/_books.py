"""The work of one hour partition for the book assets, as plain functions (the Dagster assets wrap these).

``materialize_books_hour``: every (exchange, symbol) book in the raw layer rebuilt over the exchange-time hour from
the previous hour's checkpoint (``book_checkpoints``), sampled every ``Settings.book_interval_ns``, with the hour's
coverage gaps of its book channels as invalid spans; book heatmaps per book and consolidated per base, 1 s and 1 m.
``materialize_consolidated_hour``: the consolidated book from the hour's samples. ``materialize_trade_heatmap_hour``:
the trade heatmap from the hour's trades. Each loads the hour into PostgreSQL when configured, then writes its
lake partitions.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from decimal import Decimal

import polars as pl

from mdplatform.book import (
    BOOK_HEATMAP,
    CONSOLIDATED_BOOK,
    BookCheckpoint,
    BookHeatmapSpec,
    BookSamples,
    book_channels,
    book_samples,
    consolidate_heatmap,
    consolidated_book,
    invalid_schema,
    lake_book_rows,
    rollup_heatmap,
    samples_schema,
)
from mdplatform.exchanges import book_venues
from mdplatform.lake import filesystem, join, list_exchanges
from mdplatform.schemas import COVERAGE, TRADES
from mdplatform.transforms import GAP_STATUS, HOUR_NS, MINUTE_NS, USD_LIKE, trade_heatmap
from mdplatform.transforms import HEATMAP as TRADE_HEATMAP
from mdplatform.warehouse import Warehouse, hour_window, partition_path, read_partition, write_partition

from ._hourly import MissingUpstreamError, hour_text
from ._settings import Settings
from ._sinks import load_sinks

__all__ = [
    "BOOK_TABLES",
    "BooksHour",
    "materialize_books_hour",
    "materialize_consolidated_hour",
    "materialize_trade_heatmap_hour",
    "picture_path",
    "stored_samples",
]

CHECKPOINTS = "book_checkpoints"
#: what one rebuild of an hour's books feeds: the snapshots (with their invalid spans and end-of-hour checkpoints)
#: and the book heatmap
BOOK_TABLES = ("book_snapshots", "book_heatmap")
_CHECKPOINT_SCHEMA: dict[str, pl.DataType] = {"exchange": pl.String(), "symbol": pl.String(), "state": pl.String()}


def _rebuildable() -> dict[str, frozenset[str]]:
    """exchange id -> the raw channels its book builder reads, for exchanges that have one."""
    return {xid: book_channels(exchange) for xid, exchange in book_venues().items()}


def _checkpoints(settings: Settings, hour: int) -> dict[tuple[str, str], BookCheckpoint]:
    """The books' states at the end of the previous hour, if it was materialized."""
    df = read_partition(partition_path(settings.root, CHECKPOINTS, hour - HOUR_NS), _CHECKPOINT_SCHEMA)
    if df is None:
        return {}
    return {(x, s): BookCheckpoint.from_json(j) for x, s, j in df.iter_rows()}


def _gaps(coverage: pl.DataFrame, exchange: str, symbol: str, channels: frozenset[str]) -> list[tuple[int, int, str]]:
    """The coverage gaps of a book's channels (normalized symbol) as (start ns, end ns, reason)."""
    rows = coverage.filter(
        pl.col("status") == GAP_STATUS,
        pl.col("exchange") == exchange,
        pl.col("symbol") == symbol,
        pl.col("channel").is_in(list(channels)),
    ).select(pl.col("start_time", "end_time").dt.epoch("ns"), pl.col("reason").fill_null("gap"))
    return [(int(a), int(b), str(r)) for a, b, r in rows.iter_rows()]


def _spec(settings: Settings, symbol: str) -> Callable[[float], BookHeatmapSpec]:
    """The heatmap spec of a book (normalized symbol), its bucket resolved at the first mid (~1 bp rules)."""
    buckets, reach = settings.buckets, settings.range_bps

    def resolve(mid: float) -> BookHeatmapSpec:
        return BookHeatmapSpec(buckets.size_for(symbol, Decimal(repr(mid))), reach)

    return resolve


@dataclass(frozen=True, slots=True)
class BooksHour:
    hour: int
    samples: pl.DataFrame
    invalid: pl.DataFrame
    heatmap: pl.DataFrame
    books: list[str]
    #: books whose bucket did not nest in their base's consolidated bucket (left out of it)
    left_out: list[str]
    paths: dict[str, str]
    sink_rows_replaced: int
    continued: int
    invalid_seconds: dict[str, float] = field(default_factory=dict)


def materialize_books_hour(
    settings: Settings, hour: int, warehouse: Warehouse | None = None, *, tables: Collection[str] = BOOK_TABLES
) -> BooksHour:
    """Book snapshots, invalid spans and heatmaps of every book over the exchange-time hour (module doc), the
    checkpoints at its end; loaded into PostgreSQL when configured, then written to the lake (replacing the hour).

    ``tables``: which of ``BOOK_TABLES`` are stored (a run of the Dagster UI may select one of the two assets; the
    other's partition is left as it is): ``book_snapshots`` stores the samples, the invalid spans and the
    checkpoints, ``book_heatmap`` the heatmap. The returned frames are all computed whatever is stored."""
    unknown = set(tables) - set(BOOK_TABLES)
    if unknown:
        raise ValueError(f"not a table of the book rebuild: {sorted(unknown)}")
    snapshots, heatmaps = "book_snapshots" in tables, "book_heatmap" in tables
    end = hour + HOUR_NS
    coverage = read_partition(partition_path(settings.root, "coverage", hour), COVERAGE)
    if coverage is None:
        raise MissingUpstreamError(f"the coverage partition for {hour_text(hour)} is not materialized")
    channels = _rebuildable()
    before = _checkpoints(settings, hour)
    results: list[BookSamples] = []
    for xid in (x for x in list_exchanges(settings.root) if x in channels):
        # the hour's book frames of the exchange, read once for all its symbols
        exchange = book_venues()[xid]
        rows = lake_book_rows(settings.root, exchange, hour, end, lateness_ns=settings.lateness_ns)
        for symbol in sorted(s for s in rows.get_column("symbol").unique().to_list() if s):
            normalized = exchange.normalize_symbol(symbol)
            results.append(
                book_samples(
                    rows.filter(pl.col("symbol") == symbol),
                    exchange,
                    symbol,
                    start_ns=hour,
                    end_ns=end,
                    checkpoint=before.get((xid, symbol)),
                    interval_ns=settings.book_interval_ns,
                    top_n=settings.top_n,
                    # a book with no frame for as long as coverage calls a stream silent is not sampled on
                    max_silence_ns=settings.max_silence_ns,
                    heatmap=_spec(settings, normalized),
                    gaps=_gaps(coverage, xid, normalized, channels[xid]),
                )
            )
    schema = samples_schema()
    samples = pl.concat([r.samples for r in results]) if results else pl.DataFrame(schema=schema)
    invalid = pl.concat([r.invalid for r in results]) if results else pl.DataFrame(schema=invalid_schema())
    fine = pl.concat([r.heatmap for r in results]) if results else pl.DataFrame(schema=BOOK_HEATMAP)
    minute = rollup_heatmap(fine, samples, step_ns=MINUTE_NS, step="1m")
    consolidated, left_out = consolidate_heatmap(pl.concat([fine, minute]), USD_LIKE)
    heatmap = pl.concat([fine, minute, consolidated])
    # the sinks first, the lake files last (as the other assets): the hour counts as materialized once its lake
    # files exist, so a failed load fails the hour before anything marks it done
    windows = [hour_window("book_snapshots", samples, hour), hour_window("book_invalid", invalid, hour)]
    replaced = load_sinks(
        (windows if snapshots else []) + ([hour_window("book_heatmap", heatmap, hour)] if heatmaps else [])
    )
    paths = {
        "book_snapshots": partition_path(settings.root, "book_snapshots", hour),
        "book_invalid": partition_path(settings.root, "book_invalid", hour),
        "book_heatmap": partition_path(settings.root, "book_heatmap", hour),
    }
    checkpoints = pl.DataFrame(
        {
            "exchange": [r.checkpoint.exchange for r in results],
            "symbol": [r.checkpoint.symbol for r in results],
            "state": [r.checkpoint.to_json().decode() for r in results],
        },
        schema=_CHECKPOINT_SCHEMA,
    )
    if snapshots:
        write_partition(partition_path(settings.root, CHECKPOINTS, hour), checkpoints)
        write_partition(paths["book_invalid"], invalid)
    if heatmaps:
        write_partition(paths["book_heatmap"], heatmap)
    if snapshots:  # last: the hour's snapshots exist once everything else of theirs does
        write_partition(paths["book_snapshots"], samples)
    _published(settings, warehouse)
    seconds = invalid.group_by("exchange", "symbol").agg(
        ((pl.col("end") - pl.col("start")).dt.total_nanoseconds().sum() / 1e9).round(3)
    )
    books = sorted(f"{x}/{s}" for x, s in samples.select("exchange", "symbol").unique().iter_rows())
    return BooksHour(
        hour,
        samples,
        invalid,
        heatmap,
        books,
        left_out,
        paths,
        replaced,
        continued=sum(1 for r in results if (r.checkpoint.exchange, r.checkpoint.symbol) in before),
        invalid_seconds={f"{x}/{s}": float(v) for x, s, v in seconds.sort("exchange", "symbol").iter_rows()},
    )


def _upstream(settings: Settings, table: str, hour: int, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    df = read_partition(partition_path(settings.root, table, hour), schema)
    if df is None:
        raise MissingUpstreamError(f"the {table} partition for {hour_text(hour)} is not materialized")
    return df


def stored_samples(settings: Settings, hour: int) -> pl.DataFrame:
    """The hour's book snapshots as materialized (the consolidated book's upstream when the run did not rebuild
    the books)."""
    return _upstream(settings, "book_snapshots", hour, samples_schema())


def materialize_consolidated_hour(
    settings: Settings, hour: int, samples: pl.DataFrame, warehouse: Warehouse | None = None
) -> tuple[pl.DataFrame, str, int]:
    """(consolidated book rows, lake path, PostgreSQL rows replaced) of the hour, from its book snapshots (those
    ``materialize_books_hour`` just wrote)."""
    out = consolidated_book(samples, USD_LIKE)
    replaced = load_sinks([hour_window("consolidated_book", out, hour)])
    path = partition_path(settings.root, "consolidated_book", hour)
    write_partition(path, out.select(list(CONSOLIDATED_BOOK)))
    _published(settings, warehouse)
    return out, path, replaced


def materialize_trade_heatmap_hour(
    settings: Settings, hour: int, warehouse: Warehouse | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, str, int]:
    """(trade heatmap rows, the hour's trades, lake path, PostgreSQL rows replaced), from the hour's trades."""
    trades = _upstream(settings, "trades", hour, TRADES)
    out = trade_heatmap(trades, settings.buckets, start_ns=hour, end_ns=hour + HOUR_NS)
    replaced = load_sinks([hour_window("trade_heatmap", out, hour)])
    path = partition_path(settings.root, "trade_heatmap", hour)
    write_partition(path, out.select(list(TRADE_HEATMAP)))
    _published(settings, warehouse)
    return out, trades, path, replaced


def _published(settings: Settings, warehouse: Warehouse | None) -> None:
    """The hour's files are in the lake: the readers' catalog refreshed (a new one only when a day appeared)."""
    (warehouse or Warehouse(settings.warehouse_path, lake=settings.root)).refresh()


def picture_path(settings: Settings, table: str, hour: int, name: str) -> str:
    """Where an hour's picture of ``table`` is kept: ``pictures/<table>/date=/hour=/<name>.png``, outside the
    table's own folder, whose files every reader (Spark, Trino, a glob) takes for its Parquet partitions."""
    folder = partition_path(join(settings.root, "pictures"), table, hour).rsplit("/", 1)[0]
    return join(folder, f"{name}.png")


def write_picture(path: str, png: bytes) -> None:
    fs, target = filesystem(path)
    fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(target, png)
