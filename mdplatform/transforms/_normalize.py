"""What the transforms need from the exchange registry: each exchange module parses its own payloads and says
which of its channels carry trades and which number them contiguously."""

from __future__ import annotations

import polars as pl

from mdplatform.exchanges import empty_normalized_trades
from mdplatform.transforms._coverage import StreamKinds
from mdplatform.transforms._trades import reject

__all__ = ["registry_normalizer", "registry_stream_kinds", "registry_trade_channels"]


def registry_normalizer(exchange_id: str, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``Normalizer`` backed by ``mdplatform.exchanges.normalize_trades_with_rejects``; the rows of an
    exchange the registry does not know are all quarantined (acks excepted)."""
    from mdplatform.exchanges import EXCHANGES, normalize_trades_with_rejects

    if exchange_id not in EXCHANGES:
        rows = raw.filter(pl.col("channel") != "control")
        return empty_normalized_trades(), reject(rows, f"unknown exchange {exchange_id!r}")
    return normalize_trades_with_rejects(exchange_id, raw)


def registry_stream_kinds() -> dict[str, StreamKinds]:
    """Per registered exchange, what coverage needs to know of its channels."""
    from mdplatform.exchanges import EXCHANGES

    return {
        xid: StreamKinds(
            normalize_symbol=x.normalize_symbol,
            trade_channels=x.capabilities.trade_channels,
            contiguous_ids=x.capabilities.contiguous_ids,
        )
        for xid, x in EXCHANGES.items()
    }


def registry_trade_channels() -> dict[str, frozenset[str]]:
    """exchange id -> its trade channels."""
    return {xid: kinds.trade_channels for xid, kinds in registry_stream_kinds().items()}
