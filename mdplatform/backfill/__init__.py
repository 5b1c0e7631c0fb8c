"""Healing: find the trade gaps of a range of the lake and fill them from the exchanges' REST history."""

from ._heal import BackfillReport, Healed, HealLimits, heal_gaps
from ._plan import Gap, find_gaps

__all__ = ["BackfillReport", "Gap", "HealLimits", "Healed", "find_gaps", "heal_gaps"]
