"""What a rater sees around the vote: the preset line with a wait estimate, twin notes, empty states,
and the keyboard shortcuts for the vote buttons."""

from __future__ import annotations

import html
from typing import Any

from ..arena.letters import LETTERS
from ..twins import join_letters

LEADERBOARD_EMPTY = "No blind votes yet: run a comparison on the Compare tab and vote."
HISTORY_EMPTY = "No comparisons yet: run one on the Compare tab (type a prompt and press Run, or press Next)."
KEYS_HELP = (
    "Keys: **1**, **2**, **3** (**4**) vote for A, B, C (D) · **t** tie · **b** all bad (not while typing)."
)
# Vote buttons carry these element ids; the key script below clicks them.
VOTE_IDS = {
    **{LETTERS[i]: f"w2s-vote-{LETTERS[i]}" for i in range(4)},
    "tie": "w2s-vote-tie",
    "all_bad": "w2s-vote-all_bad",
}
KEYS_SCRIPT = """<script>
(() => {
  const ids = {"1": "w2s-vote-A", "2": "w2s-vote-B", "3": "w2s-vote-C", "4": "w2s-vote-D",
               "t": "w2s-vote-tie", "b": "w2s-vote-all_bad"};
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = e.target;  // typing a prompt must never cast a vote
    if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
    const id = ids[e.key.toLowerCase()];
    const button = id && document.getElementById(id);
    if (!button || button.disabled || button.offsetParent === null) return;  // hidden column or no vote open
    e.preventDefault();
    button.click();
  });
})();
</script>"""


def preset_choices(presets: dict[str, Any]) -> list[tuple[str, str]]:
    """Dropdown entries: 'name: purpose' shown, the name as the value."""
    return [(f"{p.name}: {p.purpose}" if p.purpose else p.name, p.name) for p in presets.values()]


def wait_text(estimate: tuple[float, int] | None) -> str:
    """'about 12 s (median of the last 20 comparisons)', or 'no estimate yet'."""
    if estimate is None:
        return "no estimate yet (no finished comparison with this preset)"
    seconds, count = estimate
    of = "the last comparison" if count == 1 else f"the last {count} comparisons"
    return f"about {seconds:.0f} s (median of {of} with this preset)"


def preset_line(preset: Any, estimate: tuple[float, int] | None) -> str:
    """The lines under the preset menu: the preset in use and what it is, the wait estimate."""
    about = f": {html.escape(preset.description)}" if preset.description else ""
    return f"**Preset in use:** `{preset.name}`{about}  \n**Wait:** {wait_text(estimate)}"


def reveal_twins(reveal: list[dict[str, Any]]) -> str:
    """After the vote: which methods wrote the same answer, e.g. 'B (bon N4) and C (w2s ...)'."""
    seen, lines = set(), []
    for g in sorted(reveal, key=lambda g: g["position"]):
        group = sorted([g["answer"], *g.get("twins", [])])
        if len(group) < 2 or tuple(group) in seen:
            continue
        seen.add(tuple(group))
        label = {r["answer"]: r["label"] for r in reveal}
        names = join_letters([f"{a} ({html.escape(label[a])})" for a in group])
        lines.append(
            f"Twins: {names} wrote the same answer, so they count as one: they win or lose together and tie each other."
        )
    return "\n\n".join(lines)
