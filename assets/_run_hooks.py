"""What a process running hours in itself (`mdp materialize`, `mdp backfill`) tells the assets it executes: stop
between two hours (a signal arrived), and report each hour done (the progress bar). Runs launched by the Dagster
daemon or the UI set neither: the assets then just run every hour of their window."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["HOOKS", "RunHooks", "StoppedBetweenHours"]


class StoppedBetweenHours(RuntimeError):
    """A run stopped between two hours on request; the message says which hours were written."""


@dataclass
class RunHooks:
    stop: threading.Event | None = None
    #: the step that stops between hours (the first of the run: the others finish what it wrote)
    stoppable: str | None = None
    on_hour: Callable[[str, int], None] | None = None

    def stopping(self, what: str) -> bool:
        return self.stop is not None and self.stop.is_set() and what == self.stoppable

    def hour_done(self, what: str, hour: int) -> None:
        if self.on_hour is not None:
            self.on_hour(what, hour)


#: the hooks of this process (set by the in-process runner around its runs)
HOOKS = RunHooks()
