"""The one Dagster resource: where the lake and the warehouse are, and the time knobs."""

from dagster import ConfigurableResource
from pydantic import Field

from ._settings import Settings

__all__ = ["MdpResource"]


class MdpResource(ConfigurableResource["MdpResource"]):
    """Unset fields fall back to the environment (MDP_LAKE, MDP_WAREHOUSE, MDP_SKEW_S, MDP_LATENESS_S,
    MDP_GRACE_S, MDP_LOOKBACK_H), then to the defaults (./lake, <lake>/warehouse.duckdb, 120 s, 900 s, 1 s,
    24 h)."""

    lake: str | None = Field(default=None, description="lake root (path or s3:// URL)")
    warehouse: str | None = Field(default=None, description="DuckDB file")
    skew_s: float | None = Field(default=None, description="raw minutes read before the hour")
    lateness_s: float | None = Field(default=None, description="raw minutes read after the hour")
    grace_s: float | None = Field(default=None, description="candles close this long before the newest trade seen")
    lookback_h: float | None = Field(default=None, description="how far back a previous close is searched")

    def settings(self) -> Settings:
        return Settings(
            lake=self.lake,
            warehouse=self.warehouse,
            skew_s=self.skew_s,
            lateness_s=self.lateness_s,
            grace_s=self.grace_s,
            lookback_h=self.lookback_h,
        )
