"""Asset checks: they read back the partition file the asset wrote and apply the rules of
``mdplatform.transforms.validate_*`` (schema, nulls, positive prices/sizes, OHLC invariants, unique keys,
completeness flags, coverage rows tiling each stream)."""

# no `from __future__ import annotations`: Dagster inspects the real annotation of `context`
import warnings
from collections.abc import Callable

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from mdplatform.transforms import HOUR_NS, validate_candles, validate_coverage, validate_trades
from mdplatform.warehouse import partition_path

from ._assets import CANDLES_KEY, COVERAGE_KEY, TRADES_KEY
from ._hourly import hour_text
from ._resources import MdpResource
from .partitions import HOURLY, hour_ns

__all__ = ["candles_valid", "coverage_valid", "trades_valid"]

# partitioned asset checks are a Dagster preview feature; they give one result per hour partition
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")


def _read(path: str) -> pl.DataFrame | None:
    import pyarrow.parquet as pq

    from mdplatform.lake import filesystem

    fs, target = filesystem(path)
    if not fs.exists(target):
        return None
    with fs.open(target, "rb") as fh:
        # as written, without casting: the schema itself is under test
        return pl.from_arrow(pq.read_table(fh))  # type: ignore[return-value]


def _check(
    context: AssetCheckExecutionContext,
    mdp: MdpResource,
    table: str,
    validate: Callable[[pl.DataFrame, int, int], list[str]],
) -> AssetCheckResult:
    """``validate`` on the partition files the asset wrote for the context's hours: one, or the range of a
    single-run backfill (a problem then names its hour)."""
    if context.has_partition_key_range:
        keys = context.partition_key_range
        hours = list(range(hour_ns(keys.start), hour_ns(keys.end) + HOUR_NS, HOUR_NS))
    else:
        hours = [hour_ns(context.partition_key)]
    root = mdp.settings().root
    paths = [partition_path(root, table, hour) for hour in hours]
    problems: list[str] = []
    rows = 0
    for hour, path in zip(hours, paths, strict=True):
        df = _read(path)
        found = validate(df, hour, hour + HOUR_NS) if df is not None else [f"partition file missing: {path}"]
        problems += [f"{hour_text(hour)}: {p}" for p in found] if len(hours) > 1 else found
        rows += df.height if df is not None else 0
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "path": MetadataValue.path(paths[0] if len(paths) == 1 else paths[0].split("/date=")[0]),
            "rows": rows,
            "problems": MetadataValue.json(problems),
        },
        description="; ".join(problems) if problems else None,
    )


@asset_check(
    asset=TRADES_KEY,
    partitions_def=HOURLY,
    description="schema, no nulls, price/size > 0, fills >= 1, unique trade ids",
)
def trades_valid(context: AssetCheckExecutionContext, mdp: MdpResource) -> AssetCheckResult:
    return _check(context, mdp, "trades", validate_trades)


@asset_check(
    asset=COVERAGE_KEY,
    partitions_def=HOURLY,
    description="schema, rows tile each stream from the hour start without overlap, gaps have a reason",
)
def coverage_valid(context: AssetCheckExecutionContext, mdp: MdpResource) -> AssetCheckResult:
    return _check(context, mdp, "coverage", validate_coverage)


@asset_check(
    asset=CANDLES_KEY,
    partitions_def=HOURLY,
    description=(
        "schema, no nulls, low <= open/close <= high, volumes >= 0, taker buy <= volume, complete only when wholly "
        "covered, flat 1m candles only where observed, unique keys"
    ),
)
def candles_valid(context: AssetCheckExecutionContext, mdp: MdpResource) -> AssetCheckResult:
    return _check(context, mdp, "candles", validate_candles)
