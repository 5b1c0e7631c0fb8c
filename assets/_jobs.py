"""The jobs the sensors and the CLI launch: one hour partition of trades and coverage, then candles (checks
included); candles alone (a re-aggregation of an hour's 4h/1d candles). And the same definitions on other hourly
partitions, for `mdp materialize` on a lake whose first hour is not the one the definitions were loaded for."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

from dagster import (
    AssetChecksDefinition,
    AssetsDefinition,
    AssetSelection,
    Definitions,
    PartitionsDefinition,
    asset_check,
    define_asset_job,
    in_process_executor,
)

from ._assets import CANDLES_KEY, candles, trades_and_coverage
from ._book_assets import books
from ._checks import CHECKS
from .partitions import HOURLY

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

__all__ = [
    "SERIAL_TAG",
    "books_on",
    "candles_job",
    "definitions_for",
    "hourly_assets",
    "hourly_checks",
    "hourly_job",
    "make_after_trades_job",
    "make_candles_job",
    "make_hourly_job",
]

#: runs with this tag go one at a time (dagster.yaml, tag_concurrency_limits): candles(H) reads
#: the 1m candles of earlier hours from the lake, so hours must not overtake each other, and DuckDB has a single writer.
#: Runs launched from the UI (the implicit asset job) carry no such tag: the assets' pool (``mdp_warehouse``, limit 1)
#: is what keeps them, backfills and these jobs from writing at the same time.
SERIAL_TAG = "mdp/serial"


#: every hourly asset, in the order a run computes them
HOURLY_ASSETS: list[AssetsDefinition] = [trades_and_coverage, candles, books]


def hourly_assets(partitions_def: PartitionsDefinition = HOURLY) -> list[AssetsDefinition]:
    """The hourly assets on these partitions (`mdp materialize` on a lake whose first hour differs from the one the
    definitions were loaded for)."""
    if partitions_def == HOURLY:
        return list(HOURLY_ASSETS)
    return [
        a.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=partitions_def)) for a in HOURLY_ASSETS
    ]


def books_on() -> bool:
    """``MDP_BOOKS`` (read when the definitions load; default on): 0 leaves the book step out of the hourly runs
    the sensor and `mdp materialize` launch (a lake without order books, or a deployment that only wants trades and
    candles); the book assets can still be materialized from the UI."""
    return os.environ.get("MDP_BOOKS", "1").strip().lower() not in ("0", "false", "no", "off")


def make_hourly_job(partitions_def: PartitionsDefinition = HOURLY) -> UnresolvedAssetJobDefinition:
    every = AssetSelection.all()
    return define_asset_job(
        "mdp_hourly",
        selection=every if books_on() else every - AssetSelection.assets(books),
        partitions_def=partitions_def,
        # one process for the small steps: a subprocess per step costs more than the work
        executor_def=in_process_executor,
        tags={SERIAL_TAG: "hourly"},
        description=(
            "trades and coverage, then candles, book snapshots and heatmaps, the trade heatmap and the "
            "consolidated book, for one exchange-time hour"
        ),
    )


def make_after_trades_job(partitions_def: PartitionsDefinition = HOURLY) -> UnresolvedAssetJobDefinition:
    """What follows trades and coverage in an hourly run: candles and (``MDP_BOOKS``) the book assets. `mdp
    materialize` runs it for the hours a stopped run had written trades for, so each of them is whole."""
    after = AssetSelection.all() - AssetSelection.assets(trades_and_coverage)
    return define_asset_job(
        "mdp_after_trades",
        selection=after if books_on() else after - AssetSelection.assets(books),
        partitions_def=partitions_def,
        executor_def=in_process_executor,
        tags={SERIAL_TAG: "hourly"},
        description="candles, then the book assets, for hours whose trades and coverage are materialized",
    )


def make_candles_job(partitions_def: PartitionsDefinition = HOURLY) -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        "mdp_candles",
        selection=AssetSelection.assets(CANDLES_KEY),
        partitions_def=partitions_def,
        executor_def=in_process_executor,
        tags={SERIAL_TAG: "hourly"},
        description=(
            "candles alone (with their check) for one exchange-time hour, from the stored trades and coverage: "
            "redoes the hour's candles, e.g. its 4h/1d candles once the hours they span are materialized"
        ),
    )


hourly_job = make_hourly_job()
candles_job = make_candles_job()


def hourly_checks(partitions_def: PartitionsDefinition = HOURLY) -> list[AssetChecksDefinition]:
    """The asset checks, on these partitions (the same check functions, declared again)."""
    checks = list(CHECKS)
    if partitions_def == HOURLY:
        return checks
    rebound = []
    for check in checks:
        (spec,) = check.check_specs
        with warnings.catch_warnings():  # partitioned asset checks are a preview feature (see _checks.py)
            warnings.simplefilter("ignore")
            rebound.append(
                asset_check(
                    asset=spec.asset_key,
                    name=spec.name,
                    description=spec.description,
                    blocking=spec.blocking,
                    partitions_def=partitions_def,
                )(check.node_def.compute_fn.decorated_fn)  # type: ignore[union-attr]
            )
    return rebound


def definitions_for(partitions_def: PartitionsDefinition, resources: Mapping[str, object]) -> Definitions:
    """The hourly assets, their checks and the jobs on these partitions."""
    return Definitions(
        assets=hourly_assets(partitions_def),
        asset_checks=hourly_checks(partitions_def),
        jobs=[make_hourly_job(partitions_def), make_candles_job(partitions_def), make_after_trades_job(partitions_def)],
        resources=resources,
        executor=in_process_executor,
    )
