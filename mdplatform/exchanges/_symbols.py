"""Exchange symbols that are BASE and QUOTE run together ("BTCUSDT"): told apart by a list of quote currencies."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["split_quote"]


def split_quote(symbol: str, quotes: Sequence[str]) -> tuple[str, str] | None:
    """(base, quote) for the first of ``quotes`` that is a proper suffix of ``symbol`` (give them longest first:
    "BTCFDUSD" is BTC-FDUSD, not BTCF-DUSD); None when none is."""
    for quote in quotes:
        if len(symbol) > len(quote) and symbol.endswith(quote):
            return symbol[: -len(quote)], quote
    return None
