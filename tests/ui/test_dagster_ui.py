"""The Dagster UI in a real browser (Debian's chromium, headless, driven by Python playwright), as a person uses it:
on the webserver and daemon `make dagster` starts, over the demo capture's lake (tests/dagster/_ui_server.py) with
the default settings (books and pictures on). It opens the UI, sees the asset graph (the order_books group's four
assets and their upstream trades and coverage), launches a backfill of every asset over the recording's two hours
by clicking ("Materialize all", the partition range typed as a person types it, "Launch backfill"), sees the
backfill listed and waits for it to succeed, then opens book_heatmap's page and sees the heatmap picture shown in
its latest materialization's metadata, an image the browser decoded (not a link).

Chromium: /usr/bin/chromium (apt). When it is missing the test waits a while for an install under way, then skips
with the reason outside CI; with CI=true it fails instead.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dagster._ui_server import BACKFILLS, HOURS, Dagster, dagster_ui, demo_env, import_demo

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: how long a missing chromium is waited for (an `apt install` under way)
CHROMIUM_WAIT_S = 120
UI_TIMEOUT_MS = 180_000


def _chromium() -> Path:
    deadline = time.monotonic() + CHROMIUM_WAIT_S
    while not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        if time.monotonic() > deadline:
            message = f"{CHROMIUM} not found (apt install chromium)"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message)  # CI must never pass by skipping the browser test
            pytest.skip(message)
        time.sleep(5)
    return CHROMIUM


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dagster]:
    tmp = tmp_path_factory.mktemp("ui")
    env = demo_env(tmp)
    import_demo(env)
    with dagster_ui(env, tmp) as dagster:
        dagster.stop_sensors(dagster.wait_loaded(timeout=180))
        yield dagster


@pytest.mark.waits  # mostly waiting for the backfill daemon's ticks
@pytest.mark.timeout(900)
def test_graph_backfill_by_clicking_and_heatmap_picture(ui: Dagster, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = _chromium()
    profile = tmp_path / "profile"  # a fresh user-data-dir
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(chromium),
            args=ARGS,
            headless=True,
            viewport={"width": 1600, "height": 1000},
        )
        page = browser.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        try:
            page.goto(f"{ui.url}/asset-groups")
            # a first visit asks to join the community: dismissed as a person would
            page.get_by_role("button", name="Skip").click()
            # the asset graph: the book assets and, upstream, trades and coverage
            page.goto(f"{ui.url}/locations/mdplatform/asset-groups/order_books")
            for name in ("book_snapshots", "book_heatmap", "trade_heatmap", "consolidated_book", "trades", "coverage"):
                expect(page.get_by_text(name, exact=True).first).to_be_visible()

            # "Materialize all" from the global graph, the two hours typed in the partition box
            page.goto(f"{ui.url}/asset-groups")
            page.get_by_role("button", name="Materialize all").click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_text("Launch runs to materialize")).to_be_visible()
            # the recording is older than the 90 days the dialog shows at first
            dialog.get_by_text("Show all partitions").click()
            box = dialog.locator("input:not([type='checkbox'])").first
            box.fill(f"[{HOURS[0]}...{HOURS[-1]}]")
            box.press("Enter")
            expect(dialog.get_by_text(f"{len(HOURS)} partitions", exact=True)).to_be_visible()
            dialog.get_by_role("button", name="Launch backfill").click()
            expect(dialog).to_be_hidden()

            # the backfill appears, over those hours and every asset, and succeeds
            backfills = ui.gql(BACKFILLS)["partitionBackfillsOrError"]["results"]
            assert len(backfills) == 1, backfills
            (backfill,) = backfills
            assert sorted(backfill["partitionNames"]) == HOURS
            assets = ui.partitioned_assets()
            assert sorted(a["path"] for a in backfill["assetSelection"]) == assets
            page.goto(f"{ui.url}/runs/b/{backfill['id']}")
            expect(page.get_by_text(backfill["id"]).first).to_be_visible()
            ui.wait_backfill(backfill["id"], assets, timeout=600)
            for asset in assets:
                assert ui.materialized(asset) == set(HOURS), asset

            # the picture of the last hour, in place in book_heatmap's latest materialization
            page.goto(f"{ui.url}/assets/book_heatmap")
            picture = page.locator("img[src^='data:image/png;base64,']").first
            # the page loads the materialization's metadata first: under a busy suite it took more than expect's 5 s
            expect(picture).to_be_visible(timeout=60_000)
            size = picture.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
            assert size[0] and size[1] >= 64 and size[2] > 0, size
        except Exception:
            shots = Path(os.environ.get("MDP_UI_SHOTS", str(tmp_path)))
            page.screenshot(path=str(shots / "failure.png"))
            shutil.copyfile(ui.logs[-1], shots / "webserver.log")
            raise
        finally:
            browser.close()
