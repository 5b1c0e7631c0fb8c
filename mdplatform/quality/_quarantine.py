"""The quarantine table (lake ``quarantine_rows/``): every raw row known to be unusable, why, and where it came
from, one partition per hour.

Two sources feed it: the trades the normalization rejected for the hour (``quarantine/trades/`` partitions of
the trades asset: the raw row and its reason), and the collector's ``frame_error`` events received in the hour
(a landed frame it could not read or interpret; the frame itself stays in ``raw/`` under its ``conn_id`` and
``seq``). ``source`` names the raw lake folder holding the frame (the exchange's receive hour)."""

from __future__ import annotations

import polars as pl

from mdplatform.schemas import TS

from ._rules import Suite, contract_part, in_set, not_null, schema_matches, schema_suite

__all__ = ["FRAME_ERROR", "QUARANTINE", "STAGES", "quarantine_rows", "quarantine_suites"]

#: the collector's event kind of a landed frame it could not use (``lake/README.md``, events/)
FRAME_ERROR = "frame_error"
#: where a row was rejected: by the normalization of trades, or by the collector as it landed the frame
STAGES = ("normalize", "collector")

QUARANTINE: dict[str, pl.DataType] = {
    # the partition's hour: the trades hour (normalize) or the receive hour (collector); not `hour`, which a Hive
    # reader of the lake takes from the folder names
    "hour_start": TS,
    "stage": pl.String(),
    "reason": pl.String(),
    "recv_ts": TS,
    "exchange": pl.String(),
    "channel": pl.String(),
    "symbol": pl.String(),
    "conn_id": pl.String(),  # the connection (or `capture:<file>` for an imported recording)
    "seq": pl.Int64(),  # the frame's number on its connection
    "source": pl.String(),  # raw/exchange=X/date=D/hour=H: the folder of raw files holding the frame
    "payload": pl.String(),  # the frame as received (normalize); null for the collector's (it is in raw/)
}


def _source() -> pl.Expr:
    parts = pl.col("recv_ts").dt.strftime("date=%Y-%m-%d/hour=%H")
    return pl.concat_str(pl.lit("raw/exchange="), pl.col("exchange"), pl.lit("/"), parts)


def quarantine_rows(hour_ns: int, rejects: pl.DataFrame | None, events: pl.DataFrame) -> pl.DataFrame:
    """The hour's QUARANTINE rows: ``rejects`` (REJECTS rows of the trades hour, or None) and the ``frame_error``
    rows of ``events`` (EVENTS rows received in the hour), by receive time."""
    hour = pl.lit(hour_ns).cast(pl.Int64).cast(TS)
    parts = []
    if rejects is not None and rejects.height:
        parts.append(rejects.with_columns(hour_start=hour, stage=pl.lit("normalize"), source=_source()))
    errors = events.filter(pl.col("kind") == FRAME_ERROR)
    if errors.height:
        parts.append(
            errors.with_columns(
                hour_start=hour,
                stage=pl.lit("collector"),
                reason=pl.col("detail"),
                source=_source(),
                payload=pl.lit(None, pl.String()),
            )
        )
    if not parts:
        return pl.DataFrame(schema=QUARANTINE)
    rows = pl.concat([p.select([pl.col(c).cast(t) for c, t in QUARANTINE.items()]) for p in parts])
    return rows.sort("recv_ts", "conn_id", "seq")


def quarantine_suites(df: pl.DataFrame) -> list[Suite]:
    """Schema; every row says why, from which stage, connection and raw folder."""
    df = contract_part(df)  # several hours' rows at once: their hours play no part
    schema = schema_suite("quarantine", df, QUARANTINE)
    if not schema_matches(df, QUARANTINE):
        return [schema]
    rules = (
        *not_null([c for c in QUARANTINE if c != "payload"]),
        in_set("stage", list(STAGES), f"stage is {' or '.join(STAGES)}"),
    )
    shown = ("stage", "reason", "recv_ts", "exchange", "channel", "conn_id", "seq", "source")
    return [schema, Suite("quarantine", df, rules, shown=shown, rows="quarantined rows")]
