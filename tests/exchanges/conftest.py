"""Readers for the real recordings used by the exchange tests (cached: several tests replay the same file)."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import polars as pl
import pytest

from mdplatform.exchanges import Exchange
from mdplatform.schemas import RAW

#: one recorded hftbacktest line: (local receive time ns, frame text)
HftLine = tuple[int, str]
#: one cryptofeed line: (direction "connect" | "sent" | "recv", unix time ns, text)
CfLine = tuple[str, int, str]

# hftbacktest days per recording: the second file continues the first without a break
HFT_FILES = {
    "spot/btcusdt": ("spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz"),
    "spot/ethusdt": ("spot/ethusdt_20240808.gz", "spot/ethusdt_20240809.gz"),
    "usdm/btcusdt": ("usdm/btcusdt_20240808.gz",),
    "usdm/ethusdt": ("usdm/ethusdt_20240808.gz",),
    "cm/btcusd_perp": ("cm/btcusd_perp_20240808.gz", "cm/btcusd_perp_20240809.gz"),
}


@cache
def _read_hft(root: str, name: str) -> tuple[HftLine, ...]:
    out: list[HftLine] = []
    for file in HFT_FILES[name]:
        with gzip.open(Path(root) / "binance-hftbacktest" / file, "rt") as f:
            for line in f:
                ts, _, frame = line.rstrip("\n").partition(" ")
                out.append((int(ts), frame))
    return tuple(out)


_CF_CONNECT = re.compile(r"^(\S+) <-> (\d+(?:\.\d+)?)$")
_CF_SENT = re.compile(r"^(\S+) <- (\d+(?:\.\d+)?): (.*)$")
_CF_RECV = re.compile(r"^(?:\S+ -> )?(\d+(?:\.\d+)?): (.*)$")


def _unix_ns(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


@cache
def _read_cryptofeed(root: str, name: str) -> tuple[CfLine, ...]:
    out: list[CfLine] = []
    with gzip.open(Path(root) / "cryptofeed-samples" / name, "rt") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if m := _CF_CONNECT.match(line):
                out.append(("connect", _unix_ns(m.group(2)), m.group(1)))
            elif m := _CF_SENT.match(line):
                out.append(("sent", _unix_ns(m.group(2)), m.group(3)))
            elif m := _CF_RECV.match(line):
                out.append(("recv", _unix_ns(m.group(1)), m.group(2)))
            else:
                raise AssertionError(f"unrecognized cryptofeed line: {line[:120]}")
    return tuple(out)


@pytest.fixture(scope="session")
def hft(shared_data: Path) -> Callable[[str], tuple[HftLine, ...]]:
    """``hft("spot/btcusdt")`` -> every line of that recording (both days where there are two)."""
    return lambda name: _read_hft(str(shared_data), name)


@pytest.fixture(scope="session")
def cryptofeed(shared_data: Path) -> Callable[[str], tuple[CfLine, ...]]:
    """``cryptofeed("OKX.ws.1.0.gz")`` -> parsed lines of a cryptofeed sample."""
    return lambda name: _read_cryptofeed(str(shared_data), name)


def raw_frame(exchange: Exchange, frames: list[tuple[int, str]], conn_id: str = "rec-0") -> pl.DataFrame:
    """Raw lake rows (``mdplatform.schemas.RAW``) for recorded frames, routed like the collector does."""
    routes = [exchange.route(frame) for _, frame in frames]
    return pl.DataFrame(
        {
            "recv_ts": [ts for ts, _ in frames],
            "exchange": [exchange.id] * len(frames),
            "channel": [c for c, _ in routes],
            "symbol": [s for _, s in routes],
            "conn_id": [conn_id] * len(frames),
            "seq": list(range(1, len(frames) + 1)),
            "payload": [frame for _, frame in frames],
        },
        schema=RAW,
    )


@pytest.fixture(scope="session")
def to_raw() -> Callable[..., pl.DataFrame]:
    return raw_frame
