"""Healing: find the trade gaps of a range of the lake and fill them from the exchanges' REST history."""

from ._heal import BackfillReport, Healed, heal_gaps
from ._plan import Gap, find_gaps

__all__ = ["BackfillReport", "Gap", "Healed", "find_gaps", "heal_gaps"]
