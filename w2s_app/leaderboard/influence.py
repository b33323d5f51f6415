"""Bounded voter influence: no one voter, token or address moves the leaderboard much.

Cap. Of each voter's votes on one preset, only the first `cap` count (W2S_VOTER_CAP, 6 by default;
0 turns it off); the same holds per client address (hashed), so new tokens from one address do not
lift it. Votes beyond the cap are stored and exported as any vote, and the admin's voter table
shows how many of a voter's votes count. Why a count and not a weight: a script that votes the same
way a thousand times then weighs as much as a careful rater who voted twenty times, no more.

Followers. A voter whose picks land on one method far more often than chance allows over many
votes, voting fast, is flagged (`followers`): with answers shown blind in a shuffled order, an
honest rater picks one method in about a third of three-way comparisons even when it is the best.
The flag is shown in the admin table and the leaderboard can drop flagged voters.
"""

from __future__ import annotations

import math

import pandas as pd

FOLLOW_MIN_PICKS = 10  # a pattern needs this many picks before it means anything
FOLLOW_P = 1e-3  # one-sided binomial p-value below which a voter's favourite is too favoured
FOLLOW_FAST_SECONDS = 5.0  # ... and the voter's median seconds from answers shown to vote below this


def cap_votes(votes: pd.DataFrame, comparisons: pd.DataFrame, cap: int) -> pd.DataFrame:
    """The votes that count: each voter's and each address's first `cap` votes per preset (0: all)."""
    if cap <= 0 or votes.empty:
        return votes
    preset = votes["comparison_id"].map(comparisons.set_index("id")["preset"])
    order = votes.assign(_preset=preset.fillna("")).sort_values("id")
    keep = order.groupby(["voter_id", "_preset"]).cumcount() < cap
    if "client_hash" in order:
        known = order["client_hash"].notna()
        rank = order[known].groupby(["client_hash", "_preset"]).cumcount()
        keep &= ~known | (rank.reindex(order.index, fill_value=0) < cap)
    return votes.loc[order.index[keep.to_numpy()]].sort_values("id")


def followers(picked: pd.DataFrame, shown: pd.Series) -> set[str]:
    """Voters whose picks follow one method label far above chance, voting fast.

    `picked`: the answer picks (voter_id, label, seconds_shown, comparison_id), `shown`: how many
    answers each comparison showed (by comparison id), for the chance of picking any one method.
    """
    out: set[str] = set()
    if picked.empty:
        return out
    for voter, mine in picked.groupby("voter_id"):
        if len(mine) < FOLLOW_MIN_PICKS:
            continue
        top = int(mine["label"].value_counts().iloc[0])
        chance = float((1 / mine["comparison_id"].map(shown).clip(lower=2)).mean())
        from scipy import stats  # here: ~0.5 s to import, and only this needs it

        p_value = stats.binom.sf(top - 1, len(mine), chance)
        seconds = mine["seconds_shown"].dropna()
        fast = not len(seconds) or float(seconds.median()) < FOLLOW_FAST_SECONDS
        if p_value < FOLLOW_P and fast and not math.isnan(p_value):
            out.add(str(voter))
    return out
