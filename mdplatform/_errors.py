"""The errors that are the user's to fix (a bad argument, file or setting), as opposed to bugs."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A mistake of the user's: the message alone says what is wrong and with what (`mdp` prints it as one line,
    without a traceback). Anything else that escapes a command is a bug and keeps its traceback."""
