"""A real browser (Debian's Chromium through Playwright) clicks through the app."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
OUT = Path(__file__).resolve().parents[1] / "test-output" / "browser"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
        "--no-first-run", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def page(app_server):
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    assert exe, "chromium missing: scripts/install.sh --dev installs it"
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="w2s-chromium-"), executable_path=exe, args=ARGS, headless=True,
            viewport={"width": 1400, "height": 1000},
        )  # fmt: skip
        pg = ctx.new_page()
        pg.goto(app_server.url, wait_until="load")
        pg.get_by_label("Prompt").wait_for(timeout=60_000)
        yield pg
        ctx.close()


def vote_buttons(page):
    names = ["A is best", "B is best", "C is best", "Tie", "All bad"]
    return [page.get_by_role("button", name=n, exact=True) for n in names]


def test_prompt_run_vote_reveal_leaderboard(page):
    page.get_by_label("Prompt").fill("Name three colours.")
    page.get_by_role("button", name="Run", exact=True).click()
    # Until every answer is done, no vote button may be enabled.
    for b in vote_buttons(page):
        assert b.is_disabled()
    page.get_by_text("all answers done").wait_for(timeout=120_000)
    page.screenshot(path=str(OUT / "1-answers.png"), full_page=True)
    for b in vote_buttons(page):
        assert b.is_enabled()
    page.wait_for_timeout(1200)  # votes open 1 s after the answers appear
    page.get_by_role("button", name="A is best", exact=True).click()
    page.get_by_text("your vote is in").wait_for(timeout=30_000)
    for b in vote_buttons(page):
        assert b.is_disabled()
    reveal = page.get_by_text("w2s W2 K2 L8").first
    reveal.wait_for(timeout=10_000)
    # Each column now names its method, and the search trace is drawn (kept beams as points).
    page.get_by_text(re.compile(r"^Response [ABC]: w2s W2 K2 L8 · score")).wait_for(timeout=10_000)
    page.get_by_text(re.compile(r"^Response [ABC]: baseline · \d+ tokens")).wait_for(timeout=10_000)
    assert page.locator("svg.w2s-trace circle.kept").count() >= 2
    page.screenshot(path=str(OUT / "2-reveal.png"), full_page=True)
    page.get_by_role("tab", name="Leaderboard").click()
    page.get_by_role("button", name="Refresh").click()
    page.get_by_text("blind votes on").wait_for(timeout=60_000)
    page.screenshot(path=str(OUT / "3-leaderboard.png"), full_page=True)
    assert page.get_by_text("row beats column").is_visible()  # the win-rate heatmap


def test_history_shows_the_browsers_own_comparisons(page):
    page.get_by_role("tab", name="History & export").click()
    page.get_by_role("button", name="Show", exact=True).click()
    # The comparison this browser ran above (its token lives in the browser's storage).
    # innerText holds rendered text only: the Compare tab (hidden now) does not count.
    page.wait_for_function("() => document.body.innerText.includes('Name three colours.')", timeout=30_000)
    page.screenshot(path=str(OUT / "4-history.png"), full_page=True)
