"""Asset checks: the Great Expectations suites of ``mdplatform.quality`` on the partition files each asset wrote,
one result per hour partition (or per single-run backfill range: a problem then names its hour).

ERROR checks say a partition is wrong; those on trades and coverage are ``blocking``: in a run that also builds
what depends on them (candles, the book assets), a failure stops those steps, so no candle is built from trades
that failed. WARN checks say something is worth a look (lost trade ids, a venue's price away from the others',
many rows quarantined or late) and stop nothing. A check's metadata holds the failing count per rule, a few
failing rows and the path of the GX Data Docs page of its results (``<lake>/quality/data_docs/``, local lakes)."""

# no `from __future__ import annotations`: Dagster inspects the real annotation of `context`
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl
from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetRecordsFilter,
    MetadataValue,
    asset_check,
)

from mdplatform.lake import filesystem, is_local, join
from mdplatform.quality import (
    Report,
    Suite,
    book_heatmap_suites,
    book_snapshots_suites,
    candles_suites,
    consolidated_book_suites,
    coverage_suites,
    cross_exchange_suites,
    id_continuity_suites,
    merge_suites,
    quarantine_counts_suites,
    quarantine_suites,
    trade_heatmap_suites,
    trades_suites,
)
from mdplatform.transforms import HOUR_NS, stamp_window
from mdplatform.warehouse import partition_path, read_partition_file

from ._assets import CANDLES_KEY, COVERAGE_KEY, TRADES_KEY
from ._book_assets import BOOK_HEATMAP_KEY, BOOK_SNAPSHOTS_KEY, CONSOLIDATED_BOOK_KEY, TRADE_HEATMAP_KEY
from ._hourly import hour_text
from ._quarantine import QUARANTINE_KEY, QUARANTINE_TABLE
from ._resources import MdpResource
from ._settings import Settings
from .partitions import HOURLY, hour_key, hour_ns

__all__ = [
    "CHECKS",
    "book_heatmap_expectations",
    "book_snapshots_expectations",
    "candles_valid",
    "consolidated_book_valid",
    "coverage_valid",
    "quality_docs",
    "quarantine_valid",
    "trade_heatmap_valid",
    "trades_cross_exchange",
    "trades_id_continuity",
    "trades_quarantine_and_late",
    "trades_valid",
]

# partitioned asset checks are a Dagster preview feature; they give one result per hour partition
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")

#: problems named in a check's description (all of them are in its metadata)
DESCRIBED = 5

#: builds an hour's suites from its settings and hour, or says why there is nothing to validate
Build = Callable[[Settings, int], list[Suite] | str]
#: builds the suites of partition files (``Partitions``: one frame or None per table) of one hour, or with None for
#: the hour of several hours' rows at once, each row stamped with its own (``stamp_window``)
Make = Callable[[Settings, list[pl.DataFrame | None], int | None], list[Suite]]


def quality_docs(settings: Settings) -> str | None:
    """Where the GX results and Data Docs go: ``<lake>/quality`` for a local lake (none for an object store:
    GX's filesystem stores and site need a local folder)."""
    fs, root = filesystem(settings.root)
    return join(root, "quality") if is_local(fs) else None


def _read(settings: Settings, table: str, hour: int) -> pl.DataFrame | None:
    """The hour's partition file of ``table`` as written (the checks of trades read the same files one after the
    other, as the candles step does after them: a file this process wrote or read is read once, ``_kept``)."""
    return read_partition_file(partition_path(settings.root, table, hour))


def _hours(context: AssetCheckExecutionContext) -> list[int]:
    if context.has_partition_key_range:
        keys = context.partition_key_range
        return list(range(hour_ns(keys.start), hour_ns(keys.end) + HOUR_NS, HOUR_NS))
    return [hour_ns(context.partition_key)]


class _Checked(Protocol):
    """What a check validates, hour by hour as the chunks take them."""

    def rows(self, hour: int) -> int | str:
        """The hour's rows to validate (its largest frame), or why there is nothing to."""

    def suites(self, hours: list[int]) -> list[Suite]:
        """The suites of consecutive hours ``rows`` was asked for, to validate at once."""

    def alone(self, hour: int) -> list[Suite]:
        """One of those hours' own suites."""

    def release(self, hours: list[int]) -> None:
        """Those hours are validated: what was kept for them goes."""


class _PerHour:
    """Each hour's suites built alone (``Build``), merged for a chunk (``merge_suites``)."""

    def __init__(self, build: Build, settings: Settings) -> None:
        self._build, self._settings = build, settings
        self._kept: dict[int, list[Suite]] = {}

    def rows(self, hour: int) -> int | str:
        got = self._build(self._settings, hour)
        if isinstance(got, str):
            return got
        self._kept[hour] = got
        return max((s.frame.height for s in got), default=0)

    def suites(self, hours: list[int]) -> list[Suite]:
        return merge_suites([self._kept[hour] for hour in hours])

    def alone(self, hour: int) -> list[Suite]:
        return self._kept[hour]

    def release(self, hours: list[int]) -> None:
        for hour in hours:
            del self._kept[hour]


@dataclass(frozen=True, slots=True)
class Partitions:
    """A check of partition files: ``tables``' files of each hour (the first must exist, the others may be
    missing: None) made into suites by ``make``. The hours of a chunk whose files are all there, each table's of
    one schema, are made into suites at once, their rows stamped with their hour (each builder keys its groupings
    by it): a suite built hour by hour cost milliseconds per hour in polars calls whatever its rows, which a long
    range of quiet hours paid for every check."""

    tables: tuple[str, ...]
    make: Make

    def __call__(self, settings: Settings) -> _Checked:
        return _Partitions(self, settings)


class _Partitions:
    def __init__(self, spec: Partitions, settings: Settings) -> None:
        self._spec, self._settings = spec, settings
        self._kept: dict[int, list[pl.DataFrame | None]] = {}

    def rows(self, hour: int) -> int | str:
        files = _hour_files(self._settings, self._spec.tables, hour)
        if isinstance(files, str):
            return files
        self._kept[hour] = files
        return _there(files[0]).height

    def suites(self, hours: list[int]) -> list[Suite]:
        frames = [self._kept[hour] for hour in hours]
        if len(hours) == 1:
            return self.alone(hours[0])
        together = all(
            f is not None and f0 is not None and f.schema == f0.schema
            for fs in frames
            for f, f0 in zip(fs, frames[0], strict=True)
        )
        if not together:
            return merge_suites([self.alone(hour) for hour in hours])
        stamped: list[pl.DataFrame | None] = [
            pl.concat([stamp_window(_there(fs[i]), hour) for hour, fs in zip(hours, frames, strict=True)])
            for i in range(len(self._spec.tables))
        ]
        return self._spec.make(self._settings, stamped, None)

    def alone(self, hour: int) -> list[Suite]:
        return self._spec.make(self._settings, self._kept[hour], hour)

    def release(self, hours: list[int]) -> None:
        for hour in hours:
            del self._kept[hour]


def _run(
    context: AssetCheckExecutionContext,
    mdp: MdpResource,
    table: str,
    check: Build | Partitions,
    severity: AssetCheckSeverity,
    extra: dict[str, Any] | None = None,
) -> AssetCheckResult:
    """``check``'s suites validated for each hour of the context; one result over them (``extra``: more
    metadata)."""
    from mdplatform.quality import validate

    settings = mdp.settings()
    docs = quality_docs(settings)
    hours = _hours(context)
    missing: list[str] = []
    checked = check(settings) if isinstance(check, Partitions) else _PerHour(check, settings)

    def sized() -> Iterator[tuple[int, int]]:
        # hour by hour, as the chunks take them: a run's hours are never all in memory at once (a week of a busy
        # symbol's trades is tens of millions of rows)
        for hour in hours:
            rows = checked.rows(hour)
            if isinstance(rows, str):
                missing.append(f"{hour_text(hour)}: {rows}")
            else:
                yield hour, rows

    reports: list[tuple[int, Report]] = []
    spans: dict[int, str] = {}
    #: the first hour of the chunk each hour was validated in
    chunk_of: dict[int, int] = {}
    for chunk in _chunks(sized()):
        # the hours of a chunk in one validation: GX costs about half a second per validation whatever its rows,
        # so consecutive hours are validated as one frame per suite (the rules are relative to each row's own
        # hour), up to a row budget that keeps the frames GX converts small
        first, last = chunk[0], chunk[-1]
        # the name in the stored results and Data Docs folders: the partition key(s) without colons
        name = hour_key(first) if first == last else f"{hour_key(first)}--{hour_key(last)}"
        report = validate(checked.suites(chunk), name.replace(":", ""), docs, pages=settings.data_docs)
        alone = _each_alone(chunk, checked, report, docs, settings.data_docs)
        checked.release(chunk)
        for hour, own in alone.items():
            reports.append((hour, own))
            spans[hour], chunk_of[hour] = hour_text(hour), hour
        rest = [hour for hour in chunk if hour not in alone]
        if rest:
            reports.append((first, report))
            spans[first] = hour_text(first) if first == last else f"{hour_text(first)} .. {hour_text(last)}"
            chunk_of |= dict.fromkeys(rest, first)

    def named(hour: int, text: str) -> str:
        return f"{spans.get(hour, hour_text(hour))}: {text}" if len(hours) > 1 else text

    problems = missing + [named(h, p) for h, r in reports for p in r.problems()]
    examples = {named(h, k): v for h, r in reports for k, v in r.examples().items()}
    rules: dict[str, int | None] = {}  # rule -> failing rows over the hours (None: not counted)
    for _, r in reports:
        for rule, n in r.summary().items():
            before = rules.get(rule, 0)
            rules[rule] = None if n is None or before is None else before + n
    metadata: dict[str, Any] = {
        "failing_rows": sum(r.failing for _, r in reports),
        "problems": MetadataValue.json(problems),
        "examples": MetadataValue.json(examples),
        "rules": MetadataValue.json(rules),
        "validation_seconds": round(sum(r.seconds for _, r in reports), 3),
        "path": MetadataValue.path(
            partition_path(settings.root, table, hours[0]) if len(hours) == 1 else join(settings.root, table)
        ),
    }
    pages = [page for _, r in reports for page in r.pages.values()]
    index = next((r.index for _, r in reports if r.index), None)
    if len(hours) == 1 and pages:
        # the page of the suite that decided: the first failed one, else the main (last) suite
        failed = [r.pages[o.suite] for _, r in reports for o in r.failed if o.suite in r.pages]
        metadata["data_docs"] = MetadataValue.path(failed[0] if failed else pages[-1])
    if index is not None:
        metadata["data_docs_index"] = MetadataValue.path(index)
    metadata |= extra or {}
    shown = problems[:DESCRIBED] + ([f"... {len(problems) - DESCRIBED} more"] if len(problems) > DESCRIBED else [])
    if context.has_partition_key_range:
        by_first = dict(reports)
        _per_hour(context, severity, hours, missing, {h: (spans[f], by_first[f]) for h, f in chunk_of.items()})
    return AssetCheckResult(
        passed=not problems,
        severity=severity,
        metadata=metadata,
        description="; ".join(shown) if shown else None,
    )


def _per_hour(
    context: AssetCheckExecutionContext,
    severity: AssetCheckSeverity,
    hours: list[int],
    missing: list[str],
    validated: dict[int, tuple[str, Report]],
) -> None:
    """One evaluation per hour of a range run, under that hour's partition: the UI shows checks per partition, and
    Dagster files a range run's single result under no partition (each hour's check would stay "planned"). An hour
    validated with others in one chunk shares the chunk's verdict; the description names the chunk."""

    (spec,) = context.check_specs
    for hour in hours:
        gone = [m for m in missing if m.startswith(f"{hour_text(hour)}: ")]
        span, report = validated.get(hour, ("", None))
        problems = gone + (report.problems() if report is not None else [])
        if problems and report is not None and span != hour_text(hour):
            problems = [f"validated as one with {span}: {p}" for p in problems]
        shown = problems[:DESCRIBED] + ([f"... {len(problems) - DESCRIBED} more"] if len(problems) > DESCRIBED else [])
        context.op_execution_context.log_event(
            AssetCheckEvaluation(
                asset_key=spec.asset_key,
                check_name=spec.name,
                passed=not problems,
                metadata={
                    "failing_rows": report.failing if report is not None else 0,
                    "problems": MetadataValue.json(problems),
                    "validated_with": span or hour_text(hour),
                },
                severity=severity,
                description="; ".join(shown) if shown else None,
                blocking=spec.blocking,
                partition=hour_key(hour),
            )
        )


#: rows (of a chunk's largest suite frame) validated at once: about 10 hours of a busy symbol's trades
CHUNK_ROWS = 1_000_000
#: hours validated at once at most (a quiet range: a validation per week of it)
CHUNK_HOURS = 168


def _each_alone(
    chunk: list[int], checked: _Checked, report: Report, docs: str | None, pages: bool | None
) -> dict[int, Report]:
    """A chunk that failed, validated again hour by hour, so that each hour gets its own verdict (a chunk that
    passed is every hour passing): the hours' own reports, those that pass included. What only the hours together
    show (a trade in two of them: fewer failing rows alone than together) stays the chunk's: then only the hours
    that failed alone are given their own report."""
    from mdplatform.quality import validate

    if report.passed or len(chunk) == 1:
        return {}
    alone = {hour: validate(checked.alone(hour), hour_key(hour).replace(":", ""), docs, pages=pages) for hour in chunk}
    if sum(r.failing for r in alone.values()) >= report.failing:
        return alone
    return {hour: r for hour, r in alone.items() if not r.passed}


def _chunks(sized: Iterable[tuple[int, int]]) -> Iterator[list[int]]:
    """Consecutive hours (with their rows) in chunks of at most ``CHUNK_HOURS`` hours and about ``CHUNK_ROWS``
    rows, each given as soon as the hour after it shows it is full (the hours are taken one at a time)."""
    chunk: list[int] = []
    rows = 0
    for hour, size in sized:
        if chunk and (len(chunk) >= CHUNK_HOURS or rows + size > CHUNK_ROWS):
            yield chunk
            chunk, rows = [], 0
        chunk.append(hour)
        rows += size
    if chunk:
        yield chunk


def _missing(settings: Settings, table: str, hour: int) -> str:
    return f"{table} partition file missing: {partition_path(settings.root, table, hour)}"


def _hour_files(settings: Settings, tables: tuple[str, ...], hour: int) -> list[pl.DataFrame | None] | str:
    """The hour's partition files of ``tables``: the first one's must be there (else why there is nothing to
    validate), the others' are None when missing."""
    first, *more = tables
    df = _read(settings, first, hour)
    if df is None:
        return _missing(settings, first, hour)
    return [df, *(_read(settings, table, hour) for table in more)]


def _alone(tables: tuple[str, ...], make: Callable[[list[pl.DataFrame | None], int], list[Suite]]) -> Build:
    """The suites of ``tables``' files made an hour at a time (suites whose builders take one hour's rows)."""

    def build(settings: Settings, hour: int) -> list[Suite] | str:
        files = _hour_files(settings, tables, hour)
        return files if isinstance(files, str) else make(files, hour)

    return build


def _there(df: pl.DataFrame | None) -> pl.DataFrame:
    """A frame of ``Partitions`` known to be there (the checked table's always is: an hour without its file has
    nothing to validate)."""
    assert df is not None
    return df


def _check(
    asset: AssetKey,
    name: str,
    table: str,
    build: Build | Partitions,
    description: str,
    *,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    blocking: bool = False,
) -> AssetChecksDefinition:
    @asset_check(asset=asset, name=name, partitions_def=HOURLY, description=description, blocking=blocking)
    def check(context: AssetCheckExecutionContext, mdp: MdpResource) -> AssetCheckResult:
        return _run(context, mdp, table, build, severity)

    return check


def _trades_counts(context: AssetCheckExecutionContext, hours: list[int]) -> dict[int, dict[str, int]]:
    """hour -> the trades asset's numbers for it (rows, raw rows read, rejects, late trades), from the metadata of
    its newest materialization of the partition ({}: none). The hours' records come newest first, a page at a time
    (one query for a range, not one per hour: a week of hours spent half a second on them)."""
    keys = {hour_key(hour): hour for hour in hours}
    found: dict[int, dict[str, int]] = {}
    names = {"rows": "dagster/row_count", **{k: k for k in ("raw_rows_read", "rejects", "late_trades")}}
    cursor = None
    while True:
        page = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=TRADES_KEY, asset_partitions=list(keys)), limit=len(keys) + 100, cursor=cursor
        )
        for record in page.records:
            hour = keys.get(record.partition_key or "")
            if hour is None or hour in found:
                continue  # an older materialization of an hour already found
            materialization = record.asset_materialization
            metadata = materialization.metadata if materialization is not None else {}
            values = {k: getattr(metadata.get(name), "value", None) for k, name in names.items()}
            found[hour] = {k: int(v) for k, v in values.items() if isinstance(v, int)}
        if len(found) == len(keys) or not page.has_more:
            return {hour: found.get(hour, {}) for hour in hours}
        cursor = page.cursor


def _trades_counts_check() -> AssetChecksDefinition:
    @asset_check(
        asset=TRADES_KEY,
        name="trades_quarantine_and_late",
        partitions_def=HOURLY,
        description=(
            "WARN: at most 0.1 % of the raw rows read quarantined, at most 1 % of the hour's trades late "
            "(received after their hour's window closed); the counts are in the metadata"
        ),
    )
    def trades_quarantine_and_late(context: AssetCheckExecutionContext, mdp: MdpResource) -> AssetCheckResult:
        counts = _trades_counts(context, _hours(context))

        def build(_settings: Settings, hour: int) -> list[Suite] | str:
            if not counts[hour]:
                return "no materialization of trades recorded for the hour (the counts are its metadata)"
            return quarantine_counts_suites(counts[hour])

        totals = {k: sum(int(c.get(k, 0)) for c in counts.values()) for k in ("rejects", "late_trades")}
        return _run(context, mdp, "trades", build, AssetCheckSeverity.WARN, totals)

    return trades_quarantine_and_late


trades_valid = _check(
    TRADES_KEY,
    "trades_valid",
    "trades",
    Partitions(("trades",), lambda s, f, h: trades_suites(_there(f[0]), h, s.skew_ns)),
    "GX: schema and types, no nulls, price/size > 0, side buy/sell, fills >= 1, unique (exchange, symbol, "
    "trade_id), ts in the hour and never decreasing per (exchange, symbol), ts not ahead of receipt beyond the skew. "
    "Blocks candles and the book assets.",
    blocking=True,
)
trades_id_continuity = _check(
    TRADES_KEY,
    "trades_id_continuity",
    "trades",
    Partitions(("trades",), lambda _s, f, _h: id_continuity_suites(_there(f[0]))),
    "GX, WARN: where the exchange numbers trades contiguously (Binance), no fill id missing or repeated between "
    "consecutive trades of a symbol (a missing id is a lost trade; coverage has it as an id gap)",
    severity=AssetCheckSeverity.WARN,
)
trades_cross_exchange = _check(
    TRADES_KEY,
    "trades_cross_exchange",
    "trades",
    Partitions(("trades",), lambda _s, f, _h: cross_exchange_suites(_there(f[0]))),
    "GX, WARN: per symbol traded on several exchanges and minute, each exchange's median price within 50 bp of the "
    "median over the exchanges",
    severity=AssetCheckSeverity.WARN,
)
trades_quarantine_and_late = _trades_counts_check()
coverage_valid = _check(
    COVERAGE_KEY,
    "coverage_valid",
    "coverage",
    Partitions(("coverage",), lambda _s, f, h: coverage_suites(_there(f[0]), h)),
    "GX: schema and types, no nulls where needed, status covered/gap, a gap has a reason and a covered row none, "
    "filled in [0, 1], rows tile each stream from the hour's start. Blocks candles and the book assets.",
    blocking=True,
)


candles_valid = _check(
    CANDLES_KEY,
    "candles_valid",
    "candles",
    Partitions(("candles", "coverage"), lambda _s, f, h: candles_suites(_there(f[0]), h, f[1])),
    "GX: schema and types, no nulls, low > 0, OHLC in order, vwap in [low, high], volumes >= 0, taker buy <= "
    "volume, flat exactly when no trade, coverage in [0, 1] and 1 when complete, flat 1m candles only where "
    "observed, aligned spans, unique keys, close_time in the hour; complete candles of 1h or less wholly observed "
    "per the hour's coverage",
    blocking=True,
)


book_snapshots_expectations = _check(
    BOOK_SNAPSHOTS_KEY,
    "book_snapshots_expectations",
    "book_snapshots",
    _alone(("book_snapshots", "book_invalid"), lambda f, h: book_snapshots_suites(_there(f[0]), h, f[1])),
    "GX: schema and types, no nulls, ts in the hour and growing per book, never crossed or locked, best sizes > 0, "
    "top level = best, book_ts <= ts, imbalances in [-1, 1], no sample inside a book_invalid span",
)
book_heatmap_expectations = _check(
    BOOK_HEATMAP_KEY,
    "book_heatmap_expectations",
    "book_heatmap",
    _alone(("book_heatmap",), lambda f, h: book_heatmap_suites(_there(f[0]), h)),
    "GX: schema and types, no nulls, ts in the hour, steps 1s/1m, sizes > 0, intensity in (0, 1] peaking at 1 per "
    "step, exact bucket edges, counts >= 1, unique keys",
)


trade_heatmap_valid = _check(
    TRADE_HEATMAP_KEY,
    "trade_heatmap_valid",
    "trade_heatmap",
    _alone(("trade_heatmap", "trades"), lambda f, h: trade_heatmap_suites(_there(f[0]), h, f[1])),
    "GX: schema and types, no nulls, whole minutes of the hour, sizes >= 0 and something traded, exact bucket "
    "edges, intensity in [0, 1], unique keys; per (exchange, symbol) the buckets hold exactly the hour's traded size",
)
consolidated_book_valid = _check(
    CONSOLIDATED_BOOK_KEY,
    "consolidated_book_valid",
    "consolidated_book",
    _alone(("consolidated_book",), lambda f, h: consolidated_book_suites(_there(f[0]), h)),
    "GX: schema and types, no nulls but depth bands, ts in the hour, one row per (base, ts), best prices > 0, "
    "crossed exactly when best_bid >= best_ask, one list entry per book, staleness >= 0, imbalances in [-1, 1]",
)
quarantine_valid = _check(
    QUARANTINE_KEY,
    "quarantine_valid",
    QUARANTINE_TABLE,
    Partitions((QUARANTINE_TABLE,), lambda _s, f, _h: quarantine_suites(_there(f[0]))),
    "GX: schema and types; every quarantined row says why, from which stage, connection and raw folder",
)

#: every check, in the order of the assets
CHECKS: list[AssetChecksDefinition] = [
    trades_valid,
    trades_id_continuity,
    trades_cross_exchange,
    trades_quarantine_and_late,
    coverage_valid,
    candles_valid,
    book_snapshots_expectations,
    book_heatmap_expectations,
    trade_heatmap_valid,
    consolidated_book_valid,
    quarantine_valid,
]
