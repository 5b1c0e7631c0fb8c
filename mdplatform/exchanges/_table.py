"""The capability table (``mdp exchanges``, the README): one row per exchange and market, read off the registry."""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

from ._registry import EXCHANGES

__all__ = [
    "CAPABILITY_COLUMNS",
    "CapabilityRow",
    "capability_markdown",
    "capability_rows",
    "capability_text",
    "claimed",
]

YES, NO = "✅", "—"


@dataclass(frozen=True, slots=True)
class CapabilityRow:
    """What the platform does for one market of one exchange (registry id ``exchange``)."""

    exchange: str
    market: str
    #: trades normalized (exact decimals, taker side)
    trades: bool
    #: order books kept live and rebuilt from the lake
    book: bool
    #: a ticker / best bid-offer channel landed
    ticker: bool
    #: book checksums verified
    checksum: bool
    #: book sequence continuity verified (gaps detected and resynced)
    sequence: bool
    #: trade gaps healed from the exchange's REST history (text: how far back it reaches when that is limited)
    backfill: bool | str
    #: trade ids contiguous per symbol: coverage proven from the ids
    contiguous_ids: bool
    #: how the book is synchronized: rest-snapshot, ws-snapshot, none
    book_sync: str


#: the yes/no columns, in table order
CAPABILITY_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CapabilityRow))[2:-1]


def capability_rows() -> list[CapabilityRow]:
    rows = []
    for xid, x in sorted(EXCHANGES.items()):
        c = x.capabilities
        backfill: bool | str = any(x.trade_history(ch) is not None for ch in c.trade_channels)
        if backfill and c.history_reach:
            backfill = c.history_reach
        for market in sorted(c.markets):
            rows.append(
                CapabilityRow(
                    exchange=xid,
                    market=market,
                    trades=bool(c.trade_channels),
                    book=bool(c.book_channels) and c.book_sync != "none",
                    ticker=bool(c.ticker_channels),
                    checksum=c.checksum,
                    sequence=c.sequence_check,
                    backfill=backfill,
                    contiguous_ids=bool(c.contiguous_ids),
                    book_sync=c.book_sync,
                )
            )
    return rows


def _cells(row: CapabilityRow) -> list[str]:
    return [v if isinstance(v, str) else (YES if v else NO) for v in astuple(row)]


def claimed(row: CapabilityRow) -> list[str]:
    """The columns in which the row claims something (a check mark, or a limited backfill)."""
    return [name for name in CAPABILITY_COLUMNS if getattr(row, name) is not False]


def capability_markdown() -> str:
    """The table as GitHub markdown (the README's copy is checked against it)."""
    head = [f.name.replace("_", " ") for f in fields(CapabilityRow)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in capability_rows()]
    return "\n".join(lines) + "\n"


def capability_text() -> str:
    """The table for a terminal: aligned columns."""
    head = [f.name.replace("_", " ") for f in fields(CapabilityRow)]
    body = [_cells(r) for r in capability_rows()]
    widths = [max(_width(h), *(_width(b[i]) for b in body)) for i, h in enumerate(head)]
    out = ["  ".join(_pad(h, w) for h, w in zip(head, widths, strict=True)).rstrip()]
    out += ["  ".join(_pad(c, w) for c, w in zip(b, widths, strict=True)).rstrip() for b in body]
    return "\n".join(out) + "\n"


def _width(cell: str) -> int:
    """Columns a cell takes in a terminal (the check mark is a wide character)."""
    return len(cell) + cell.count(YES)


def _pad(cell: str, width: int) -> str:
    return cell + " " * (width - _width(cell))
