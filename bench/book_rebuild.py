"""Order-book rebuild rate on the real recordings, beside a limit reference measured in the same run.

The rebuild (``mdplatform.book.Rebuild``: the exchange's own builder, its sync rules, the sorted ``L2Book`` with the
exchange's strings kept for checkpoints and checksums) is fed every book row of each recording, landed in a
temporary lake and read back as the assets would. The reference is a minimal dict-based book fed the same payloads:
``orjson.loads`` then one dict store or delete per level, no sync rules, no ordering, no checksum. Both include
the JSON decode. Reported: level updates per second (the levels of every book row fed: diffs, including the few
the snapshot makes stale, and snapshots), median of ``--repeat`` runs, on one core. Recordings: ``MDP_SHARED_DATA``
or ../shared/data.

    .venv/bin/python bench/book_rebuild.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import polars as pl

from mdplatform.book import Rebuild
from mdplatform.capture import import_capture
from mdplatform.lake import read_raw

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MDP_SHARED_DATA") or REPO.parent / "shared" / "data")

RECORDINGS = {
    "binance spot BTCUSDT": ("binance", "BTCUSDT", ("spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz")),
    "binance-usdm BTCUSDT": ("binance-usdm", "BTCUSDT", ("usdm/btcusdt_20240808.gz",)),
    "binance-coinm BTCUSD_PERP": (
        "binance-coinm",
        "BTCUSD_PERP",
        ("cm/btcusd_perp_20240808.gz", "cm/btcusd_perp_20240809.gz"),
    ),
}


def dict_book(rows: list[tuple[int, str, str]]) -> int:
    """The limit reference: decode, then set or delete each level in two dicts."""
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    n = 0
    for _, _, payload in rows:
        obj = orjson.loads(payload)
        d = obj.get("data", obj)
        for side, levels in ((bids, d.get("b", d.get("bids", ()))), (asks, d.get("a", d.get("asks", ())))):
            for p, q in levels:
                n += 1
                if q == "0" or float(q) == 0.0:
                    side.pop(p, None)
                else:
                    side[p] = q
    return n


def rebuild(xid: str, symbol: str, rows: list[tuple[int, str, str]]) -> None:
    r = Rebuild(xid, symbol)
    for recv_ns, channel, payload in rows:
        r.feed(recv_ns, channel, payload)
    assert r.valid


def timed(fn: Callable[..., object], args: tuple[object, ...], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'recording':28} {'level updates':>14} {'rebuild /s':>12} {'dict book /s':>13} {'ratio':>6}")
    for name, (xid, symbol, files) in RECORDINGS.items():
        with tempfile.TemporaryDirectory() as lake:
            import_capture([SHARED_DATA / "binance-hftbacktest" / f for f in files], xid, lake)
            raw = read_raw(lake, 0, 1 << 62, exchanges=[xid])
        r = Rebuild(xid, symbol)
        rows = list(r.rows(raw.filter(pl.col("symbol") == symbol)))
        levels = dict_book(rows)
        t_rebuild = timed(rebuild, (xid, symbol, rows), args.repeat)
        t_dict = timed(dict_book, (rows,), args.repeat)
        print(
            f"{name:28} {levels:>14,} {levels / t_rebuild:>12,.0f} {levels / t_dict:>13,.0f}"
            f" {t_rebuild / t_dict:>5.1f}x"
        )


if __name__ == "__main__":
    main()
