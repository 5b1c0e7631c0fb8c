"""Order-book rebuild rate and book heatmap rate on the real recordings, beside limit references measured in the
same run, and the targets (issue 15: 1,000,000 level updates/s, 2,500 heatmap samples/s).

The rebuild (``mdplatform.book.Rebuild``: the exchange's own builder and sync rules, the compiled ``L2Book`` with the
exchange's strings kept for checkpoints and checksums) is fed every book row of each recording, landed in a
temporary lake and read back as the assets would, taken as columns (``BookRows``: Arrow strings, as the reference
gets its rows as a list), with ``Rebuild.feed_rows`` (runs of diffs in sequence read and applied in compiled code,
the other rows one by one), the path ``book_samples`` takes. ``row by row`` is ``Rebuild.feed`` called per row
(``Rebuild.states``, the replay), for information. The reference is a minimal dict-based book fed the same
payloads: ``orjson.loads`` then one dict store or delete per level, no sync rules, no ordering, no checksum. Both
include the JSON decode. Reported: level updates per second (the levels of every book row fed: diffs, including
the few the snapshot makes stale, and snapshots), median of ``--repeat`` runs, the implementation and its reference
interleaved, on one core (``/ CPU-s``: per second of the process's CPU time, less inflated than the elapsed time
when other work shares the cores; the targets apply to the elapsed time). Recordings: ``MDP_SHARED_DATA`` or
../shared/data.

Heatmap rate: ``book_samples`` with a heatmap (1 s steps on the exchange clock, 10 USD buckets within 100 bp of
the mid: metrics, top 25 levels and the buckets of every sample, the exchange clock and the rebuild included), in
samples per second; its reference is the dict book above fed the same payloads, which at every step finds the best
bid and ask by scanning its dicts and sums the levels within 100 bp into buckets.

Each figure is also printed as a ``BENCH {json}`` line (``bench/run_all.py`` collects them). Exits 1 when the
book rebuilt in runs differs from the one rebuilt row by row (its checkpoint: every level's strings).

    .venv/bin/python bench/book_rebuild.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl
from _report import bench_line

from mdplatform.book import BookHeatmapSpec, BookRows, Rebuild, book_clock, book_samples
from mdplatform.capture import import_capture
from mdplatform.exchanges import get_exchange
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
#: issue 15's targets
REBUILD_TARGET = 1_000_000
HEATMAP_TARGET = 2_500


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


def rebuild(xid: str, symbol: str, rows: BookRows) -> Rebuild:
    r = Rebuild(get_exchange(xid), symbol)
    r.feed_rows(rows)
    return r


def rebuild_row_by_row(xid: str, symbol: str, rows: list[tuple[int, str, str]]) -> Rebuild:
    r = Rebuild(get_exchange(xid), symbol)
    for recv_ns, channel, payload in rows:
        r.feed(recv_ns, channel, payload)
    return r


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
    out = book_samples(raw, get_exchange(xid), symbol, heatmap=BookHeatmapSpec(BUCKET, RANGE_BPS), max_silence_ns=None)
    return out.samples.height


#: a function and its arguments
Timed = tuple[Callable[..., object], tuple[object, ...]]


def interleaved(fn: Timed, ref: Timed, n: int) -> tuple[float, float, float]:
    """Median seconds of ``fn`` and of ``ref``, run alternately ``n`` times each (load on the machine hits both),
    and the median CPU seconds of ``fn`` (the process's, every thread: what a loaded machine does not inflate as
    much as the elapsed time)."""
    wall: tuple[list[float], list[float]] = ([], [])
    cpu: list[float] = []
    for _ in range(n):
        for (f, a), out in ((fn, wall[0]), (ref, wall[1])):
            c, t = time.process_time(), time.perf_counter()
            f(*a)
            out.append(time.perf_counter() - t)
            if out is wall[0]:
                cpu.append(time.process_time() - c)
    return statistics.median(wall[0]), statistics.median(wall[1]), statistics.median(cpu)


def verdict(rate: float, target: float) -> str:
    return "ok" if rate >= target else "BELOW"


def emit(name: str, figure: float, unit: str, reference: float, target: float) -> None:
    """One figure as a ``BENCH`` line for bench/run_all.py."""
    bench_line(name, round(figure), unit, round(reference), figure / reference, f">= {target:,}", figure >= target)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rebuild_lines, heat_lines = [], []
    wrong = []
    for name, (xid, symbol, files) in RECORDINGS.items():
        with tempfile.TemporaryDirectory() as lake:
            import_capture([SHARED_DATA / "binance-hftbacktest" / f for f in files], xid, lake)
            raw = read_raw(lake, 0, 1 << 62, exchanges=[xid])
        r = Rebuild(get_exchange(xid), symbol)
        mine = r.mine(raw)
        rows = list(r.rows(mine))
        columns = BookRows.of(mine)
        levels = dict_book(rows)
        ran, by_row = rebuild(xid, symbol, columns), rebuild_row_by_row(xid, symbol, rows)
        if not ran.valid or ran.checkpoint().to_json() != by_row.checkpoint().to_json():
            wrong.append(name)
        t_rebuild, t_dict, cpu = interleaved((rebuild, (xid, symbol, columns)), (dict_book, (rows,)), args.repeat)
        t_rows, _, _ = interleaved((rebuild_row_by_row, (xid, symbol, rows)), (dict_book, (rows,)), 1)
        rate = levels / t_rebuild
        emit(f"{name} rebuild", rate, "level updates/s", levels / t_dict, REBUILD_TARGET)
        rebuild_lines.append(
            f"{name:28} {levels:>9,} {rate:>12,.0f} {levels / cpu:>12,.0f} {levels / t_dict:>13,.0f}"
            f" {t_dict / t_rebuild:>5.1f}x {levels / t_rows:>12,.0f} {REBUILD_TARGET:>11,}"
            f" {verdict(rate, REBUILD_TARGET):>6}"
        )
        # the heatmap on the clock the assets use (the exchange's), the reference on the same clock
        clocked = list(r.rows(mine.with_columns(recv_ts=book_clock(mine, get_exchange(xid)))))
        n = sampled(xid, symbol, mine)
        n_ref = dict_heatmap(clocked)
        t_heat, t_ref, cpu = interleaved((sampled, (xid, symbol, mine)), (dict_heatmap, (clocked,)), args.repeat)
        rate, ref_rate = n / t_heat, n_ref / t_ref
        emit(f"{name} heatmap", rate, "samples/s", ref_rate, HEATMAP_TARGET)
        heat_lines.append(
            f"{name:28} {n:>8,} {rate:>12,.0f} {n / cpu:>12,.0f} {n_ref:>8,} {ref_rate:>13,.0f}"
            f" {rate / ref_rate:>5.1f}x {HEATMAP_TARGET:>11,} {verdict(rate, HEATMAP_TARGET):>6}"
        )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (per CPU-second: the process's time)")
    print(
        f"{'book rebuild':28} {'levels':>9} {'rebuild /s':>12} {'/ CPU-s':>12} {'dict book /s':>13} {'vs':>6}"
        f" {'row by row':>12} {'target /s':>11} {'':>6}"
    )
    print("\n".join(rebuild_lines))
    print(
        f"\n{'book heatmap':28} {'samples':>8} {'samples /s':>12} {'/ CPU-s':>12} {'ref n':>8} {'dict ref /s':>13}"
        f" {'vs':>6} {'target /s':>11} {'':>6}"
    )
    print("\n".join(heat_lines))
    if wrong:
        print(f"the book rebuilt in runs differs from the one rebuilt row by row: {', '.join(wrong)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
