"""A real browser (Debian's Chromium through Playwright) clicks through the app."""

from __future__ import annotations

import re
import shutil
import sqlite3
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


def prompt_run_vote_reveal_leaderboard(page, app_server):
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
    page.get_by_text("votes on").first.wait_for(timeout=60_000)
    page.screenshot(path=str(OUT / "3-leaderboard.png"), full_page=True)
    assert page.get_by_text("row beats column").is_visible()  # the win-rate heatmap
    # Score against cost: one point per arm at its median strong tokens, each with its interval.
    chart = page.locator("svg[aria-label='score against cost']")
    assert chart.is_visible() and chart.locator("circle").count() == 3
    assert page.get_by_text("Neighbours: gap in Elo").is_visible()


# ---- the rater's flow: preset menu, Next, keys, twins, empty states ------------------------------------

POOL = set(
    (Path(__file__).resolve().parents[1] / "assets" / "prompts" / "instructions.txt").read_text().splitlines()
)


def db_rows(app_server, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(app_server.db) as db:
        return db.execute(sql, args).fetchall()


def latest_vote(app_server) -> tuple:
    """(comparison id, prompt, choice, voted position or None) of the newest comparison."""
    return db_rows(
        app_server,
        "select c.id, c.prompt, v.choice, g.position from comparison c left join vote v on v.comparison_id = c.id"
        " left join generation g on g.id = v.generation_id order by c.id desc limit 1",
    )[0]


def status_line(page):
    """The status line under Run (progress overlays elsewhere repeat its text while they fade)."""
    return page.locator(".prose.w2s-status")


def wait_answers(page) -> str:
    """Wait until every answer is in; the status line."""
    status_line(page).get_by_text("all answers done").wait_for(timeout=120_000)
    page.wait_for_timeout(1200)  # votes open 1 s after the answers appear
    return status_line(page).inner_text()


def press_vote_key(page, key: str) -> None:
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press(key)
    status_line(page).get_by_text("your vote is in").wait_for(timeout=30_000)


def choose_preset(page, name: str) -> None:
    page.get_by_label("Preset", exact=True).click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(name)}: ")).click()


def preset_menu_switches_sliders_examples_and_says_the_wait(page, app_server):
    page.get_by_role("tab", name="Compare").click()
    info = page.locator(".w2s-preset-info").first
    # "about N s" once a comparison of this preset finished (earlier tests), else "no estimate yet".
    assert "Preset in use: tiny" in info.inner_text() and "Wait: " in info.inner_text()
    page.get_by_role("button", name="Settings ▼").click()
    temperature = page.get_by_label("number input for Temperature")
    chunk = page.get_by_label("L (chunk tokens)")
    assert chunk.input_value() == "8"
    choose_preset(page, "sentiment-positive")
    page.get_by_text("Preset in use: sentiment-positive").wait_for(timeout=10_000)
    assert "no estimate yet" in info.inner_text()
    assert temperature.input_value() == "1" and chunk.input_value() == "5"  # that preset's defaults
    page.get_by_text("I watched this film on a long flight, and", exact=True).wait_for(timeout=10_000)
    page.screenshot(path=str(OUT / "4-preset-menu.png"), full_page=True)
    choose_preset(page, "tiny")
    page.get_by_text("Preset in use: tiny").wait_for(timeout=10_000)
    assert chunk.input_value() == "8"
    page.get_by_text("Give three tips for staying healthy.", exact=True).click()  # an example fills the box
    page.wait_for_function(  # a round trip to the server: wait for it
        "() => [...document.querySelectorAll('textarea')].some(t => t.value === 'Give three tips for staying healthy.')",
        timeout=30_000,
    )


def twins_are_said_before_the_vote_and_stored_with_it(page, app_server):
    from w2s_app.leaderboard.board import outcomes_from_votes
    from w2s_app.store import Store

    temperature = page.get_by_label("number input for Temperature")
    temperature.fill("0")  # greedy: every method writes the same text
    temperature.press("Enter")
    page.get_by_label("Prompt").fill("Name a fruit.")
    page.get_by_role("button", name="Run", exact=True).click()
    status = wait_answers(page)
    said = re.search(r"([A-C](?:, [A-C])*(?: and [A-C])) wrote the same answer", status)
    assert said, status
    twins = re.findall(r"[A-C]", said.group(1))
    press_vote_key(page, str("ABC".index(twins[-1]) + 1))  # a vote for one of the twins
    page.get_by_text(re.compile(r"^Twins: ")).wait_for(timeout=10_000)
    page.screenshot(path=str(OUT / "5-twins.png"), full_page=True)
    cid, prompt, choice, position = latest_vote(app_server)
    assert (prompt, choice, "ABC"[position]) == ("Name a fruit.", "generation", twins[-1])
    store = Store(f"sqlite:///{app_server.db}", migrate_on_start=False)
    votes, gens, _ = store.leaderboard_frames("tiny")
    mine = gens[gens["comparison_id"] == cid]
    assert mine["twin_of"].notna().sum() == len(twins) and mine["twin_of"].dropna().nunique() == 1
    outcomes = outcomes_from_votes(votes[votes["comparison_id"] == cid], gens)
    assert (outcomes["result"] == 0.5).sum() >= 1  # the twins tie each other, whichever was clicked
    temperature.fill("0.7")
    temperature.press("Enter")


def next_loads_fresh_prompts_and_keys_vote(page, app_server):
    expected = {"1": ("generation", 0), "2": ("generation", 1), "3": ("generation", 2), "t": ("tie", None),
                "b": ("all_bad", None)}  # fmt: skip
    before = page.get_by_label("Prompt").input_value()
    for key, (choice, position) in expected.items():
        page.get_by_role("button", name="Next", exact=True).click()
        wait_answers(page)
        prompt = page.get_by_label("Prompt").input_value()
        assert prompt in POOL and prompt != before, (prompt, before)
        before = prompt
        if key == "t":  # typing in a box never votes
            page.get_by_label("Seed").press("t")
            page.wait_for_timeout(1000)
            assert latest_vote(app_server)[2] is None
        press_vote_key(page, key)
        _cid, stored_prompt, got_choice, got_position = latest_vote(app_server)
        assert (stored_prompt, got_choice, got_position) == (prompt, choice, position), key
    # A prompt the rater typed is run as it is.
    page.get_by_label("Prompt").fill("My own question about owls?")
    page.get_by_role("button", name="Next", exact=True).click()
    wait_answers(page)
    assert page.get_by_label("Prompt").input_value() == "My own question about owls?"
    assert latest_vote(app_server)[1] == "My own question about owls?"


def empty_leaderboard_and_history_say_what_to_do(page, app_server):
    page.get_by_role("tab", name="Leaderboard").click()
    page.get_by_label("Preset (empty: all)").first.click()
    page.get_by_role("option", name="offline", exact=True).click()  # no votes for this preset here
    page.get_by_text("No blind votes yet: run a comparison on the Compare tab and vote.").wait_for(
        timeout=30_000
    )
    assert not page.get_by_role("grid").filter(visible=True).count()  # no bare table
    page.screenshot(path=str(OUT / "6-empty-leaderboard.png"), full_page=True)
    page.get_by_role("tab", name="Compare").click()
    page.get_by_role("tab", name="Leaderboard").click()  # opening the tab shows the same
    page.get_by_text("No blind votes yet").wait_for(timeout=30_000)
    page.get_by_label("Preset (empty: all)").first.click()
    page.get_by_role("option", name="tiny", exact=True).click()  # votes here: the table, not the message
    page.get_by_role("grid").filter(has_text="rank").first.wait_for(timeout=30_000)
    assert page.get_by_text("No blind votes yet").count() == 0
    page.get_by_role("tab", name="History & export").click()
    history = page.get_by_label("Preset (empty: all)").last
    history.click()
    page.get_by_role("option", name="offline", exact=True).click()
    page.get_by_role("button", name="Show").click()
    page.get_by_text("No comparisons yet: run one on the Compare tab").wait_for(timeout=30_000)
    assert not page.get_by_role("grid").filter(visible=True).count()
    page.screenshot(path=str(OUT / "7-empty-history.png"), full_page=True)
    history.click()
    page.get_by_role("option", name="tiny", exact=True).click()
    page.get_by_role("button", name="Show").click()
    page.get_by_role("grid").filter(has_text="My own question about owls?").first.wait_for(timeout=30_000)
    assert page.get_by_text("No comparisons yet").count() == 0


def history_shows_the_browsers_own_comparisons(page, app_server):
    page.get_by_role("tab", name="History & export").click()
    page.get_by_role("button", name="Show", exact=True).click()
    # The comparison this browser ran above (its token lives in the browser's storage).
    # innerText holds rendered text only: the Compare tab (hidden now) does not count.
    page.wait_for_function("() => document.body.innerText.includes('Name three colours.')", timeout=30_000)
    page.screenshot(path=str(OUT / "4-history.png"), full_page=True)


STEPS = [
    prompt_run_vote_reveal_leaderboard,
    preset_menu_switches_sliders_examples_and_says_the_wait,
    twins_are_said_before_the_vote_and_stored_with_it,
    next_loads_fresh_prompts_and_keys_vote,
    empty_leaderboard_and_history_say_what_to_do,
    history_shows_the_browsers_own_comparisons,
]


def test_a_rater_clicks_through_the_app(page, app_server):
    """One browser session, step by step (a failure names its step in the traceback). The steps
    build on each other's state (the comparisons run, the votes cast, the preset chosen), so they
    are one test: a parallel runner must not hand one of them to another worker's browser."""
    for step in STEPS:
        step(page, app_server)
