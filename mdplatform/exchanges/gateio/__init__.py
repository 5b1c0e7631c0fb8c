"""Gate.io v4: spot and USDT perpetual futures; order_book_update diffs over a REST snapshot, trades, REST history."""

from ._book import SNAPSHOT_CHANNEL, GateioBookBuilder, GateioSession, book_ids, raw_levels, snapshot_id
from ._exchange import GateioExchange, create_time_ns, ms_text_to_ns
from ._history import (
    GATEIO_FUTURES_TRADES_PATH,
    GATEIO_REST_LIMIT,
    GATEIO_SPOT_TRADES_PATH,
    GateioTradeHistory,
    record_time_ns,
)

__all__ = [
    "GATEIO_FUTURES_TRADES_PATH",
    "GATEIO_REST_LIMIT",
    "GATEIO_SPOT_TRADES_PATH",
    "SNAPSHOT_CHANNEL",
    "GateioBookBuilder",
    "GateioExchange",
    "GateioSession",
    "GateioTradeHistory",
    "book_ids",
    "create_time_ns",
    "ms_text_to_ns",
    "raw_levels",
    "record_time_ns",
    "snapshot_id",
]
