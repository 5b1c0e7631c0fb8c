"""The raw layer as an observable source asset: what the collectors, imports and REST backfills land (frames as
received, and the collector's events), upstream of trades and coverage. Dagster does not materialize it; observing
it (the UI's "Observe sources") records which minutes the lake holds, so the graph starts where the data does."""

from __future__ import annotations

import warnings

from dagster import AssetKey, DataVersion, MetadataValue, ObserveResult, observable_source_asset

from mdplatform.lake import list_exchanges, raw_minute_bounds
from mdplatform.transforms import from_ns

from ._columns import table_metadata
from ._resources import MdpResource

__all__ = ["RAW_KEY", "raw"]

RAW_KEY = AssetKey("raw")

# observable source assets are "beta" in Dagster 1.13 (in use since 1.2); the warning is noise at every start
warnings.filterwarnings("ignore", message=".*`observable_source_asset`.*")


@observable_source_asset(
    key=RAW_KEY,
    group_name="raw",
    kinds={"parquet"},
    description=(
        "Every frame as received from the exchanges (raw/exchange=/date=/hour=/minute files, append-only, with the "
        "connection and a frame counter), and the collector's events (events/: connects, subscriptions, syncs, "
        "closes). Landed by the collector, `mdp import-capture` and `mdp backfill`; each commit is logged in "
        "_landed/, which the landed-data sensor reads. The hourly assets read the minutes [H - lateness, H + 1h + "
        "lateness)."
    ),
    metadata=table_metadata("raw"),
)
def raw(mdp: MdpResource) -> ObserveResult:
    root = mdp.settings().root
    bounds = raw_minute_bounds(root)
    exchanges = sorted(list_exchanges(root))
    if bounds is None:
        return ObserveResult(data_version=DataVersion("empty"), metadata={"exchanges": MetadataValue.json([])})
    first, last = bounds
    return ObserveResult(
        # a new last minute is new data (an import of older data moves the first one)
        data_version=DataVersion(f"{first}-{last}"),
        metadata={
            "first_minute": MetadataValue.timestamp(from_ns(first)),
            "last_minute": MetadataValue.timestamp(from_ns(last)),
            "exchanges": MetadataValue.json(exchanges),
            "path": MetadataValue.path(f"{root}/raw"),
        },
    )
