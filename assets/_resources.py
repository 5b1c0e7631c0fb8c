"""The one Dagster resource: where the lake and the warehouse are, and the time knobs."""

from dagster import ConfigurableResource
from pydantic import Field

from ._settings import Settings

__all__ = ["MdpResource"]


class MdpResource(ConfigurableResource["MdpResource"]):
    """Unset fields fall back to the environment (MDP_LAKE, MDP_WAREHOUSE, MDP_SKEW_S, MDP_LATENESS_S,
    MDP_GRACE_S, MDP_MAX_SILENCE_S), then to the defaults (./lake, <lake>/warehouse.duckdb, 10 s, 900 s, 1 s,
    15 s)."""

    lake: str | None = Field(default=None, description="lake root (path or s3:// URL)")
    warehouse: str | None = Field(default=None, description="DuckDB file")
    skew_s: float | None = Field(default=None, description="how far an exchange time may run ahead of receipt")
    lateness_s: float | None = Field(default=None, description="raw minutes read on each side of the hour")
    grace_s: float | None = Field(default=None, description="how far streams of one connection may be out of order")
    max_silence_s: float | None = Field(
        default=None, description="local time between liveness points beyond which a stretch is not proven"
    )

    def settings(self) -> Settings:
        return Settings(
            lake=self.lake,
            warehouse=self.warehouse,
            skew_s=self.skew_s,
            lateness_s=self.lateness_s,
            grace_s=self.grace_s,
            max_silence_s=self.max_silence_s,
        )
