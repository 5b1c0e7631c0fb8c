"""Fixed-interval samples of a rebuilt book: metrics, heatmap rows and the intervals with no valid book.

The clock. By default samples sit on **exchange time**: each book frame is placed at the time the exchange stamped
it (``BookRebuilding.book_time_patterns``: Binance ``T``/``E``, OKX ``ts``), the clock trades and candles use, so a
book sample, a trade and a candle of the same instant line up; a frame without one (a REST snapshot) takes the
time of the frame before it (or after it, for the first). The clock never goes back within a book (a running
maximum). ``clock="receive"`` samples on receive time instead.

A window is [start_ns, end_ns) of that clock: frames before start_ns only warm the book up, frames from end_ns on
belong to the next window, which continues from this one's ``BookCheckpoint``.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import polars as pl
import pyarrow as pa

from .._time import MINUTE_NS
from ._checkpoint import BookCheckpoint
from ._heatmap import BOOK_HEATMAP, BookHeatmapSpec, BucketArrays, SampleBuckets, bucket_arrays, heatmap_frame
from ._metrics import DEPTH_BPS, TOP_N, book_metrics, samples_schema
from ._native import first_integers
from ._rebuild import SECOND_NS, InvalidInterval, Rebuild, book_channels, invalid_schema
from ._rows import BookRows, arrow_texts, text_buffers

if TYPE_CHECKING:
    from ._rebuild import Venue

__all__ = ["BookSamples", "Clock", "book_clock", "book_samples", "lake_book_rows", "lake_book_samples", "step_label"]

Clock = Literal["exchange", "receive"]


@dataclass(frozen=True, slots=True)
class BookSamples:
    """``samples`` (``samples_schema``), ``invalid`` intervals (``invalid_schema``), ``heatmap`` rows
    (``BOOK_HEATMAP``, empty without a heatmap spec) and the end state."""

    samples: pl.DataFrame
    invalid: pl.DataFrame
    checkpoint: BookCheckpoint
    heatmap: pl.DataFrame


def step_label(interval_ns: int) -> str:
    """1_000_000_000 -> "1s", 60 s -> "1m"; other intervals in ms ("250ms")."""
    for unit, ns in (("h", 3_600 * SECOND_NS), ("m", 60 * SECOND_NS), ("s", SECOND_NS)):
        if interval_ns % ns == 0:
            return f"{interval_ns // ns}{unit}"
    return f"{interval_ns / 1e6:g}ms"


def book_clock(
    raw: pl.DataFrame, exchange: Venue, clock: Clock = "exchange", *, after_ns: int | None = None
) -> pl.Series:
    """The clock (Int64 ns) of each row of one book's raw rows (module doc), in the rows' order. ``after_ns``: the
    time of the frame before these rows (a checkpoint's), which untimed first rows take and none goes below."""
    return _clock(raw.get_column("recv_ts"), raw.get_column("payload"), None, exchange, clock, after_ns)


def _clock(
    recv_ts: pl.Series,
    payload: pl.Series,
    texts: pa.LargeStringArray | None,
    exchange: Venue,
    clock: Clock,
    after_ns: int | None,
) -> pl.Series:
    """``book_clock`` of the rows' receive times and payloads (``texts``: the payloads as Arrow, when at hand)."""
    recv = recv_ts.cast(pl.Int64)
    if clock == "receive" or recv.is_empty():
        return recv.alias("clock")
    patterns: Sequence[str] = exchange.book_time_patterns
    if not patterns:
        return recv.alias("clock")
    ms = _first_match(payload, texts, patterns)
    if ms.null_count() == len(ms):
        return recv.alias("clock")
    ns = ms.fill_null(strategy="forward") * 1_000_000
    if after_ns is not None:
        ns = ns.fill_null(after_ns).clip(lower_bound=after_ns)
    return ns.fill_null(strategy="backward").cum_max().alias("clock")


#: a pattern ``prefix(\d+)suffix`` whose prefix and suffix are plain characters (no regex syntax), the suffix not
#: starting with a digit
_LITERAL_DIGITS = re.compile(r'([A-Za-z0-9_":, -]+)\(\\d\+\)((?:[A-Za-z_":, -][A-Za-z0-9_":, -]*)?)')


def _first_match(payload: pl.Series, texts: pa.LargeStringArray | None, patterns: Sequence[str]) -> pl.Series:
    """The first of ``patterns`` (regexes with one group of digits) found in each payload, as Int64 (null: none):
    read by compiled code in the Arrow bytes when every pattern is a plain prefix, digits and a suffix and it can
    answer for every row (``_native.first_integers``), else by polars' regexes."""
    parts = [_LITERAL_DIGITS.fullmatch(p) for p in patterns]
    if all(parts) and payload.null_count() == 0:
        arr = texts if texts is not None else arrow_texts(payload)
        offsets, data, base = text_buffers(arr)
        literal = [(m.group(1).encode(), m.group(2).encode()) for m in parts if m is not None]
        got = first_integers(offsets, data, base, len(arr), literal)
        if got is not None:
            values, found = np.frombuffer(got[0], np.int64), np.frombuffer(got[1], np.bool_)
            return pl.Series("ms", pa.array(values, pa.int64(), mask=~found))
    expr = pl.coalesce([pl.col("payload").str.extract(p, 1).cast(pl.Int64) for p in patterns])
    return payload.to_frame("payload").select(expr.alias("ms")).get_column("ms")


def book_samples(
    raw: pl.DataFrame,
    exchange: Venue,
    symbol: str,
    *,
    interval_ns: int = SECOND_NS,
    top_n: int = TOP_N,
    depth_bps: Sequence[int] = DEPTH_BPS,
    start_ns: int | None = None,
    end_ns: int | None = None,
    checkpoint: BookCheckpoint | None = None,
    max_silence_ns: int | None = 60 * SECOND_NS,
    clock: Clock = "exchange",
    heatmap: BookHeatmapSpec | Callable[[float], BookHeatmapSpec] | None = None,
    gaps: Iterable[tuple[int, int, str]] = (),
) -> BookSamples:
    """Rebuild ``symbol``'s book (the exchange's id) from ``raw`` (lake rows in receive order) and sample it every
    ``interval_ns`` of ``clock``.

    Samples sit on the grid of multiples of ``interval_ns`` in [start_ns, end_ns) (defaults: the first book row's
    time, and just after the last one's); invalid intervals are clipped to the window. The sample at ``t`` is the
    book after every row at or before ``t``, taken only while the book is valid (after a gap, samples already
    taken since the last frame in sequence are withdrawn). ``checkpoint``: the previous window's end state (pass
    that window's ``end_ns`` as this one's ``start_ns``); the returned checkpoint continues into the next one.
    ``max_silence_ns``: a book without any frame for this long is not sampled from then until its next frame (an
    interval "silent: ..."; None: never). ``gaps``: (start, end, reason) spans known not observed (the lake's
    ``coverage``: not connected, lost on a crash...): no sample there, each an invalid interval "coverage: reason",
    unless the exchange's sequence bridges it: the first frame after it continued the book in sequence (Binance's
    update ids, OKX's seqId and checksums), which proves nothing was missed (a recording split into files, a
    reconnect with no update in between).
    ``heatmap``: also bucket the book at every sample (``BookSamples.heatmap``); a function of the first sample's
    mid gives the spec when the bucket depends on the price (~1 bp). Rows are labelled with the
    normalized symbol (BASE-QUOTE[-SUFFIX]), as trades and candles are.
    """
    if interval_ns <= 0:
        raise ValueError("interval_ns must be > 0")
    exchange_id = exchange.id
    label = exchange.normalize_symbol(symbol)
    rebuild = Rebuild(exchange, symbol, checkpoint=checkpoint, start_ns=start_ns)
    mine = raw.filter(pl.col("symbol") == symbol, pl.col("channel").is_in(list(rebuild.channels)))
    if "exchange" in mine.columns:
        mine = mine.filter(pl.col("exchange") == exchange_id)
    after = checkpoint.recv_ns if checkpoint is not None else None
    payloads = arrow_texts(mine.get_column("payload"))
    at_ns = _clock(mine.get_column("recv_ts"), mine.get_column("payload"), payloads, exchange, clock, after).to_numpy()
    if start_ns is None:
        start_ns = int(at_ns[0]) if len(at_ns) else (after if after is not None else 0)
    keep = None
    if end_ns is None:
        end_ns = int(at_ns[-1]) + 1 if len(at_ns) else start_ns
    else:
        keep = at_ns < end_ns  # later rows belong to the next window
    if checkpoint is not None:
        later = at_ns >= start_ns  # earlier ones are in the checkpoint already
        keep = later if keep is None else keep & later
    rows = BookRows(at_ns.tolist(), arrow_texts(mine.get_column("channel")), payloads)
    if keep is not None and not keep.all():
        rows, at_ns = rows.select(keep), at_ns[keep]
    clocks = rows.at
    n = len(rows)
    schema = samples_schema(depth_bps)
    out = _Columns(schema)
    taken = out.ts
    chained = [False] * n  # whether each row continued a valid book in sequence
    hm: list[SampleBuckets] = []  # each sample's buckets
    t = -(-start_ns // interval_ns) * interval_ns
    cached_version = -1
    metrics: dict[str, Any] | None = None
    buckets: BucketArrays | None = None
    spec = heatmap if isinstance(heatmap, BookHeatmapSpec) else None
    silence = max_silence_ns if max_silence_ns is not None else 1 << 62
    last = after  # the last book row's time
    silent: list[InvalidInterval] = []
    silent_reason = f"silent: no book frame for {silence / SECOND_NS:g} s"
    # runs of rows fed between two samples end where the clock reaches the next sample (the running maximum: the
    # receive clock may step back) and at a row a silence precedes, which goes through the row-by-row path
    reach = np.maximum.accumulate(at_ns).tolist() if n else []
    breaks = [0, *(np.flatnonzero(np.diff(at_ns) > silence) + 1).tolist(), n]
    next_break = 0

    def take(at: int) -> None:
        nonlocal cached_version, metrics, buckets, spec
        if not rebuild.valid or (last is not None and at >= last + silence):
            return
        if cached_version != rebuild.version:
            book = rebuild.book
            metrics = book_metrics(book, top_n=top_n, depth_bps=depth_bps)
            if heatmap is not None and metrics is not None:
                if spec is None:
                    spec = cast("Callable[[float], BookHeatmapSpec]", heatmap)(metrics["mid"])
                buckets = bucket_arrays(book, spec)
            cached_version = rebuild.version
        if metrics is not None:
            out.append(at, last, metrics)
            if buckets is not None:
                hm.append((at, buckets))

    i = 0
    while i < n:
        at = clocks[i]
        while t < at and t < end_ns:
            take(t)
            t += interval_ns
        # the rows up to the next sample that continue the valid book in sequence, in one run
        # (``Rebuild.feed_run``): each of them would leave the book valid, add no interval and withdraw no sample
        while breaks[next_break] < i:
            next_break += 1
        stop = min(bisect_right(reach, t, i) if t < end_ns else n, breaks[next_break])
        ran = rebuild.feed_run(rows, i, stop)
        if ran > i:
            chained[i:ran] = [True] * (ran - i)
            last = clocks[ran - 1]
            i = ran
            continue
        was_valid = rebuild.valid
        rebuild.feed(*rows.row(i))
        chained[i] = was_valid and rebuild.valid
        since = rebuild.invalid_since
        while taken and since is not None and taken[-1] >= since:
            dropped = out.pop()  # taken after the frames a gap lost had arrived: not the exchange's book
            if hm and hm[-1][0] == dropped:
                hm.pop()
        if was_valid and last is not None and at - last > silence and (since is None or since > last + silence):
            silent.append(InvalidInterval(last + silence, at, silent_reason))
        last = at
        i += 1
    while t < end_ns:
        take(t)
        t += interval_ns
    if rebuild.valid and last is not None and end_ns > last + silence:
        silent.append(InvalidInterval(last + silence, end_ns, silent_reason))

    rebuilt = [iv for iv in rebuild.close(end_ns) + silent if iv.end_ns > start_ns]
    # coverage gaps count where the rebuild itself had a valid book (elsewhere the book is invalid already) and
    # its sequence does not bridge them
    lost = [
        g
        for g in _minus(
            sorted((max(a, start_ns), min(b, end_ns), f"coverage: {why}") for a, b, why in gaps),
            [(iv.start_ns, iv.end_ns) for iv in rebuilt],
        )
        if not _bridged(g[1], clocks, chained)
    ]
    samples = out.frame(exchange_id, label)
    hm_df = heatmap_frame(
        hm,
        exchange=exchange_id,
        symbol=label,
        bucket=spec.bucket if spec is not None else Decimal(0),
        step=step_label(interval_ns),
    )
    if lost:
        inside = pl.any_horizontal([pl.col("ts").is_between(a, b, closed="left") for a, b, _ in lost])
        samples = samples.filter(~inside)
        t_ns = pl.col("ts").dt.epoch("ns")
        hm_df = hm_df.filter(~pl.any_horizontal([t_ns.is_between(a, b, closed="left") for a, b, _ in lost]))
    samples = samples.with_columns(pl.col("ts", "book_ts").cast(schema["ts"]))
    intervals = [
        InvalidInterval(max(iv.start_ns, start_ns), iv.end_ns, iv.reason)
        for iv in rebuilt  # rows before start_ns only warm the book up
    ] + [InvalidInterval(a, b, why) for a, b, why in lost]
    intervals.sort(key=lambda iv: (iv.start_ns, iv.end_ns))
    invalid = pl.DataFrame(
        {
            "exchange": [exchange_id] * len(intervals),
            "symbol": [label] * len(intervals),
            "start": [iv.start_ns for iv in intervals],
            "end": [iv.end_ns for iv in intervals],
            "reason": [iv.reason for iv in intervals],
        },
        schema={**invalid_schema(), "start": pl.Int64(), "end": pl.Int64()},
    ).with_columns(pl.col("start", "end").cast(pl.Datetime("ns", "UTC")))
    return BookSamples(samples, invalid, rebuild.checkpoint(), hm_df if heatmap is not None else _empty_heatmap())


class _Columns:
    """The samples taken so far, column by column (each list column as its values end to end and offsets): cheap
    to append to, to withdraw the last from, and to turn into a frame. ``exchange`` and ``symbol``, the same on
    every row, are added by ``frame``."""

    def __init__(self, schema: dict[str, pl.DataType]) -> None:
        self.schema = schema
        self.ts: list[int] = []
        self.book_ts: list[int | None] = []
        self.scalars: dict[str, list[Any]] = {}
        self.lists: dict[str, tuple[list[float], list[int]]] = {}
        for name, dtype in schema.items():
            if isinstance(dtype, pl.List):
                self.lists[name] = ([], [0])
            elif name not in ("ts", "book_ts", "exchange", "symbol"):
                self.scalars[name] = []

    def append(self, ts: int, book_ts: int | None, metrics: dict[str, Any]) -> None:
        self.ts.append(ts)
        self.book_ts.append(book_ts)
        for name, col in self.scalars.items():
            col.append(metrics[name])
        for name, (values, offsets) in self.lists.items():
            values.extend(metrics[name])
            offsets.append(len(values))

    def pop(self) -> int:
        """Withdraw the last sample; its ts."""
        self.book_ts.pop()
        for col in self.scalars.values():
            col.pop()
        for values, offsets in self.lists.values():
            offsets.pop()
            del values[offsets[-1] :]
        return self.ts.pop()

    def frame(self, exchange: str, symbol: str) -> pl.DataFrame:
        """``samples_schema`` rows (ts and book_ts as Int64 ns)."""
        cols: dict[str, pl.Series] = {
            "ts": pl.Series("ts", self.ts, pl.Int64()),
            "exchange": pl.Series("exchange", [exchange] * len(self.ts), pl.String()),
            "symbol": pl.Series("symbol", [symbol] * len(self.ts), pl.String()),
            "book_ts": pl.Series("book_ts", self.book_ts, pl.Int64()),
        }
        for name, col in self.scalars.items():
            cols[name] = pl.Series(name, col, self.schema[name])
        for name, (values, offsets) in self.lists.items():
            lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, pa.float64()))
            cols[name] = pl.Series(name, lists).cast(self.schema[name])
        return pl.DataFrame([cols[name] for name in self.schema])


def _bridged(end: int, clocks: list[int], chained: list[bool]) -> bool:
    """Whether the first frame at or after ``end`` continued the book in sequence."""
    i = bisect_left(clocks, end)
    return i < len(clocks) and chained[i]


def _minus(spans: list[tuple[int, int, str]], cut: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """The parts of ``spans`` (start, end, reason) outside every [start, end) of ``cut``; empty ones dropped."""
    out: list[tuple[int, int, str]] = []
    for a, b, why in spans:
        pieces = [(a, b)]
        for c, d in cut:
            pieces = [p for x, y in pieces for p in ((x, min(y, c)), (max(x, d), y)) if p[1] > p[0]]
        out.extend((x, y, why) for x, y in pieces)
    return out


def _empty_heatmap() -> pl.DataFrame:
    return pl.DataFrame(schema=BOOK_HEATMAP)


def lake_book_rows(
    root: str | None, exchange: Venue, start_ns: int, end_ns: int, *, lateness_ns: int = 10 * SECOND_NS
) -> pl.DataFrame:
    """The raw rows of every book of ``exchange`` a window [start_ns, end_ns) of the exchange clock needs: its
    book channels received in [start_ns - lateness_ns, end_ns + lateness_ns) (see ``lake_book_samples``), read
    once for all the exchange's symbols."""
    from ..lake import read_raw

    # the lake reads whole receive minutes starting in the range: widen the start to its minute, or a frame the
    # exchange stamped after start_ns but received (by a clock behind the exchange's) before it would be missed
    first = (start_ns - lateness_ns) // MINUTE_NS * MINUTE_NS
    channels = sorted(book_channels(exchange))
    return read_raw(root, first, end_ns + lateness_ns, exchanges=[exchange.id], channels=channels)


def lake_book_samples(
    root: str | None,
    exchange: Venue,
    symbol: str,
    start_ns: int,
    end_ns: int,
    *,
    checkpoint: BookCheckpoint | None = None,
    lateness_ns: int = 10 * SECOND_NS,
    interval_ns: int = SECOND_NS,
    top_n: int = TOP_N,
    depth_bps: Sequence[int] = DEPTH_BPS,
    max_silence_ns: int | None = 60 * SECOND_NS,
    clock: Clock = "exchange",
    heatmap: BookHeatmapSpec | Callable[[float], BookHeatmapSpec] | None = None,
    gaps: Iterable[tuple[int, int, str]] = (),
) -> BookSamples:
    """``book_samples`` of the window [start_ns, end_ns) of ``clock``, read from the lake's raw layer at ``root``
    (the book channels of ``exchange``, received in [start_ns - lateness_ns, end_ns + lateness_ns): on the
    exchange clock a frame lands after its time when the collector lagged, and before it when the collector's clock
    is behind the exchange's: 1.3 s in the Binance recordings), continuing from
    ``checkpoint`` (the previous window's). Without one the window's book is invalid until its first snapshot: it
    never replays earlier windows."""
    raw = lake_book_rows(root, exchange, start_ns, end_ns, lateness_ns=lateness_ns)
    return book_samples(
        raw.filter(pl.col("symbol") == symbol),
        exchange,
        symbol,
        interval_ns=interval_ns,
        top_n=top_n,
        depth_bps=depth_bps,
        start_ns=start_ns,
        end_ns=end_ns,
        checkpoint=checkpoint,
        max_silence_ns=max_silence_ns,
        clock=clock,
        heatmap=heatmap,
        gaps=gaps,
    )
