"""Raw lake rows for the book tests: real recordings landed with ``import_capture`` and read back with ``read_raw``
(cached per session), and small hand-written rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import polars as pl
import pytest

from mdplatform.capture import import_capture
from mdplatform.lake import read_raw
from mdplatform.schemas import RAW

# recording -> (registry id, symbol, files)
RECORDINGS = {
    "spot/btcusdt": ("binance", "BTCUSDT", ("spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz")),
    "usdm/btcusdt": ("binance-usdm", "BTCUSDT", ("usdm/btcusdt_20240808.gz",)),
    "cm/btcusd_perp": ("binance-coinm", "BTCUSD_PERP", ("cm/btcusd_perp_20240808.gz", "cm/btcusd_perp_20240809.gz")),
}
_END = 1 << 62


@pytest.fixture(scope="session")
def recording_lake(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """``recording_lake("spot/btcusdt")`` or ``recording_lake("OKX.ws.1.0.gz")`` -> a lake holding it (landed once)."""
    cache: dict[str, str] = {}

    def land(name: str) -> str:
        if name not in cache:
            lake = str(tmp_path_factory.mktemp("lake"))
            if name in RECORDINGS:
                xid, _, files = RECORDINGS[name]
                import_capture([shared_data / "binance-hftbacktest" / f for f in files], xid, lake)
            else:
                import_capture([shared_data / "cryptofeed-samples" / name], "okx", lake)
            cache[name] = lake
        return cache[name]

    return land


@pytest.fixture(scope="session")
def recording(recording_lake: Callable[[str], str]) -> Callable[[str], pl.DataFrame]:
    """``recording("spot/btcusdt")`` -> its raw rows, landed in a lake and read back."""
    cache: dict[str, pl.DataFrame] = {}

    def load(name: str) -> pl.DataFrame:
        if name not in cache:
            xid = RECORDINGS[name][0] if name in RECORDINGS else "okx"
            cache[name] = read_raw(recording_lake(name), 0, _END, exchanges=[xid])
        return cache[name]

    return load


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
