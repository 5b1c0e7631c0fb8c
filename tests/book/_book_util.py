"""Helpers of the book tests: the recordings used and small hand-written raw rows."""

from __future__ import annotations

import orjson
import polars as pl

from mdplatform.schemas import RAW

# recording -> (registry id, symbol, files)
RECORDINGS = {
    "spot/btcusdt": ("binance", "BTCUSDT", ("spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz")),
    "usdm/btcusdt": ("binance-usdm", "BTCUSDT", ("usdm/btcusdt_20240808.gz",)),
    "cm/btcusd_perp": ("binance-coinm", "BTCUSD_PERP", ("cm/btcusd_perp_20240808.gz", "cm/btcusd_perp_20240809.gz")),
}


def raw_rows(exchange: str, symbol: str, rows: list[tuple[int, str, object]]) -> pl.DataFrame:
    """Lake rows (``RAW``) from (recv ns, channel, payload as a JSON-able object)."""
    return pl.DataFrame(
        {
            "recv_ts": [ts for ts, _, _ in rows],
            "exchange": [exchange] * len(rows),
            "channel": [c for _, c, _ in rows],
            "symbol": [symbol] * len(rows),
            "conn_id": ["c1"] * len(rows),
            "seq": list(range(1, len(rows) + 1)),
            "payload": [orjson.dumps(p).decode() for _, _, p in rows],
        },
        schema=RAW,
    )


def depth(first: int, last: int, bids: list[list[str]], asks: list[list[str]]) -> dict[str, object]:
    """A Binance spot combined-stream diff for BTCUSDT."""
    data = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": first, "u": last, "b": bids, "a": asks}
    return {"stream": "btcusdt@depth@100ms", "data": data}
