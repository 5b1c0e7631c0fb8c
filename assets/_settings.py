"""Run-time knobs of the assets, the sensor and the CLI: explicit value, else environment, else default."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mdplatform.lake import lake_root
from mdplatform.transforms import MINUTE_NS, SECOND_NS, CoverageRules, HeatmapBuckets, ceil_ns
from mdplatform.warehouse import default_warehouse_path

__all__ = ["Settings"]

DEFAULT_SKEW_S = 10.0
DEFAULT_LATENESS_S = 900.0
DEFAULT_GRACE_S = 1.0
DEFAULT_MAX_SILENCE_S = 15.0
DEFAULT_BOOK_INTERVAL_S = 1.0
DEFAULT_BOOK_TOP_N = 25
DEFAULT_HEATMAP_RANGE_BPS = 100.0


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


@dataclass(frozen=True, slots=True)
class Settings:
    """``None`` fields resolve from ``MDP_LAKE``, ``MDP_WAREHOUSE``, ``MDP_SKEW_S``, ``MDP_LATENESS_S``,
    ``MDP_GRACE_S``, ``MDP_MAX_SILENCE_S``, ``MDP_BOOK_INTERVAL_S``, ``MDP_BOOK_TOP_N``,
    ``MDP_HEATMAP_RANGE_BPS``, ``MDP_HEATMAP_BUCKETS`` (``BTC=10,ETH=1,SOL-USDT=0.05``: bucket sizes per base or
    symbol over the defaults) and ``MDP_PICTURES`` (0: no heatmap pictures) at use time (a long-lived process sees
    the environment it runs in)."""

    lake: str | None = None
    warehouse: str | None = None
    skew_s: float | None = None
    lateness_s: float | None = None
    grace_s: float | None = None
    max_silence_s: float | None = None
    book_interval_s: float | None = None
    book_top_n: int | None = None
    heatmap_range_bps: float | None = None
    heatmap_buckets: str | None = None
    pictures: bool | None = None

    @property
    def root(self) -> str:
        return lake_root(self.lake)

    @property
    def warehouse_path(self) -> str:
        return self.warehouse or default_warehouse_path(self.root)

    @property
    def skew_ns(self) -> int:
        """How far an exchange time may run ahead of its receive time (clocks disagree); beyond it a trade is
        quarantined and a liveness point ignored."""
        s = self.skew_s if self.skew_s is not None else _env_float("MDP_SKEW_S", DEFAULT_SKEW_S)
        return round(s * SECOND_NS)

    @property
    def lateness_ns(self) -> int:
        """Raw minutes read on each side of an hour (whole minutes, rounded up): later arrivals are counted as late."""
        s = self.lateness_s if self.lateness_s is not None else _env_float("MDP_LATENESS_S", DEFAULT_LATENESS_S)
        return ceil_ns(round(s * SECOND_NS), MINUTE_NS)

    @property
    def grace_ns(self) -> int:
        s = self.grace_s if self.grace_s is not None else _env_float("MDP_GRACE_S", DEFAULT_GRACE_S)
        return round(s * SECOND_NS)

    @property
    def max_silence_ns(self) -> int:
        s = (
            self.max_silence_s
            if self.max_silence_s is not None
            else _env_float("MDP_MAX_SILENCE_S", DEFAULT_MAX_SILENCE_S)
        )
        return round(s * SECOND_NS)

    @property
    def coverage_rules(self) -> CoverageRules:
        return CoverageRules(grace_ns=self.grace_ns, max_silence_ns=self.max_silence_ns, skew_ns=self.skew_ns)

    @property
    def book_interval_ns(self) -> int:
        """The book sampling step (and the book heatmap's finest step)."""
        s = self.book_interval_s
        if s is None:
            s = _env_float("MDP_BOOK_INTERVAL_S", DEFAULT_BOOK_INTERVAL_S)
        ns = round(s * SECOND_NS)
        if ns <= 0 or MINUTE_NS % ns:
            raise ValueError(f"the book interval must divide a minute, not {s} s")
        return ns

    @property
    def top_n(self) -> int:
        return self.book_top_n if self.book_top_n is not None else int(_env_float("MDP_BOOK_TOP_N", DEFAULT_BOOK_TOP_N))

    @property
    def range_bps(self) -> float:
        if self.heatmap_range_bps is not None:
            return self.heatmap_range_bps
        return _env_float("MDP_HEATMAP_RANGE_BPS", DEFAULT_HEATMAP_RANGE_BPS)

    @property
    def buckets(self) -> HeatmapBuckets:
        spec = self.heatmap_buckets if self.heatmap_buckets is not None else os.environ.get("MDP_HEATMAP_BUCKETS", "")
        return HeatmapBuckets.from_spec(spec)

    @property
    def hour_workers(self) -> int:
        """Hours of a range computed side by side (``MDP_HOUR_WORKERS``, default: the machine's cores but one, at
        least 1 and at most 4): each hour's trades and coverage depend on its own reads only. One core is left to
        the thread reading and decoding the next hours' raw frames: on two cores a second hour worker made the
        test day no faster (15.2 / 16.1 s against 15.3 / 15.6 s with one) and a range of quiet hours slower (7.2 /
        7.6 s against 6.5 / 6.6 s for 24 hours: their work is many small polars calls, and the workers took turns
        on the interpreter)."""
        value = os.environ.get("MDP_HOUR_WORKERS")
        return int(value) if value else max(1, min(4, (os.cpu_count() or 1) - 1))

    @property
    def data_docs(self) -> bool | None:
        """Which checks' Great Expectations results get a Data Docs page (``MDP_DATA_DOCS``): ``failures``
        (default: None), ``all`` (True) or ``off`` (False)."""
        value = os.environ.get("MDP_DATA_DOCS", "failures").strip().lower()
        choices: dict[str, bool | None] = {"failures": None, "all": True, "off": False}
        if value not in choices:
            raise ValueError(f"MDP_DATA_DOCS must be failures, all or off, not {value!r}")
        return choices[value]

    @property
    def draw(self) -> bool:
        """Whether the heatmap assets draw their pictures (about a second each per hour run)."""
        if self.pictures is not None:
            return self.pictures
        return os.environ.get("MDP_PICTURES", "1").strip().lower() not in ("0", "false", "no", "off")
