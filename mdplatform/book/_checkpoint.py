"""The state of a rebuilt book at the end of a window, so the next window's rebuild continues from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = ["BookCheckpoint"]


@dataclass(frozen=True, slots=True)
class BookCheckpoint:
    """One (exchange, symbol) book after every raw row of a window was applied; ``recv_ns``: the last book row's
    receive time (ns).

    ``valid``: the book was whole then; its levels are the exchange's own price/size strings (best first) and
    ``state`` the builder's sync state (Binance ``last_update_id``, OKX ``seq``). When not valid, ``reason`` and
    ``invalid_since`` (ns) carry the open invalid interval over, and the next window waits for a snapshot.
    Serialized as a small JSON document (``to_json``/``write``; ``from_json``/``read``).
    """

    exchange: str
    symbol: str
    recv_ns: int
    valid: bool
    update_id: int | None = None
    bids: tuple[tuple[str, str], ...] = ()
    asks: tuple[tuple[str, str], ...] = ()
    state: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    invalid_since: int | None = None
    #: the range the book's last snapshot covered (``L2Book.bid_floor``/``ask_ceiling``)
    bid_floor: float | None = None
    ask_ceiling: float | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "exchange": self.exchange,
                "symbol": self.symbol,
                "recv_ns": self.recv_ns,
                "valid": self.valid,
                "update_id": self.update_id,
                "bids": [list(lv) for lv in self.bids],
                "asks": [list(lv) for lv in self.asks],
                "state": self.state,
                "reason": self.reason,
                "invalid_since": self.invalid_since,
                "bid_floor": self.bid_floor,
                "ask_ceiling": self.ask_ceiling,
            }
        )

    @classmethod
    def from_json(cls, data: str | bytes) -> BookCheckpoint:
        obj = orjson.loads(data)
        return cls(
            exchange=str(obj["exchange"]),
            symbol=str(obj["symbol"]),
            recv_ns=int(obj["recv_ns"]),
            valid=bool(obj["valid"]),
            update_id=obj.get("update_id"),
            bids=tuple((str(p), str(q)) for p, q in obj.get("bids", ())),
            asks=tuple((str(p), str(q)) for p, q in obj.get("asks", ())),
            state=dict(obj.get("state") or {}),
            reason=str(obj.get("reason", "")),
            invalid_since=obj.get("invalid_since"),
            bid_floor=obj.get("bid_floor"),
            ask_ceiling=obj.get("ask_ceiling"),
        )

    def write(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_json())

    @classmethod
    def read(cls, path: str | Path) -> BookCheckpoint:
        return cls.from_json(Path(path).read_bytes())
