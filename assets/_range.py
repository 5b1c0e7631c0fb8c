"""The lake as a run over consecutive hours reads it: each hour's window of raw frames and events overlaps the next
one's (an hour reads receive minutes [H - lateness, H + 1h + lateness)), so a range keeps what it read and asks the
lake only for the minutes past what it has: each raw file is read, and each frame normalized, once for the whole
range. The 1m candles an hour writes are kept for the longer candles of the hours after it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Generic, TypeVar

import polars as pl

from mdplatform.lake import list_exchanges, read_events, read_raw
from mdplatform.schemas import CANDLES
from mdplatform.transforms import (
    HOUR_NS,
    MINUTE_NS,
    NormalizedRaw,
    Normalizer,
    TradesWindow,
    floor_ns,
    normalize_raw,
    registry_normalizer,
    registry_trade_channels,
)
from mdplatform.warehouse import Warehouse, partition_path, read_partition

from ._settings import Settings

if TYPE_CHECKING:
    from ._hourly import TradesInputs

__all__ = ["HourRange", "trade_channels"]

T = TypeVar("T")

#: hours of 1m candles kept in memory: the longest candle (1d) reaches back a day
_CANDLE_HOURS_KEPT = 25
#: rows (normalized trades, or events) a span read ahead holds about, and the hours it holds at most (an hour's
#: window of them is a slice: ``_received_in``, ``window_trades``)
_SPAN_ROWS = 200_000
_SPAN_HOURS = 24
#: rows read ahead at most (about what ``_compute_trades`` takes at once); what is under way stays within
#: ``_SPAN_HOURS`` of the last span read
_AHEAD_ROWS = 1_000_000
#: seconds between two catalogs a run publishes: each costs tens of milliseconds (a new file, its views, a
#: checkpoint), which a month's range paid twice a day of hours (60 times, 5 s); readers see a new day at most this
#: late while a long range runs, and everything once it ends
_PUBLISH_EVERY_S = 10.0


def trade_channels(exchanges: list[str]) -> list[str] | None:
    """Channels carrying trades for these exchanges (None: read everything, some exchange is unknown)."""
    known = registry_trade_channels()
    channels: set[str] = set()
    for exchange_id in exchanges:
        if exchange_id not in known:
            return None
        channels |= known[exchange_id]
    return sorted(channels)


class _Spans(Generic[T]):
    """What ``read(lo, hi)`` gave for consecutive spans of receive minutes; a window moving forward reads only the
    minutes past the last span, and spans wholly before a window are let go (windows only move forward).

    With ``until``, the spans after the one just read (up to ``until``) are read ahead on a thread while the caller
    works, so the reading and normalizing of the next hours overlap the windows, coverage, candles and writes of
    these: as many spans as hold about ``_AHEAD_ROWS`` rows (those read by their rows, those under way by the rate
    of the last one read), and the thread goes on as each read ends, not only when the caller asks for more (a run
    computes the trades of several hours at once, asking for them in a burst, then writes them: a read-ahead
    refilled only by the asking stood idle while they were written, and the next burst waited for its reads). What
    is under way stays within a day of the last span read: the rate of quiet (or empty) hours must not queue days
    of what may be busy ones. A span is an hour, or with ``size`` (its rows) as many hours (up to a day) as keep
    about ``_SPAN_ROWS`` rows: each read costs milliseconds whatever its rows, which quiet hours, read one at a
    time, paid for each."""

    def __init__(
        self, read: Callable[[int, int], T], until: int | None = None, size: Callable[[T], int] | None = None
    ) -> None:
        self._read = read
        self._until = until
        self._size = size
        self._parts: list[tuple[int, int, T]] = []
        self._ahead: deque[tuple[int, int, Future[T]]] = deque()
        self._pool: ThreadPoolExecutor | None = None
        #: guards ``_ahead`` and ``_end`` (the caller's thread and the reading thread both extend them); a new
        #: generation when the spans read ahead are dropped, so a read of an older one schedules nothing
        self._lock = threading.RLock()
        self._generation = 0
        #: the end of the spans read or under way (None: none yet)
        self._end: int | None = None

    def _step(self, per_hour: float) -> int:
        """The length of the next span to read ahead."""
        if self._size is None:
            return HOUR_NS
        return HOUR_NS * max(1, min(_SPAN_HOURS, int(_SPAN_ROWS / per_hour) if per_hour else _SPAN_HOURS))

    def _read_ahead(self, generation: int | None = None) -> None:
        with self._lock:
            if self._until is None or self._end is None or not self._parts:
                return
            if generation is not None and generation != self._generation:
                return
            if any(f.done() and f.exception() is not None for _, _, f in self._ahead):
                return  # a read failed: its caller gets the error on its turn, nothing after it is read
            # the last span read (the caller's or the thread's), its rate, and the rows of those ahead: read ones
            # by their size, those under way by that rate
            last_start, last_end, last = self._parts[-1]
            rows = 0.0
            for start, end, future in self._ahead:
                if future.done():
                    last_start, last_end, last = start, end, future.result()
                    rows += self._size(last) if self._size is not None else 0
            per_hour = self._size(last) * HOUR_NS / (last_end - last_start) if self._size is not None else 0.0
            rows += sum((end - start) * per_hour / HOUR_NS for start, end, f in self._ahead if not f.done())
            limit = min(self._until, last_end + _SPAN_HOURS * HOUR_NS)
            start = self._end
            while start < limit and rows < _AHEAD_ROWS:
                end = min(limit, start + self._step(per_hour))
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="mdp-read-ahead")
                future = self._pool.submit(self._read, start, end)
                self._ahead.append((start, end, future))
                # when it is read, the thread looks further: its own next task, never inside this loop
                future.add_done_callback(lambda _f, g=self._generation: self._more(g))
                rows += (end - start) * per_hour / HOUR_NS
                start = self._end = end

    def _more(self, generation: int) -> None:
        pool = self._pool
        if pool is not None and generation == self._generation:
            with contextlib.suppress(RuntimeError):  # shut down meanwhile (``close``)
                pool.submit(self._read_ahead, generation)

    def _cancel(self) -> None:
        with self._lock:
            self._generation += 1
            while self._ahead:
                self._ahead.popleft()[2].cancel()
            self._end = self._parts[-1][1] if self._parts else None

    def get(self, lo: int, hi: int) -> list[T]:
        parts = self._parts
        if parts and not parts[0][0] <= lo <= parts[-1][1]:
            self._parts = parts = []  # not the next window of the same run: start again
            self._cancel()
        covered = parts[-1][1] if parts else lo
        while hi > covered:
            with self._lock:
                first = self._ahead.popleft() if self._ahead and self._ahead[0][0] == covered else None
            if first is not None:
                _, end, future = first
                data = future.result()  # no lock held: the thread may need it to go on
            else:
                self._cancel()
                end, data = hi, self._read(covered, hi)
                with self._lock:
                    self._end = end
            parts.append((covered, end, data))
            covered = end
        self._parts = [p for p in parts if p[1] > lo]
        self._read_ahead()
        return [data for start, _, data in self._parts if start < hi]

    def close(self) -> None:
        self._cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _received_in(df: pl.DataFrame, lo: int, hi: int) -> pl.DataFrame:
    """The rows of ``df`` (ordered by ``recv_ts``) received in minutes [lo, hi): a slice found by two binary
    searches (a filter of every row cost a range of quiet hours a millisecond an hour, twice)."""
    if lo % MINUTE_NS or hi % MINUTE_NS:
        raise ValueError("not whole minutes")
    first, end = df.get_column("recv_ts").to_physical().search_sorted(pl.Series([lo, hi]), side="left").to_list()
    return df.slice(first, end - first)


class HourRange:
    """The reads of one run of hours, in order (a fresh one per hour reads just that hour's span). ``hours``: the
    run's hours, when known: the next hour's raw minutes and events are then read ahead while one is worked on
    (``close`` ends that)."""

    def __init__(
        self, settings: Settings, *, normalize: Normalizer = registry_normalizer, hours: list[int] | None = None
    ) -> None:
        self.settings = settings
        self.normalize = normalize
        self.warehouse = Warehouse(settings.warehouse_path, lake=settings.root)
        root = settings.root
        channels = trade_channels(list_exchanges(root))

        def read_trades(lo: int, hi: int) -> NormalizedRaw:
            raw = read_raw(root, lo, hi, channels=channels)
            return normalize_raw(raw, normalize=normalize, skew_ns=settings.skew_ns)

        # what the last hour's window reads: no further
        until = hours[-1] + HOUR_NS + settings.lateness_ns if hours and len(hours) > 1 else None
        self._trades = _Spans(read_trades, until, lambda n: n.trades.height + n.rejects.height)
        self._events = _Spans(lambda lo, hi: read_events(root, lo, hi), until, len)
        self._candles: dict[int, pl.DataFrame] = {}
        #: candles built ahead of their hour's turn (``materialize_candles_hour``): hour -> (candles, trades read)
        self.candles_built: dict[int, tuple[pl.DataFrame, int]] = {}
        #: when this run last published a catalog, and whether it has written since (``published``)
        self._published_at = -float("inf")
        self._publish_later = False
        #: trades and coverage computed ahead of their hour's turn (``materialize_trades_hour``): hour -> (reads,
        #: trades window, coverage)
        self.trades_built: dict[int, tuple[TradesInputs, TradesWindow, pl.DataFrame]] = {}

    def trades(self, lo: int, hi: int) -> list[NormalizedRaw]:
        """The normalized trade frames received in minutes [lo, hi), in receive order (with some received just
        before lo: ``window_trades`` keeps its own read range)."""
        return self._trades.get(lo, hi)

    def events(self, lo: int, hi: int) -> pl.DataFrame:
        """The collector's events received in minutes [lo, hi), ordered by ``recv_ts`` (each span read is: spans
        of consecutive minutes are too, once concatenated)."""
        return _received_in(pl.concat(self._events.get(lo, hi)), lo, hi)

    def candles_1m(self, lo: int, hi: int) -> pl.DataFrame:
        """The stored 1m candles of the hour partitions in [lo, hi): those this run wrote, else the lake's."""
        parts = []
        for hour in range(floor_ns(lo, HOUR_NS), hi, HOUR_NS):
            got = self._candles.get(hour)
            if got is None:
                got = read_partition(partition_path(self.settings.root, "candles", hour), CANDLES)
            if got is not None and got.height:
                parts.append(got.filter(pl.col("timeframe") == "1m"))
        return pl.concat(parts) if parts else pl.DataFrame(schema=CANDLES).filter(pl.col("timeframe") == "1m")

    def candles_written(self, hour: int, candles: pl.DataFrame) -> None:
        self._candles[hour] = candles.filter(pl.col("timeframe") == "1m")
        for old in [h for h in self._candles if h <= hour - _CANDLE_HOURS_KEPT * HOUR_NS]:
            del self._candles[old]
        self.published(hour)

    def close(self) -> None:
        """Ends the reads ahead; publishes the catalog if ``published`` left a change for later."""
        self._trades.close()
        self._events.close()
        if self._publish_later:
            self.warehouse.refresh()
            self._publish_later = False

    def __enter__(self) -> HourRange:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def published(self, hour: int) -> None:
        """An hour's partition files are in the lake: readers' catalog refreshed (a new one only when a day
        folder appeared), at most every ``_PUBLISH_EVERY_S`` seconds: a range publishes what came in between at
        the next hour past that, and at ``close``."""
        if time.monotonic() - self._published_at < _PUBLISH_EVERY_S:
            self._publish_later = True
            return
        if self.warehouse.refresh():
            self._published_at = time.monotonic()
        self._publish_later = False
