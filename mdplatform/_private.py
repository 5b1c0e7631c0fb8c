"""Files the platform writes are its user's alone by default: lake files, the collector's journal and status file,
the warehouse. One process-wide umask (``MDP_UMASK``, octal, default 077: files 0600, folders 0700) set where a
process starts (`mdp`, the Dagster code location), instead of a mode at each of the many places that create files;
``MDP_UMASK=022`` where other users (a reader container running as another uid) must read the lake."""

from __future__ import annotations

import os

from ._errors import UserError

__all__ = ["DEFAULT_UMASK", "private_files"]

DEFAULT_UMASK = 0o077


def private_files() -> int:
    """Set the process umask from ``MDP_UMASK`` (default 077); returns the mask set."""
    raw = os.environ.get("MDP_UMASK", "").strip()
    try:
        mask = int(raw, 8) if raw else DEFAULT_UMASK
    except ValueError:
        raise UserError(f"MDP_UMASK must be an octal mask such as 077 or 022, got {raw!r}") from None
    if not 0 <= mask <= 0o777:
        raise UserError(f"MDP_UMASK must lie in 000..777, got {raw!r}")
    os.umask(mask)
    return mask
