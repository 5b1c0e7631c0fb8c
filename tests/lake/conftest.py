"""A lake of minute files as the collector writes them, from the real spot recording (2024-08-08 23:54 ..
08-09 00:05: two receive hours on two days), built once and copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _lakes import rewrite_as_minutes

from mdplatform.capture import import_capture


@pytest.fixture(scope="session")
def minute_lake_template(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    from candle_reference import spot_files

    base = tmp_path_factory.mktemp("minute-lake")
    imported = base / "imported"
    import_capture(spot_files(shared_data), "binance", str(imported))
    template = base / "lake"
    rewrite_as_minutes(str(imported), str(template))
    return template


@pytest.fixture
def minute_lake(minute_lake_template: Path, tmp_path: Path) -> str:
    """A fresh copy of the minute-file lake (its landing log left out: compaction does not use it)."""
    root = tmp_path / "lake"
    shutil.copytree(minute_lake_template, root, ignore=shutil.ignore_patterns("_landed"))
    return str(root)
