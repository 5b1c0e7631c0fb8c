"""Fixtures of the book tests: real recordings landed with ``import_capture`` and read back with ``read_raw``
(cached per session)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from _book_util import RECORDINGS

from mdplatform.capture import import_capture
from mdplatform.lake import read_raw

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
