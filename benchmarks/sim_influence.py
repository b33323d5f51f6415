"""What k addresses can move on the people's board: the outside test's scenario, simulated.

    python -m benchmarks.sim_influence             # ~2 minutes: 100 arenas per cell
    python -m benchmarks.sim_influence --arenas 20 # a quick look

The scenario of issue 29: 140 honest votes on a three-method preset (baseline, bon, w2s with true
Elo offsets -25, 0, +25; honest raters pick by Bradley-Terry with 10% ties, 3-4 votes each, from
an address of their own, 10-60 s after the answers appear), then k addresses with 4 voter tokens
each, every token voting 21 times for the w2s column (84 votes per address). The board is the
app's own fit (`leaderboard.cache.build_board`) on each `W2S_VOTER_CAP`. For each cell: how far
w2s moved, in half-widths of its interval before the attack (mean and 95th percentile over the
arenas), and how often the attack separated w2s from bon (their intervals no longer overlap when
they did before).

Attack tokens vote 5.2 s after each answer (the outside test's pace: just above the follower
flag's 5 s), so the follower filter does not catch them and the cap alone bounds them.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from w2s_app.leaderboard.cache import BoardView, build_board  # noqa: E402

LABELS = ("baseline", "bon N4", "w2s W2 K2 L5")
TRUE_ELO = (-25.0, 0.0, 25.0)
HONEST_VOTES = 140
TOKENS_PER_ADDRESS = 4
VOTES_PER_TOKEN = 21


class FrameStore:
    """The three frames `build_board` reads, held in memory (what Store.leaderboard_frames returns)."""

    def __init__(self) -> None:
        self.votes: list[dict] = []
        self.gens: list[dict] = []
        self.comps: list[dict] = []

    def comparison(self) -> list[int]:
        """A new finished comparison showing the three methods in a shuffled order; its generation ids."""
        cid = len(self.comps) + 1
        self.comps.append({"id": cid, "preset": "p"})
        order = random.sample(range(3), 3)
        ids = []
        for m, position in enumerate(order):
            gid = len(self.gens) + 1
            self.gens.append({"id": gid, "comparison_id": cid, "label": LABELS[m], "status": "done",
                              "position": position})  # fmt: skip
            ids.append(gid)
        return ids

    def vote(self, voter: str, address: str, choice: str, gid: int | None, seconds: float) -> None:
        """One stored vote on the newest comparison."""
        self.votes.append({"id": len(self.votes) + 1, "comparison_id": len(self.comps), "choice": choice,
                           "generation_id": gid, "blind": True, "voter_id": voter, "seconds_shown": seconds,
                           "client_hash": address})  # fmt: skip

    def leaderboard_frames(self, preset: str | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """As Store.leaderboard_frames."""
        votes = pd.DataFrame(self.votes, columns=["id", "comparison_id", "choice", "generation_id", "blind",
                                                  "voter_id", "seconds_shown", "client_hash"])  # fmt: skip
        gens = pd.DataFrame(self.gens, columns=["id", "comparison_id", "label", "status", "position"])
        gens["twin_of"] = pd.Series([pd.NA] * len(gens), dtype="Int64")
        return votes, gens, pd.DataFrame(self.comps, columns=["id", "preset"])

    def judgement_frame(self, preset: str | None, judge: str) -> pd.DataFrame:
        """No judge here."""
        return pd.DataFrame()

    def generation_texts(self, ids: list[int]) -> dict[int, str]:
        """No texts here (no style control)."""
        return {}


def honest_arena(rng: random.Random) -> FrameStore:
    """140 honest votes: Bradley-Terry top picks over the three shown answers, 10% ties."""
    random.seed(rng.random())
    store = FrameStore()
    weights = [math.exp(e * math.log(10) / 400) for e in TRUE_ELO]
    voter = 0
    while len(store.votes) < HONEST_VOTES:
        voter += 1
        for _ in range(rng.choice((3, 4))):
            if len(store.votes) >= HONEST_VOTES:
                break
            ids = store.comparison()
            seconds = rng.uniform(10, 60)
            if rng.random() < 0.10:
                store.vote(f"t:honest{voter}", f"a{voter}", "tie", None, seconds)
            else:
                store.vote(
                    f"t:honest{voter}", f"a{voter}", "generation", rng.choices(ids, weights)[0], seconds
                )
    return store


def attack(store: FrameStore, address: str) -> None:
    """One address: 4 tokens, each voting 21 times for the w2s column, 5.2 s after each answer."""
    for t in range(TOKENS_PER_ADDRESS):
        for _ in range(VOTES_PER_TOKEN):
            ids = store.comparison()
            store.vote(f"t:{address}-{t}", address, "generation", ids[2], 5.2)


def rows(board) -> dict[str, tuple[float, float, float]]:
    """(score, lo, hi) per entity."""
    return {r["entity"]: (r["score"], r["lo"], r["hi"]) for _, r in board.table.iterrows()}


def one_arena(seed: int, caps: list[int], ks: list[int]) -> list[dict]:
    """Every (cap, k) cell of one simulated arena."""
    out = []
    for cap in caps:
        rng = random.Random(seed)
        store = honest_arena(rng)
        before = rows(build_board(store, BoardView("p"), voter_cap=cap))
        w2s, bon = before[LABELS[2]], before[LABELS[1]]
        half = (w2s[2] - w2s[1]) / 2
        separated_before = w2s[1] > bon[2]
        for k in range(1, max(ks) + 1):
            attack(store, f"attacker{k}")
            if k not in ks:
                continue
            after = rows(build_board(store, BoardView("p"), voter_cap=cap))
            a_w2s, a_bon = after[LABELS[2]], after[LABELS[1]]
            out.append({
                "cap": cap, "k": k, "seed": seed, "moved": (a_w2s[0] - w2s[0]) / half, "half": half,
                "separated": (a_w2s[1] > a_bon[2]) and not separated_before,
            })  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the table of what k addresses move, per cap."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arenas", type=int, default=100)
    parser.add_argument("--caps", default="0,4,6,8,10,20")
    parser.add_argument("--k", default="1,2,3")
    args = parser.parse_args(argv)
    caps = [int(c) for c in args.caps.split(",")]
    ks = [int(k) for k in args.k.split(",")]
    started = time.perf_counter()
    cells = [c for seed in range(args.arenas) for c in one_arena(seed, caps, ks)]
    df = pd.DataFrame(cells)
    print(f"{args.arenas} arenas, {HONEST_VOTES} honest votes, attackers: {TOKENS_PER_ADDRESS} tokens x "
          f"{VOTES_PER_TOKEN} w2s votes per address ({time.perf_counter() - started:.0f} s)")  # fmt: skip
    print(
        "| W2S_VOTER_CAP | addresses | w2s moved (half-widths): mean | 95th pct | max | w2s newly separated from bon |"
    )
    print("|---|---|---|---|---|---|")
    for (cap, k), g in df.groupby(["cap", "k"]):
        print(f"| {cap or 'off'} | {k} | {g['moved'].mean():+.2f} | {np.percentile(g['moved'], 95):+.2f} | "
              f"{g['moved'].max():+.2f} | {g['separated'].mean():.0%} |")  # fmt: skip
    print(f"honest half-width of w2s: median {df['half'].median():.1f} Elo")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
