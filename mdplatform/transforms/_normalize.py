"""Normalization through the exchange registry: each exchange module parses its own payloads."""

from __future__ import annotations

import polars as pl

from mdplatform.exchanges import empty_trades
from mdplatform.transforms._trades import reject

__all__ = ["registry_normalizer"]


def registry_normalizer(exchange_id: str, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``Normalizer`` backed by ``mdplatform.exchanges.normalize_trades_with_rejects``; the rows of an
    exchange the registry does not know are all quarantined (acks excepted)."""
    from mdplatform.exchanges import EXCHANGES, normalize_trades_with_rejects

    if exchange_id not in EXCHANGES:
        rows = raw.filter(pl.col("channel") != "control")
        return empty_trades(), reject(rows, f"unknown exchange {exchange_id!r}")
    return normalize_trades_with_rejects(exchange_id, raw)
