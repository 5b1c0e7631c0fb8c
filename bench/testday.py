"""The test day: the bundled BTCUSDT spot recording tiled end to end into N hours, as a capture or straight as a lake.

The recording (demo/data/binance-spot/btcusdt_20240808.gz + btcusdt_20240809.gz: 2024-08-08 23:54:13 .. 08-09
00:05:04 UTC, one connection across both files, streams depth@100ms, bookTicker and trade, one inline REST
snapshot) is repeated every *period*, its span rounded up to a whole minute (11 min). Copy k shifts:

- receive times by k periods, exchange times (``E``, ``T``) by the same in ms: minutes keep their phase;
- trade ids (``t``) by k x the id span (19,904), so ids run on contiguously from copy to copy;
- depth update ids (``U``, ``u``, bookTicker ``u``, the snapshot's ``lastUpdateId``) by k x the depth chain's span,
  so each copy's first diff continues the previous copy's last one.

Everything else stays byte for byte. Enough copies are made to cover N whole exchange hours from the first whole
hour (2024-08-09 00:00 UTC) plus the platform's lateness (15 min) after them, so the last hour's read window is as
full as any other's: 24 hours are 133 copies, 13,243,342 frames, 2,647,232 trades. A tiled day keeps ids and
times continuous but is not a valid book (prices jump between copies): books are measured on the recordings.

Two ways to land it:

- ``capture``: a gzip capture in the recording's own format (``<recv ns> <frame>``, snapshots inline), for
  ``mdp import-capture FILE --exchange binance`` (the faithful way: about 100 s of CPU for 24 hours);
- ``lake``: straight into a lake through the library's own ``RawWriter`` (its layout, part names and landing log;
  about 2.5x cheaper than the import). With ``--channels all`` (the default) the raw rows are the ones an import
  of the capture lands, row for row, under the same file names; with ``--channels trade`` only the trade frames
  (a trade-only subscription: ``seq`` counts them), for long ranges (7, 30 days), optionally thinned
  (``--density``: the kept trades spread evenly and renumbered so ids stay contiguous: the others did not happen;
  0 leaves a connection with events and no frames). What differs from an import is the events: ``alive`` every
  5 s of receive time from the connection's open, as the live collector's pings are (an import can only put one at
  the first frame after every 5 s), so a thinned market stays observed; no book events (``synced``); the
  subscriptions restated with each minute's first ``alive``. The connection is ``capture:testday``, as an import
  of ``testday.gz`` names it. ``--layout hour`` writes one file per table and hour (through ``HourWriter``, the
  layout ``mdp lake compact`` leaves and an import writes) instead of one per minute: history older than a few
  hours is in that layout once compacted, and long ranges land in seconds instead of minutes (a month is 43,200
  minute files per table).

A whole test day (every channel, every trade) is written once and copied from a cache in the temp folder after
that (``cached_lake``, keyed by the hours and by this file's and the lake writer's code): two benches land it.

    .venv/bin/python bench/testday.py capture OUT.gz [--hours 24]
    .venv/bin/python bench/testday.py lake ROOT [--hours 24] [--channels all|trade] [--density 1] [--layout minute|hour]

Both print a ``TESTDAY {json}`` line (copies, frames, trades, and the hours' ``from``/``to`` for ``mdp
materialize``).
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import itertools
import json
import queue
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
SOURCES = (REPO / "demo/data/binance-spot/btcusdt_20240808.gz", REPO / "demo/data/binance-spot/btcusdt_20240809.gz")
SECOND_NS = 10**9
MINUTE_NS = 60 * SECOND_NS
HOUR_NS = 60 * MINUTE_NS
#: the platform's default lateness (assets/_settings.py, MDP_LATENESS_S): raw minutes read after an hour's end
LATENESS_NS = 15 * MINUTE_NS
#: the live collector's ping interval: one ``alive`` event per 5 s (mdplatform.collector, liveness_interval_s)
ALIVE_EVERY_NS = 5 * SECOND_NS
#: the connection id an import of ``testday.gz`` gives its frames (mdplatform.capture.capture_id)
CONN_ID = "capture:testday"
EXCHANGE = "binance"
SYMBOL = "BTCUSDT"

#: the numbers a copy shifts, by kind: receive time (ns), exchange time (ms), trade id, depth update id
RECV, EXCH_MS, TRADE_ID, UPDATE_ID = range(4)
_KINDS = {b"E": EXCH_MS, b"T": EXCH_MS, b"t": TRADE_ID, b"U": UPDATE_ID, b"u": UPDATE_ID, b"lastUpdateId": UPDATE_ID}
_FIELD = re.compile(rb'"(E|T|t|U|u|lastUpdateId)":(\d+)')
_TRADE = b'{"stream":"btcusdt@trade"'
_DEPTH = b'{"stream":"btcusdt@depth'

__all__ = ["Plan", "Template", "plan", "template", "write_capture", "write_gzip", "write_lake"]


@dataclass(frozen=True, slots=True)
class Template:
    """The recording split into formats and numbers: line i is ``fmts[i] % values[starts[i]:starts[i + 1]]``, each
    value of kind ``kinds[j]`` (``RECV``...)."""

    fmts: list[bytes]
    starts: np.ndarray
    values: np.ndarray
    kinds: np.ndarray
    #: indices of the trade lines
    trades: np.ndarray
    first_recv: int
    last_recv: int
    period: int
    trade_id_span: int
    update_id_span: int
    first_trade_id: int

    @property
    def lines(self) -> int:
        return len(self.fmts)

    def shifts(self, copy: int) -> np.ndarray:
        """What copy ``copy`` adds to each kind of number."""
        return np.array(
            [copy * self.period, copy * self.period // 10**6, copy * self.trade_id_span, copy * self.update_id_span],
            dtype=np.int64,
        )


def _source_lines() -> Iterator[bytes]:
    for path in SOURCES:
        with gzip.open(path, "rb") as fh:
            for line in fh:
                yield line.rstrip(b"\n")


def template() -> Template:
    """Parse the recording once (about a second)."""
    fmts: list[bytes] = []
    starts = [0]
    values: list[int] = []
    kinds: list[int] = []
    trades: list[int] = []
    trade_ids: list[int] = []
    depth_ids: list[tuple[int, int]] = []
    for i, line in enumerate(_source_lines()):
        recv, _, frame = line.partition(b" ")
        values.append(int(recv))
        kinds.append(RECV)
        parts = [b"%d "]
        pos = 0
        for m in _FIELD.finditer(frame):
            parts.append(frame[pos : m.start(2)].replace(b"%", b"%%"))
            parts.append(b"%d")
            values.append(int(m.group(2)))
            kinds.append(_KINDS[m.group(1)])
            pos = m.end(2)
        parts.append(frame[pos:].replace(b"%", b"%%") + b"\n")
        fmts.append(b"".join(parts))
        starts.append(len(values))
        if frame.startswith(_TRADE):
            trades.append(i)
            t = re.search(rb'"t":(\d+)', frame)
            assert t is not None
            trade_ids.append(int(t.group(1)))
        elif frame.startswith(_DEPTH):
            ids = re.search(rb'"U":(\d+),"u":(\d+)', frame)
            assert ids is not None
            depth_ids.append((int(ids.group(1)), int(ids.group(2))))
    recvs = [values[s] for s in starts[:-1]]
    if recvs != sorted(recvs):
        raise ValueError("the recording is not in receive order")
    if trade_ids != list(range(trade_ids[0], trade_ids[0] + len(trade_ids))):
        raise ValueError("the recording's trade ids are not contiguous")
    if any(b[0] != a[1] + 1 for a, b in itertools.pairwise(depth_ids)):
        raise ValueError("the recording's depth chain has a gap")
    span = recvs[-1] - recvs[0]
    return Template(
        fmts=fmts,
        starts=np.array(starts, dtype=np.int64),
        values=np.array(values, dtype=np.int64),
        kinds=np.array(kinds, dtype=np.int8),
        trades=np.array(trades, dtype=np.int64),
        first_recv=recvs[0],
        last_recv=recvs[-1],
        # the next whole minute above the span: copy k+1 starts after copy k ends, and keeps the minutes' phase
        period=(span // MINUTE_NS + 1) * MINUTE_NS,
        trade_id_span=len(trade_ids),
        update_id_span=depth_ids[-1][1] - depth_ids[0][0] + 1,
        first_trade_id=trade_ids[0],
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """``copies`` of the recording covering the exchange hours [first_hour, first_hour + hours x 1h) whole, plus the
    lateness after them."""

    hours: int
    first_hour: int
    copies: int

    @property
    def end(self) -> int:
        return self.first_hour + self.hours * HOUR_NS

    def range_text(self) -> tuple[str, str]:
        """``--from`` and ``--to`` of ``mdp materialize`` for the planned hours."""
        fmt = "%Y-%m-%dT%H"
        return time.strftime(fmt, time.gmtime(self.first_hour // SECOND_NS)), time.strftime(
            fmt, time.gmtime(self.end // SECOND_NS)
        )


def plan(tpl: Template, hours: int) -> Plan:
    first_hour = tpl.first_recv - tpl.first_recv % HOUR_NS + HOUR_NS
    need = first_hour + hours * HOUR_NS + LATENESS_NS
    copies = 1
    while tpl.last_recv + (copies - 1) * tpl.period < need:
        copies += 1
    return Plan(hours, first_hour, copies)


def _copy_lines(tpl: Template, copy: int) -> list[bytes]:
    shifted = (tpl.values + tpl.shifts(copy)[tpl.kinds]).tolist()
    s = tpl.starts.tolist()
    return [fmt % tuple(shifted[s[i] : s[i + 1]]) for i, fmt in enumerate(tpl.fmts)]


@dataclass(frozen=True, slots=True)
class CaptureStats:
    plan: Plan
    frames: int
    trades: int
    bytes: int
    seconds: float


def write_capture(out: Path, hours: int = 24, *, level: int = 1, tpl: Template | None = None) -> CaptureStats:
    """The tiled capture as a gzip file (a copy at a time, compressed on a second thread: ``write_gzip``)."""
    tpl = tpl or template()
    p = plan(tpl, hours)
    t0 = time.perf_counter()
    size = write_gzip(out, (b"".join(_copy_lines(tpl, k)) for k in range(p.copies)), level=level)
    return CaptureStats(p, tpl.lines * p.copies, len(tpl.trades) * p.copies, size, time.perf_counter() - t0)


def write_gzip(out: Path | str, chunks: Iterable[bytes], *, level: int = 1) -> int:
    """``chunks`` into the gzip file ``out``, each made here while a thread compresses the one before (zlib
    releases the GIL); returns the uncompressed bytes."""
    queued: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
    failed: list[BaseException] = []

    def compress() -> None:
        try:
            with gzip.open(out, "wb", compresslevel=level) as gz:
                while (chunk := queued.get()) is not None:
                    gz.write(chunk)
        except BaseException as exc:
            failed.append(exc)
            while queued.get() is not None:  # let the producer finish
                pass

    writer = threading.Thread(target=compress, name="testday-gzip")
    writer.start()
    size = 0
    try:
        for chunk in chunks:
            size += len(chunk)
            queued.put(chunk)
    finally:
        queued.put(None)
        writer.join()
    if failed:
        raise failed[0]
    return size


@dataclass(frozen=True, slots=True)
class LakeStats:
    plan: Plan
    frames: int
    trades: int
    events: int
    raw_files: int
    event_files: int
    seconds: float


def _kept(n: int, density: Fraction) -> np.ndarray:
    """Which of ``n`` trades are kept at ``density``, spread evenly (a boolean mask)."""
    i = np.arange(n, dtype=np.int64)
    return ((i + 1) * density.numerator // density.denominator) > (i * density.numerator // density.denominator)


#: where whole test days (every channel, every trade) are kept between benches: ``materialize`` and ``compaction``
#: both land the same 24 hours (48 s), the second copies the first's
CACHE = Path(tempfile.gettempdir()) / "mdp-bench-testday"


def _cache_key(hours: int, writer_id: str) -> str:
    """What a cached lake was made from: the hours, the writer id, this file and the lake writer's code."""
    digest = hashlib.sha256(f"{hours} {writer_id}".encode())
    for path in [Path(__file__), *sorted((REPO / "mdplatform/lake").glob("*.py")), *SOURCES]:
        digest.update(path.read_bytes() if path.suffix == ".py" else str(path.stat().st_size).encode())
    return digest.hexdigest()[:16]


def cached_lake(root: str, hours: int = 24, *, writer_id: str = "capture-testday") -> LakeStats:
    """``write_lake(root, hours)`` (every channel, every trade), copied from the cache when the same day was
    written with the same code before (``seconds`` is then the copy's); the first one made is kept there (one
    at a time)."""
    key = _cache_key(hours, writer_id)
    kept = CACHE / key
    t0 = time.perf_counter()
    if not (kept / "stats.json").exists():
        shutil.rmtree(CACHE, ignore_errors=True)
        made = write_lake(str(kept / "lake"), hours, writer_id=writer_id)
        fields = {f.name: getattr(made, f.name) for f in dataclasses.fields(made) if f.name != "plan"}
        (kept / "stats.json").write_text(json.dumps(fields))
    shutil.copytree(kept / "lake", root, dirs_exist_ok=True)
    fields = json.loads((kept / "stats.json").read_text())
    return LakeStats(plan(template(), hours), **{**fields, "seconds": time.perf_counter() - t0})


class _HourRows:
    """``RawWriter``'s calls that ``write_lake`` makes, onto an ``HourWriter``: the rows of each hour land in one
    file per table (the layout ``mdp lake compact`` leaves and an import writes), not one per minute."""

    def __init__(self, root: str, writer_id: str) -> None:
        from mdplatform.lake import HourWriter

        self._w = HourWriter(root, writer_id)
        self._rows: list[list[object]] = [[] for _ in range(7)]
        self._hour = 0
        self.stats = self._w.stats

    def append(self, recv: int, exchange: str, channel: str, symbol: str, conn: str, seq: int, frame: str) -> None:
        for column, value in zip(self._rows, (recv, exchange, channel, symbol, conn, seq, frame), strict=True):
            column.append(value)

    def event(self, *row: Any) -> None:
        self._w.event(*row)

    def flush_closed(self, before: int) -> None:
        """At an hour's end, hand its rows over (one append: one set of row groups per file) and commit it."""
        if before - before % HOUR_NS == self._hour:
            return
        self._hour = before - before % HOUR_NS
        self._hand_over()
        self._w.close_before(self._hour)

    def _hand_over(self) -> None:
        from mdplatform.schemas import RAW_ARROW

        if self._rows[0]:
            self._w.append(pa.Table.from_arrays(self._rows, schema=RAW_ARROW))
            self._rows = [[] for _ in range(7)]

    def __enter__(self) -> _HourRows:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self._hand_over()
            self._w.close()
        else:
            self._w.abort()


def write_lake(
    root: str,
    hours: int = 24,
    *,
    channels: str = "all",
    density: float | Fraction = 1,
    tpl: Template | None = None,
    writer_id: str = "capture-testday",
    layout: str = "minute",
) -> LakeStats:
    """The tiled recording written straight into the lake at ``root`` through ``RawWriter``: every frame
    (``channels="all"``: the raw rows an import of the tiled capture lands, row for row) or the trade frames only
    (``"trade"``), ``density`` of the trades kept (renumbered: ids stay contiguous). The events are a live
    collector's rather than an import's (see the module's docstring)."""
    from mdplatform.exchanges import ALIVE, CLOSE, OPEN, START, SUBSCRIBED, get_exchange
    from mdplatform.lake import RawWriter

    if channels not in ("all", "trade"):
        raise ValueError("channels: 'all' or 'trade'")
    if layout not in ("minute", "hour"):
        raise ValueError("layout: 'minute' or 'hour'")
    tpl = tpl or template()
    p = plan(tpl, hours)
    d = Fraction(density).limit_denominator(10**6)
    if not 0 <= d <= 1:
        raise ValueError("density must be in [0, 1]")
    t0 = time.perf_counter()
    route = get_exchange(EXCHANGE).route
    n = tpl.lines
    is_trade = np.zeros(n, dtype=bool)
    is_trade[tpl.trades] = True
    keep = np.ones(n, dtype=bool) if channels == "all" else is_trade.copy()
    keep[tpl.trades] &= _kept(len(tpl.trades), d)
    lines = np.flatnonzero(keep)
    # per kept line: its frame's format (without "<recv> " and the newline), its route (a REST snapshot lands as the
    # collector lands one), and where its exchange time E is among its numbers (-1: none)
    fmts: list[str] = []
    routes: list[tuple[str, str]] = []
    e_at: list[int] = []
    for i in lines.tolist():
        frame_fmt = tpl.fmts[i][3:-1].decode()
        fmts.append(frame_fmt)
        rest = frame_fmt.startswith('{"lastUpdateId"')
        routes.append(("depthSnapshot", SYMBOL) if rest else route(frame_fmt))
        pos = frame_fmt.find('"E":%d')
        e_at.append(frame_fmt.count("%d", 0, pos) if pos >= 0 else -1)
    starts, stops = tpl.starts[lines], tpl.starts[lines + 1]
    # the kept trades renumbered: contiguous ids whatever the density
    line_of_value = np.repeat(np.arange(n), np.diff(tpl.starts))
    kept_trade_values = np.flatnonzero((tpl.kinds == TRADE_ID) & keep[line_of_value])
    values = tpl.values.copy()
    values[kept_trade_values] = tpl.first_trade_id + np.arange(len(kept_trade_values))
    kept_trades = len(kept_trade_values)
    # only the kept lines' values, shifted per copy (a thinned month would convert every line's 3,930 times)
    lens = stops - starts
    bounds = np.concatenate([[0], np.cumsum(lens)])
    taken = np.arange(bounds[-1]) - np.repeat(bounds[:-1] - starts, lens)
    values, kinds = values[taken], tpl.kinds[taken]
    streams = sorted({r for r in routes if r[0] != "depthSnapshot"}) or [("trade", SYMBOL)]
    open_ns = tpl.first_recv
    events = 0

    with RawWriter(root, writer_id=writer_id) if layout == "minute" else _HourRows(root, writer_id) as w:

        def event(
            at: int,
            kind: str,
            stream: tuple[str, str] = ("", ""),
            newest: tuple[int, int] | None = None,
            detail: str = "",
            *,
            seq: int,
        ) -> None:
            nonlocal events
            ex, fr = newest if newest is not None else (None, None)
            w.event(at, EXCHANGE, CONN_ID, kind, stream[0], stream[1], seq, ex, fr, detail)
            events += 1

        event(open_ns, OPEN, detail="capture testday.gz", seq=0)
        for stream in streams:  # named in the URL: subscribed from the connection's start
            event(open_ns, SUBSCRIBED, stream, seq=0)
        seq = rest_seq = 0
        newest: tuple[int, int] | None = None  # (exchange ts ns, its frame's recv ns)
        next_alive = open_ns + ALIVE_EVERY_NS
        stated_minute = open_ns - open_ns % MINUTE_NS
        flushed = open_ns
        end_recv = tpl.last_recv + (p.copies - 1) * tpl.period

        def alive_until(t: int) -> None:
            """``alive`` rows for the pings sent before ``t`` (the subscriptions restated with a minute's first)."""
            nonlocal next_alive, stated_minute
            while next_alive < t:
                minute = next_alive - next_alive % MINUTE_NS
                if minute != stated_minute:
                    stated_minute = minute
                    for stream in streams:
                        event(next_alive, SUBSCRIBED, stream, seq=seq)
                event(next_alive, ALIVE, newest=newest, seq=seq)
                next_alive += ALIVE_EVERY_NS

        s_list, e_list = bounds[:-1].tolist(), bounds[1:].tolist()
        for k in range(p.copies):
            shifts = tpl.shifts(k)
            shifts[TRADE_ID] = k * kept_trades
            shifted = (values + shifts[kinds]).tolist()
            for fmt, (channel, symbol), a, b, e in zip(fmts, routes, s_list, e_list, e_at, strict=True):
                recv = shifted[a]
                if recv >= next_alive:
                    alive_until(recv)
                if recv - flushed >= 5 * MINUTE_NS:  # the minutes before this one are done: bounded memory
                    w.flush_closed(recv - recv % MINUTE_NS)
                    flushed = recv
                frame = fmt % tuple(shifted[a + 1 : b])
                if channel == "depthSnapshot":
                    rest_seq += 1
                    w.append(recv, EXCHANGE, channel, symbol, CONN_ID + "/rest", rest_seq, frame)
                    continue
                seq += 1
                w.append(recv, EXCHANGE, channel, symbol, CONN_ID, seq, frame)
                if e >= 0:
                    exchange_ns = shifted[a + 1 + e] * 10**6
                    if newest is None:
                        event(recv, START, newest=(exchange_ns, recv), seq=seq)
                    if newest is None or exchange_ns > newest[0]:
                        newest = (exchange_ns, recv)
        alive_until(end_recv + 1)
        event(end_recv, CLOSE, newest=newest, detail="end of capture", seq=seq)
    stats = w.stats
    frames = stats.rows_written
    return LakeStats(
        p,
        frames,
        kept_trades * p.copies,
        events,
        stats.files_written,
        stats.event_files_written,
        time.perf_counter() - t0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    cap = sub.add_parser("capture", help="write the tiled capture (gzip)")
    cap.add_argument("out", type=Path)
    cap.add_argument("--hours", type=int, default=24)
    cap.add_argument("--level", type=int, default=1, help="gzip level (default 1)")
    lake = sub.add_parser("lake", help="write trade frames and events straight into a lake")
    lake.add_argument("root")
    lake.add_argument("--hours", type=int, default=24)
    lake.add_argument("--channels", choices=("all", "trade"), default="all", help="every frame, or trade frames only")
    lake.add_argument("--density", type=float, default=1.0, help="share of the trades kept (default 1)")
    lake.add_argument(
        "--layout",
        choices=("minute", "hour"),
        default="minute",
        help="a file per minute, as the collector lands them (default), or per hour, as compaction leaves them",
    )
    args = parser.parse_args()
    if args.what == "capture":
        c = write_capture(args.out, args.hours, level=args.level)
        lo, hi = c.plan.range_text()
        figures = {"copies": c.plan.copies, "frames": c.frames, "trades": c.trades, "from": lo, "to": hi}
        print(
            f"{args.out}: {c.plan.copies} copies, {c.frames:,} frames, {c.trades:,} trades, {c.bytes / 2**20:,.0f} MB "
            f"({args.out.stat().st_size / 2**20:,.0f} MB gzip) in {c.seconds:.1f} s; hours {lo} .. {hi}"
        )
    else:
        if args.channels == "all" and args.density == 1 and args.layout == "minute":
            s = cached_lake(args.root, args.hours)
        else:
            s = write_lake(args.root, args.hours, channels=args.channels, density=args.density, layout=args.layout)
        lo, hi = s.plan.range_text()
        figures = {"copies": s.plan.copies, "frames": s.frames, "trades": s.trades, "from": lo, "to": hi}
        print(
            f"{args.root}: {s.plan.copies} copies, {s.frames:,} frames, {s.trades:,} trades, {s.events:,} events, "
            f"{s.raw_files:,} raw and {s.event_files:,} events files in {s.seconds:.1f} s; hours {lo} .. {hi}"
        )
    print("TESTDAY " + json.dumps(figures))


if __name__ == "__main__":
    main()
