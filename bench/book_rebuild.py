"""Order-book rebuild rate and book heatmap rate on the real recordings, beside limit references measured in the
same run.

The rebuild (``mdplatform.book.Rebuild``: the exchange's own builder, its sync rules, the sorted ``L2Book`` with the
exchange's strings kept for checkpoints and checksums) is fed every book row of each recording, landed in a
temporary lake and read back as the assets would. The reference is a minimal dict-based book fed the same payloads:
``orjson.loads`` then one dict store or delete per level, no sync rules, no ordering, no checksum. Both include
the JSON decode. Reported: level updates per second (the levels of every book row fed: diffs, including the few
the snapshot makes stale, and snapshots), median of ``--repeat`` runs, on one core. Recordings: ``MDP_SHARED_DATA``
or ../shared/data.

Heatmap rate: ``book_samples`` with a heatmap (1 s steps on the exchange clock, 10 USD buckets within 100 bp of
the mid: metrics, top 25 levels and the buckets of every sample, rebuild included), in samples per second; its
reference is the dict book above fed the same payloads, which at every step finds the best bid and ask by scanning
its dicts and sums the levels within 100 bp into buckets.

    .venv/bin/python bench/book_rebuild.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl

from mdplatform.book import BookHeatmapSpec, Rebuild, book_clock, book_samples
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


BUCKET = Decimal(10)
RANGE_BPS = 100.0
SECOND_NS = 1_000_000_000


def dict_heatmap(rows: list[tuple[int, str, str]]) -> int:
    """The heatmap reference: the dict book, bucketed at every whole second of the rows' clock; returns samples."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    bucket, reach = float(BUCKET), RANGE_BPS / 1e4
    samples = 0
    t = -(-rows[0][0] // SECOND_NS) * SECOND_NS
    for at, _, payload in rows:
        while t < at:
            if bids and asks:
                mid = (max(bids) + min(asks)) / 2.0
                heat: dict[tuple[int, int], float] = {}
                for sign, side in ((0, bids), (1, asks)):
                    for p, q in side.items():
                        if abs(p - mid) <= mid * reach:
                            key = (sign, int(p // bucket))
                            heat[key] = heat.get(key, 0.0) + q
                samples += 1
            t += SECOND_NS
        obj = orjson.loads(payload)
        d = obj.get("data", obj)
        if "lastUpdateId" in d:
            bids.clear()
            asks.clear()
        for side, levels in ((bids, d.get("b", d.get("bids", ()))), (asks, d.get("a", d.get("asks", ())))):
            for p, q in levels:
                price, size = float(p), float(q)
                if size == 0.0:
                    side.pop(price, None)
                else:
                    side[price] = size
    return samples


def sampled(xid: str, symbol: str, raw: pl.DataFrame) -> int:
    out = book_samples(raw, xid, symbol, heatmap=BookHeatmapSpec(BUCKET, RANGE_BPS), max_silence_ns=None)
    return out.samples.height


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
    heat_lines = []
    for name, (xid, symbol, files) in RECORDINGS.items():
        with tempfile.TemporaryDirectory() as lake:
            import_capture([SHARED_DATA / "binance-hftbacktest" / f for f in files], xid, lake)
            raw = read_raw(lake, 0, 1 << 62, exchanges=[xid])
        r = Rebuild(xid, symbol)
        mine = raw.filter(pl.col("symbol") == symbol, pl.col("channel").is_in(list(r.channels)))
        rows = list(r.rows(mine))
        levels = dict_book(rows)
        t_rebuild = timed(rebuild, (xid, symbol, rows), args.repeat)
        t_dict = timed(dict_book, (rows,), args.repeat)
        print(
            f"{name:28} {levels:>14,} {levels / t_rebuild:>12,.0f} {levels / t_dict:>13,.0f}"
            f" {t_rebuild / t_dict:>5.1f}x"
        )
        # the heatmap on the clock the assets use (the exchange's), the reference on the same clock
        clocked = list(r.rows(mine.with_columns(recv_ts=book_clock(mine, xid))))
        n = sampled(xid, symbol, mine)
        t_heat = timed(sampled, (xid, symbol, mine), args.repeat)
        n_ref = dict_heatmap(clocked)
        t_ref = timed(dict_heatmap, (clocked,), args.repeat)
        rate, ref_rate = n / t_heat, n_ref / t_ref
        heat_lines.append(f"{name:28} {n:>8,} {rate:>12,.0f} {n_ref:>8,} {ref_rate:>13,.0f} {ref_rate / rate:>5.1f}x")
    print(f"\n{'book heatmap':28} {'samples':>8} {'samples /s':>12} {'ref n':>8} {'dict ref /s':>13} {'ratio':>6}")
    print("\n".join(heat_lines))


if __name__ == "__main__":
    main()
