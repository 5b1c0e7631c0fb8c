"""Offline order-book rebuild from the raw layer, and fixed-interval samples of the rebuilt book.

The rebuild drives the exchange's own ``BookBuilder`` (``Exchange.book_builder``, the sync rules the live session
applies: Binance snapshot + diffs on update ids, OKX ``books`` with seqId and CRC32 checksums); nothing here knows
an exchange. A book is *valid* once a snapshot loaded it, until a sequence gap, a checksum failure or a frame the
builder cannot interpret; while it is not, no sample is taken and the span is reported as
an invalid interval (start, end, reason). A window continues from the previous window's ``BookCheckpoint``.

A reconnect is not itself an invalidation: the builder's rules catch what it lost (Binance: the update-id chain
breaks; OKX: the new connection's snapshot reloads the book, the checksum fails on anything missed). Not covered
yet: disconnections known only from the lake's ``coverage``/events (a quiet dead connection) are not read here.

Speed: rows are fed one by one (``feed``), or in runs (``feed_run``, ``feed_rows``) when the builder has an
``on_raw_run``: Binance's reads the diffs that simply continue its chain straight from their JSON bytes in compiled
code and applies them, and leaves every other row (a snapshot, a gap, anything its reader does not take whole) to
``feed``, so a run changes nothing but what the same rows fed one by one would have changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import polars as pl

from ._checkpoint import BookCheckpoint
from ._l2 import L2Book
from ._rows import BookRows

if TYPE_CHECKING:
    from ..contract import BookBuilder, BookRebuilding

    #: the exchange a book is rebuilt for, handed in by the caller (the book code never looks one up by name)
    Venue = BookRebuilding[L2Book]

__all__ = ["BEFORE_SNAPSHOT", "SECOND_NS", "InvalidInterval", "Rebuild", "book_channels", "invalid_schema"]

SECOND_NS = 1_000_000_000
#: the reason of the interval before a window's first snapshot
BEFORE_SNAPSHOT = "no snapshot yet"


@dataclass(frozen=True, slots=True)
class InvalidInterval:
    """[start_ns, end_ns) of receive time where the book was not valid, and why it became so."""

    start_ns: int
    end_ns: int
    reason: str


def invalid_schema() -> dict[str, pl.DataType]:
    ts = pl.Datetime("ns", "UTC")
    return {"exchange": pl.String(), "symbol": pl.String(), "start": ts, "end": ts, "reason": pl.String()}


def book_channels(exchange: Venue) -> frozenset[str]:
    """The raw channels the exchange's book builder reads."""
    return _builder(exchange, "").channels


def _builder(exchange: Venue, symbol: str) -> BookBuilder[L2Book]:
    return exchange.book_builder(symbol, keep_raw=True)


class Rebuild:
    """One (exchange, symbol) book fed raw rows in receive order (``feed``), with its invalid intervals.

    ``checkpoint``: where the previous window stopped; without one the book is invalid ("no snapshot yet") from the
    first row fed (or ``start_ns``) until a snapshot arrives.
    """

    def __init__(
        self, exchange: Venue, symbol: str, *, checkpoint: BookCheckpoint | None = None, start_ns: int | None = None
    ) -> None:
        exchange_id = exchange.id
        self.venue = exchange
        self.exchange = exchange_id
        self.symbol = symbol
        self.builder = _builder(exchange, symbol)
        #: the raw channels the builder reads
        self.channels = self.builder.channels
        self.invalid: list[InvalidInterval] = []
        #: bumped on every row fed (samples reuse metrics while it is unchanged)
        self.version = 0
        self._since: int | None = start_ns
        self._reason = BEFORE_SNAPSHOT
        self._last_ns = start_ns
        self._started = start_ns is not None or checkpoint is not None
        if checkpoint is not None:
            if (checkpoint.exchange, checkpoint.symbol) != (exchange_id, symbol):
                raise ValueError(f"checkpoint of {checkpoint.exchange} {checkpoint.symbol}, not {exchange_id} {symbol}")
            self._last_ns = checkpoint.recv_ns
            if checkpoint.valid:
                self.builder.restore(checkpoint.bids, checkpoint.asks, checkpoint.state)
                # restoring loads the levels as if a snapshot: the range known is the original snapshot's
                self.builder.book.bid_floor = checkpoint.bid_floor
                self.builder.book.ask_ceiling = checkpoint.ask_ceiling
                self._since = None
            else:
                self._since = checkpoint.invalid_since if start_ns is None else start_ns
                self._reason = checkpoint.reason or BEFORE_SNAPSHOT

    @property
    def book(self) -> L2Book:
        return self.builder.book

    @property
    def valid(self) -> bool:
        return self.builder.valid

    @property
    def invalid_since(self) -> int | None:
        """Start of the open invalid interval (None while valid). After a gap it is just after the previous book
        row: samples already taken from then on must be dropped (``book_samples`` does)."""
        return None if self.builder.valid else self._since

    def feed(self, recv_ns: int, channel: str, payload: str) -> None:
        """One raw row of this symbol (rows of channels the builder does not read are ignored)."""
        if channel not in self.channels:
            return
        self.version += 1
        prev_ns = self._last_ns
        self._last_ns = recv_ns
        if self._since is None and not self._started and not self.builder.valid:
            self._since = recv_ns
        self._started = True
        was_valid = self.builder.valid
        reason = ""
        lost_before = False
        try:
            event = self.builder.on_raw(channel, payload)
            if event is not None and event.kind != "synced":
                reason = f"{event.kind}: {event.detail}"
                # a gap: the lost frames came after the previous one, so the book is unknown from just after it
                lost_before = event.kind == "gap"
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            # the builder cannot go through this frame: its book is unknown; start over (wait for a snapshot)
            self.builder = _builder(self.venue, self.symbol)
            reason = f"frame_error: {exc}"
            if not was_valid:
                self._reason = reason
        if was_valid and not self.builder.valid:
            start = prev_ns + 1 if lost_before and prev_ns is not None and prev_ns < recv_ns else recv_ns
            self._invalidate(start, reason or "invalid")
        elif not was_valid and self.builder.valid:
            since = recv_ns if self._since is None else self._since
            if recv_ns > since:
                self.invalid.append(InvalidInterval(since, recv_ns, self._reason))
            self._since = None

    def feed_run(self, rows: BookRows, start: int, stop: int) -> int:
        """Feed ``rows`` from ``start`` (before ``stop``) while the book is valid and its builder takes them as one
        run (its optional ``on_raw_run``: diffs continuing the sequence, read and applied in compiled code; the book
        stays valid, nothing else changes); returns the index of the first row not fed, which goes to ``feed`` (it
        may be anything: a snapshot, a gap, a bad frame)."""
        run = getattr(self.builder, "on_raw_run", None)
        if run is None or start >= stop or not self.builder.valid:
            return start
        end: int = run(rows, start, stop)
        if end > start:
            self.version += end - start
            self._last_ns = rows.at[end - 1]
            self._started = True
        return end

    def feed_rows(self, rows: BookRows) -> None:
        """Feed every row, in runs where the builder takes them (``feed_run``), the others one by one."""
        i, n = 0, len(rows)
        while i < n:
            i = self.feed_run(rows, i, n)
            if i < n:
                self.feed(*rows.row(i))
                i += 1

    def _invalidate(self, recv_ns: int, reason: str) -> None:
        if self._since is None:
            self._since = recv_ns
            self._reason = reason

    def close(self, end_ns: int) -> list[InvalidInterval]:
        """Every invalid interval of the window, the open one ending at ``end_ns``."""
        out = list(self.invalid)
        if not self.builder.valid and self._since is not None and end_ns > self._since:
            out.append(InvalidInterval(self._since, end_ns, self._reason))
        return out

    def checkpoint(self, recv_ns: int | None = None) -> BookCheckpoint:
        """The state after every row fed; ``recv_ns`` defaults to the last book row's receive time (a gap found by
        the next window's first row starts just after it, as in an uninterrupted rebuild)."""
        at = recv_ns if recv_ns is not None else (self._last_ns or 0)
        book = self.builder.book
        if not self.builder.valid:
            return BookCheckpoint(
                self.exchange,
                self.symbol,
                at,
                False,
                reason=self._reason,
                invalid_since=self._since,
            )
        return BookCheckpoint(
            self.exchange,
            self.symbol,
            at,
            True,
            update_id=book.update_id,
            bids=tuple(book.raw_bids()),
            asks=tuple(book.raw_asks()),
            state=self.builder.checkpoint(),
            bid_floor=book.bid_floor,
            ask_ceiling=book.ask_ceiling,
        )

    def mine(self, raw: pl.DataFrame) -> pl.DataFrame:
        """This symbol's book rows in ``raw`` (lake schema), in order."""
        rows = raw.filter(pl.col("symbol") == self.symbol, pl.col("channel").is_in(list(self.channels)))
        if "exchange" in rows.columns:
            rows = rows.filter(pl.col("exchange") == self.exchange)
        return rows

    def rows(self, raw: pl.DataFrame) -> Iterator[tuple[int, str, str]]:
        """(recv_ns, channel, payload) of this symbol's book rows in ``raw`` (lake schema), in order."""
        cols = self.mine(raw).select(pl.col("recv_ts").cast(pl.Int64), "channel", "payload")
        return cast("Iterator[tuple[int, str, str]]", cols.iter_rows())

    def states(self, raw: pl.DataFrame) -> Iterator[int]:
        """Feed ``raw``; after each book row where the book is valid, yield its receive time (``book`` is then
        that state; it changes with the next row)."""
        for recv_ns, channel, payload in self.rows(raw):
            self.feed(recv_ns, channel, payload)
            if self.builder.valid:
                yield recv_ns
