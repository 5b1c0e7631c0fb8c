"""A lake built as the demo's is (demo/run.py): the bundled Binance spot capture (BTC and ETH, trades, depth,
bookTicker) landed in the raw layer and materialized by `mdp materialize` with books and heatmap pictures on, so
every table of the warehouse has rows. Imported at the recording's own times (the demo replays it shifted to
today, which changes nothing here). Built once per session: `mdp materialize` with books takes a while."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from assets.cli import materialize
from mdplatform.capture import import_capture

REPO = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO / "demo" / "data" / "binance-spot"


@pytest.fixture(scope="session")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("demo_lake")
    root = base / "lake"
    home = base / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    import_capture(sorted(DEMO_DATA.glob("*.gz")), "binance", str(root))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        mp.setenv("MDP_BOOKS", "1")  # the suite turns books and pictures off elsewhere; the demo has them on
        mp.setenv("MDP_PICTURES", "1")
        mp.delenv("MDP_LAKE", raising=False)
        mp.delenv("MDP_WAREHOUSE", raising=False)
        result = CliRunner().invoke(materialize, ["--lake", str(root), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    yield root
