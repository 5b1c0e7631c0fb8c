"""Shared fixtures: the real recordings in ../shared/data and throwaway lakes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    for candidate in (os.environ.get("MDP_SHARED_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return REPO / "tests" / "data"


SHARED_DATA = _shared_data()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "binance-hftbacktest").is_dir():
        message = f"real recordings not found under {SHARED_DATA} (set MDP_SHARED_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)  # CI must never pass by skipping the tests on real data
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    root = tmp_path / "lake"
    monkeypatch.setenv("MDP_LAKE", str(root))
    return str(root)
