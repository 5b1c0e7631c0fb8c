"""MEXC spot v3 books: ``spot@public.aggre.depth.v3.api.pb@(100ms|10ms)@<symbol>`` diffs over a REST snapshot.

Followed: MEXC spot v3 docs, "Websocket Market Streams / How to Properly Maintain a Local Copy of the Order Book"
(mexc.com/api-docs/spot-v3/websocket-market-streams/how-to-properly-maintain-a-local-copy-of-the-order-book, 2026):
buffer the pushes, noting the first ``fromVersion``; fetch ``GET /api/v3/depth?symbol=..&limit=5000`` and note its
``lastUpdateId``; a snapshot older than the first buffered push is fetched again; drop pushes with ``toVersion <=
lastUpdateId``; the first one left must have ``fromVersion <= lastUpdateId + 1`` (else discontinuous: fetch again);
then every push must have ``fromVersion == previous toVersion + 1``, else the book is rebuilt from a new snapshot.
Quantities are absolute; 0 removes the level ("Diff.Depth Stream").

These are Binance spot's rules with ``U`` = ``fromVersion`` and ``u`` = ``toVersion``, so the shared ``DepthSync``
(spot mode) keeps the versions for the live session and this builder alike. One difference is tolerated on purpose:
a push overlapping the previous one (``fromVersion <= previous toVersion`` < its ``toVersion``) is applied rather than
refused: its quantities are absolute, so applying it again is harmless.

A symbol subscribed at both push rates (100ms and 10ms) carries two version chains of the same book: the session and
the builder follow the first depth channel of the symbol they see and leave the other one alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from ...book import L2Book
from ...contract import GAP, StreamEvent
from .._depth_sync import DepthSync, DiffVerdict, SnapshotVerdict
from .._snapshot_sync import SnapshotBook, snapshot_event
from ._proto import BODY_DEPTHS

__all__ = ["SNAPSHOT_CHANNEL", "MexcBookBuilder", "depth_versions", "in_mexc_terms"]

#: the raw channel the collector lands REST depth snapshots under
SNAPSHOT_CHANNEL = "depthSnapshot"

_FROM = re.compile(r'"fromVersion":"(\d+)"')
_TO = re.compile(r'"toVersion":"(\d+)"')

_Diff = tuple[list[list[str]], list[list[str]], int | None]


def depth_versions(frame: str) -> tuple[int, int] | None:
    """(fromVersion, toVersion) of a depth push as the lake keeps it (JSON), by string search; None without them."""
    f, t = _FROM.search(frame), _TO.search(frame)
    if f is None or t is None:
        return None
    return int(f.group(1)), int(t.group(1))


def in_mexc_terms(detail: str) -> str:
    """A ``DepthSync`` gap description in MEXC's names (``U``/``u`` are ``fromVersion``/``toVersion`` here)."""
    detail = detail.replace("previous u+1=", "previous toVersion+1=").replace("(u=", "(toVersion=")
    return re.sub(r"\bU=", "fromVersion=", detail)


def _levels(items: Any) -> list[list[str]]:
    """``[{"price": p, "quantity": q}, ...]`` -> ``[[p, q], ...]`` (exact strings; a missing quantity is proto3's
    omitted default, the empty string, which the book refuses)."""
    if not items:
        return []
    return [[str(i.get("price", "")), str(i.get("quantity", ""))] for i in items]


def _ms(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


class MexcBookBuilder(SnapshotBook[_Diff]):
    """Snapshot + diffs -> an ``L2Book`` of one symbol under MEXC's rules (the module docstring).

    ``on_depth`` takes a depth push (the lake's JSON), ``on_snapshot`` a ``/api/v3/depth`` reply, in arrival order:
    pushes are buffered until a usable snapshot arrives; a gap clears the book until the next one.
    """

    def __init__(self, symbol: str, depth_channels: frozenset[str], *, keep_raw: bool = False) -> None:
        self.symbol = symbol
        self.depth_channels = depth_channels
        self.channels = depth_channels | {SNAPSHOT_CHANNEL}
        self.book = L2Book(symbol, keep_raw=keep_raw)
        self.sync: DepthSync[_Diff] = DepthSync(futures=False)
        #: the depth channel this builder follows (the first one it is handed)
        self.channel: str | None = None
        self.gaps = 0
        self.applied = 0

    def on_depth(self, frame: str | Mapping[str, Any]) -> DiffVerdict:
        obj = orjson.loads(frame) if isinstance(frame, str) else frame
        body = obj.get(BODY_DEPTHS) if isinstance(obj, dict) else None
        if not isinstance(body, dict):
            raise ValueError(f"not a depth push: {str(frame)[:120]}")
        try:
            first, last = int(body["fromVersion"]), int(body["toVersion"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"depth push without fromVersion/toVersion: {str(frame)[:120]}") from exc
        item: _Diff = (_levels(body.get("bids")), _levels(body.get("asks")), _ms(obj.get("sendTime")))
        verdict = self.sync.on_diff(first, last, -1, item)
        if verdict == DiffVerdict.APPLY:
            try:
                self.book.apply(item[0], item[1], update_id=last, ts=item[2])
            except ValueError:
                self._drop()
                raise
            self.applied += 1
        elif verdict == DiffVerdict.GAP:
            self.gaps += 1
            self.book.clear()
        return verdict

    def on_snapshot(self, body: str | Mapping[str, Any]) -> SnapshotVerdict:
        obj = orjson.loads(body) if isinstance(body, str) else body
        try:
            snap = int(obj["lastUpdateId"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"depth snapshot without lastUpdateId: {str(body)[:120]}") from exc
        verdict, items = self.sync.on_snapshot(snap)
        if verdict == SnapshotVerdict.SYNCED:
            try:
                self._load_synced(obj.get("bids") or [], obj.get("asks") or [], snap, _ms(obj.get("timestamp")), items)
            except ValueError:
                self._drop()
                raise
        elif verdict == SnapshotVerdict.GAP:
            self.gaps += 1
        return verdict

    def _drop(self) -> None:
        """A push the book refuses: the chain cannot go on through it; wait for a snapshot again."""
        self.book.clear()
        self.sync = DepthSync(futures=False)

    # -- BookBuilder ---------------------------------------------------------------------------------------
    def on_raw(self, channel: str, payload: str) -> StreamEvent | None:
        if channel == SNAPSHOT_CHANNEL:
            verdict = self.on_snapshot(payload)
            return snapshot_event(verdict, self.channel or "", self.symbol, in_mexc_terms(self.sync.gap_detail))
        if channel not in self.depth_channels:
            return None
        if self.channel is None:
            self.channel = channel
        elif channel != self.channel:
            return None  # the symbol's other push rate: another version chain
        if self.on_depth(payload) == DiffVerdict.GAP:
            return StreamEvent(GAP, channel, self.symbol, in_mexc_terms(self.sync.gap_detail))
        return None

    checkpoint_key = "version"

    def checkpoint(self) -> dict[str, Any]:
        return {**super().checkpoint(), "channel": self.channel}

    def _restored(self, state: Mapping[str, Any]) -> None:
        channel = state.get("channel")
        self.channel = str(channel) if channel else None
