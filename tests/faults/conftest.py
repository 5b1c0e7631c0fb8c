"""At the end of a session, the rows the fault tests recorded go into docs/reliability.md."""

from __future__ import annotations

import pytest
from _reliability import render


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Under pytest-xdist the controller loads this file only when tests/faults was named on the command line (a
    # plain `pytest -n 2` collects in the workers alone), so every process that ran fault tests renders: each
    # merges all rows recorded so far under a lock, and the last to finish has them all.
    render()
