"""KuCoin ``/market/level2`` books: REST snapshot + sequenced diffs, live (ids only) and offline (the whole book).

KuCoin docs, "Orderbook - Increment" (https://www.kucoin.com/docs-new, spot WebSocket, checked 2026-12): cache the
diffs, fetch a REST snapshot (its ``sequence``), drop the diffs it contains, then apply each diff whose
``sequenceStart`` is at most the book's sequence + 1 and whose ``sequenceEnd`` is beyond it; inside a diff each change
``[price, size, sequence]`` whose own sequence is not beyond the book's is ignored, a price "0" only moves the
sequence, a size "0" removes the level. That is Binance spot's U/u rule with ``sequenceStart``/``sequenceEnd`` for
U/u, so ``.._depth_sync.DepthSync`` (spot) keeps the chain; the builder adds the per-change filter. A
``sequenceStart`` beyond the book's sequence + 1 is a gap: that symbol's book is invalid until a new snapshot.

REST snapshots: ``GET /api/v1/market/orderbook/level2_100`` (public; the full book ``/api/v3/market/orderbook/level2``
needs an API key today) answer ``{"code":"200000","data":{"time":..,"sequence":"..","bids":[..],"asks":[..]}}``.
A 100-level snapshot leaves the book partial beyond its 100th level (``L2Book.bid_floor``/``ask_ceiling`` say where).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from ...book import L2Book
from ...contract import GAP, SessionAction, StreamEvent, Subscription
from .._depth_sync import DepthSync, DiffVerdict, SnapshotVerdict
from .._snapshot_sync import SnapshotBook, SnapshotSession, snapshot_event

if TYPE_CHECKING:
    from ._exchange import KucoinExchange

__all__ = ["BOOK_CHANNEL", "SNAPSHOT_CHANNEL", "KucoinBookBuilder", "KucoinSession", "diff_ids", "snapshot_sequence"]

BOOK_CHANNEL = "level2"
#: the raw channel the collector (and the capture import) lands REST snapshots under
SNAPSHOT_CHANNEL = "depthSnapshot"

_START = re.compile(r'"sequenceStart":"?(\d+)')
_END = re.compile(r'"sequenceEnd":"?(\d+)')
_SEQUENCE = re.compile(r'"sequence":"?(\d+)')

#: (sequenceStart, sequenceEnd, bids, asks, time ns)
_Diff = tuple[int, int, list[list[str]], list[list[str]], int | None]


def diff_ids(frame: str) -> tuple[int, int] | None:
    """(sequenceStart, sequenceEnd) of a level2 frame, by string search; None without them."""
    s, e = _START.search(frame), _END.search(frame)
    if s is None or e is None:
        return None
    return int(s.group(1)), int(e.group(1))


def snapshot_sequence(body: str) -> int | None:
    """The ``sequence`` of a REST level2 reply; None for an error reply."""
    m = _SEQUENCE.search(body)
    return None if m is None else int(m.group(1))


def _zero(text: str) -> bool:
    return not text.strip("0.")


def _after(levels: Sequence[Sequence[str]], threshold: int) -> list[list[str]]:
    """The changes beyond ``threshold`` as ``[price, size]`` (price "0": a sequence-only change, no level)."""
    out: list[list[str]] = []
    for level in levels:
        price, size, seq = level[0], level[1], level[2] if len(level) > 2 else None
        if seq is not None and int(seq) <= threshold:
            continue
        if _zero(price):
            continue
        out.append([price, size])
    return out


class KucoinSession(SnapshotSession):
    """Per-connection sequence tracking of every level2 symbol (the book itself is not kept on the hot path)."""

    def __init__(self, exchange: KucoinExchange, subs: Sequence[Subscription], rest_url: str | None) -> None:
        super().__init__(exchange, rest_url)
        for sub in subs:
            if sub.channel == BOOK_CHANNEL:
                self._sync(sub.symbol)

    def _channel_of(self, symbol: str) -> str:
        return BOOK_CHANNEL

    def _words(self, detail: str) -> str:
        return _kucoin_words(detail)

    def on_frame(self, channel: str, symbol: str, frame: str) -> SessionAction | None:
        if channel != BOOK_CHANNEL:
            return None
        ids = diff_ids(frame)
        if ids is None:
            self.errors += 1
            raise ValueError(f"kucoin {symbol}: level2 frame without sequenceStart/sequenceEnd")
        sync = self._syncs.get(symbol) or self._sync(symbol)
        return self._diff_action(symbol, sync, sync.on_diff(ids[0], ids[1], -1, None))

    def on_snapshot(self, symbol: str, body: str) -> SessionAction | None:
        seq = snapshot_sequence(body)
        if seq is None:
            # no immediate retry (an error body would loop): the sync asks again after more diffs
            self.errors += 1
            return SessionAction(error=f"kucoin {symbol}: level2 snapshot without a sequence: {body[:200]}")
        return self._snapshot_action(symbol, self._sync(symbol), seq)

    def sequence(self, symbol: str) -> int:
        return self._syncs[symbol].last_update_id


def _kucoin_words(detail: str) -> str:
    """DepthSync speaks Binance (U, u, lastUpdateId): say it in KuCoin's field names."""
    return (
        detail.replace("lastUpdateId", "snapshot sequence")
        .replace("previous u+1", "previous sequenceEnd+1")
        .replace("U=", "sequenceStart=")
        .replace("u=", "sequenceEnd=")
    )


class KucoinBookBuilder(SnapshotBook[_Diff]):
    """One symbol's book from level2 frames and REST snapshots, under the session's rules plus KuCoin's per-change
    sequence filter. ``keep_raw``: keep price/size strings (exact comparisons with tickers)."""

    channels: frozenset[str] = frozenset({BOOK_CHANNEL, SNAPSHOT_CHANNEL})
    checkpoint_key = "sequence"

    def __init__(self, symbol: str, *, keep_raw: bool = False) -> None:
        self.symbol = symbol
        self.book = L2Book(symbol, keep_raw=keep_raw)
        self.sync: DepthSync[_Diff] = DepthSync(futures=False)
        self.applied = 0
        self.gaps = 0

    @property
    def sequence(self) -> int:
        """The sequence the book reflects (-1 before a snapshot)."""
        return self.sync.last_update_id

    def on_diff(self, frame: str | bytes | Mapping[str, Any]) -> DiffVerdict:
        obj = orjson.loads(frame) if isinstance(frame, str | bytes) else frame
        d = obj.get("data", obj)
        changes = d.get("changes") or {}
        t = d.get("time")
        ts = int(t) * 1_000_000 if isinstance(t, int) else None
        item: _Diff = (
            int(d["sequenceStart"]),
            int(d["sequenceEnd"]),
            changes.get("bids") or [],
            changes.get("asks") or [],
            ts,
        )
        before = self.sync.last_update_id
        verdict = self.sync.on_diff(item[0], item[1], -1, item)
        if verdict == DiffVerdict.APPLY:
            self._apply(item, before)
        elif verdict == DiffVerdict.GAP:
            self.gaps += 1
            self.book.clear()
        return verdict

    def on_snapshot(self, body: str | bytes | Mapping[str, Any]) -> SnapshotVerdict:
        obj = orjson.loads(body) if isinstance(body, str | bytes) else body
        d = obj.get("data", obj)
        if not isinstance(d, dict) or "sequence" not in d:
            raise ValueError(f"kucoin {self.symbol}: level2 snapshot without a sequence: {str(obj)[:200]}")
        seq = int(d["sequence"])
        verdict, items = self.sync.on_snapshot(seq)
        if verdict == SnapshotVerdict.SYNCED:
            t = d.get("time")
            self.book.load(
                d.get("bids") or [], d.get("asks") or [], update_id=seq, ts=None if t is None else int(t) * 1_000_000
            )
            threshold = seq
            for item in items:
                self._apply(item, threshold)
                threshold = item[1]
            self.book.update_id = self.sync.last_update_id
        elif verdict == SnapshotVerdict.GAP:
            self.gaps += 1
        return verdict

    def _apply(self, item: _Diff, threshold: int) -> None:
        _, end, bids, asks, ts = item
        self.book.apply(_after(bids, threshold), _after(asks, threshold), update_id=end, ts=ts)
        self.applied += 1

    # -- the BookBuilder contract ------------------------------------------------------------------------------
    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        if channel == BOOK_CHANNEL:
            if self.on_diff(payload) == DiffVerdict.GAP:
                return StreamEvent(GAP, BOOK_CHANNEL, self.symbol, _kucoin_words(self.sync.gap_detail))
            return None
        if channel == SNAPSHOT_CHANNEL:
            verdict = self.on_snapshot(payload)
            return snapshot_event(verdict, BOOK_CHANNEL, self.symbol, _kucoin_words(self.sync.gap_detail))
        return None
