"""Data quality: Great Expectations suites for every table the pipeline writes, run per hour partition.

A table's suites are built from its partition with polars (``*_suites``: a schema suite first, then the rules),
then ``validate`` runs them with Great Expectations 1.x in an ephemeral context and keeps the results as Data
Docs in a folder of the lake. GX is imported by ``validate`` only (it takes seconds): the CLI and the collector
never load it. The quarantine table (what was rejected, why, from where) is built here too.
"""

from ._books import book_heatmap_suites, book_snapshots_suites, consolidated_book_suites, trade_heatmap_suites
from ._gx import preload, validate
from ._market import (
    MAX_DEVIATION_BPS,
    MAX_LATE_SHARE,
    MAX_REJECTED_SHARE,
    candles_suites,
    coverage_suites,
    cross_exchange_suites,
    id_continuity_suites,
    quarantine_counts_suites,
    trades_suites,
)
from ._quarantine import FRAME_ERROR, QUARANTINE, STAGES, quarantine_rows, quarantine_suites
from ._report import Outcome, Report
from ._rules import Rule, Suite, merge_suites

__all__ = [
    "FRAME_ERROR",
    "MAX_DEVIATION_BPS",
    "MAX_LATE_SHARE",
    "MAX_REJECTED_SHARE",
    "QUARANTINE",
    "STAGES",
    "Outcome",
    "Report",
    "Rule",
    "Suite",
    "book_heatmap_suites",
    "book_snapshots_suites",
    "candles_suites",
    "consolidated_book_suites",
    "coverage_suites",
    "cross_exchange_suites",
    "id_continuity_suites",
    "merge_suites",
    "preload",
    "quarantine_counts_suites",
    "quarantine_rows",
    "quarantine_suites",
    "trade_heatmap_suites",
    "trades_suites",
    "validate",
]
