"""A generic L2 (price-level) order book, fed by the exchange modules' sync logic."""

from ._l2 import L2Book, Level, RawLevel, Side

__all__ = ["L2Book", "Level", "RawLevel", "Side"]
