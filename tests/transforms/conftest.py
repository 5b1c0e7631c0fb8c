from __future__ import annotations

from pathlib import Path

import pytest
from candle_reference import Recording, read_recording, spot_files


@pytest.fixture(scope="session")
def spot(shared_data: Path) -> Recording:
    return read_recording(spot_files(shared_data))


@pytest.fixture(scope="session")
def spot_sparse(shared_data: Path) -> Recording:
    """The same recording with only the trades of >= 0.8 BTC: minutes without trades, one at 00:00."""
    return read_recording(spot_files(shared_data), min_size=0.8)
