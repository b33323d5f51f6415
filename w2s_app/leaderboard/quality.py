"""Vote quality: filters for the leaderboard and the admin per-voter table.

Filters: votes cast faster than a threshold after the answers were shown, and voters whose answer
picks all went to one display position (at least `MIN_PICKS` of them: a pattern, not chance).
"""

from __future__ import annotations

import pandas as pd

from ..store.judgements import human_votes
from .influence import followers

LETTERS = "ABCDEFGH"  # display positions, as on the page

MIN_PICKS = 3


def picks(votes: pd.DataFrame, gens: pd.DataFrame) -> pd.DataFrame:
    """Votes for one answer, with the display position and label of the answer chosen."""
    chosen = votes[votes["choice"] == "generation"].copy()
    chosen["generation_id"] = chosen["generation_id"].astype("int64")  # nullable column: read as float
    info = gens.set_index("id")[["position", "label"]]
    return chosen.join(info, on="generation_id", how="inner")


def one_position_voters(votes: pd.DataFrame, gens: pd.DataFrame, min_picks: int = MIN_PICKS) -> set[str]:
    """Voters with at least `min_picks` answer picks, every one at the same display position."""
    p = picks(votes, gens)
    if p.empty:
        return set()
    stats = p.groupby("voter_id")["position"].agg(["count", "nunique"])
    return set(stats[(stats["count"] >= min_picks) & (stats["nunique"] == 1)].index)


def filter_votes(
    votes: pd.DataFrame,
    gens: pd.DataFrame,
    min_seconds: float = 0.0,
    drop_one_position: bool = False,
    drop_followers: bool = False,
) -> pd.DataFrame:
    """Votes kept by the filters (a vote with no measured time is kept)."""
    out = votes
    if min_seconds and len(out):
        fast = out["seconds_shown"].notna() & (out["seconds_shown"].astype(float) < min_seconds)
        out = out[~fast]
    if drop_one_position and len(out):
        out = out[~out["voter_id"].isin(one_position_voters(out, gens))]
    if drop_followers and len(out):
        out = out[~out["voter_id"].isin(method_followers(out, gens))]
    return out


def method_followers(votes: pd.DataFrame, gens: pd.DataFrame) -> set[str]:
    """Voters whose picks follow one method far above chance, fast (influence.followers)."""
    shown = gens[gens["status"] == "done"].groupby("comparison_id").size()
    return followers(picks(votes, gens), shown)


def voter_table(
    votes: pd.DataFrame, gens: pd.DataFrame, hash_id=lambda v: v, counted: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per voter: votes (and how many count), agreement with the majority, position bias, median seconds,
    and whether the voter follows one method (admin only). `counted`: the votes the cap lets count.

    Agreement: the share of the voter's decisive pairs (picked answer vs each other answer) that go
    the way most votes go between those two methods. Position bias: the share of the voter's picks
    at their most-picked position (1/3 is no bias with three columns), and that position.
    """
    cols = ["voter", "votes", "counted", "picks", "agreement", "top_position", "position_share",
            "median_seconds", "follows_one_method"]  # fmt: skip
    votes = human_votes(votes)  # judges are not raters (see leaderboard.agreement for them)
    if votes.empty:
        return pd.DataFrame(columns=cols)
    p = picks(votes, gens)
    by_comp = {cid: g for cid, g in gens[gens["status"] == "done"].groupby("comparison_id")}
    pairs = []  # (voter, winner label, loser label)
    for v in p.itertuples():
        for other in by_comp.get(v.comparison_id, pd.DataFrame(columns=["label"]))["label"]:
            if other != v.label:
                pairs.append((v.voter_id, v.label, other))
    pf = pd.DataFrame(pairs, columns=["voter", "win", "lose"])
    if len(pf):
        wins = pf.groupby(["win", "lose"]).size()
        majority = {(a, b): wins.get((a, b), 0) >= wins.get((b, a), 0) for a, b in wins.index}
        pf["agrees"] = [majority.get((a, b), False) for a, b in zip(pf["win"], pf["lose"], strict=True)]
    rows = []
    counted_ids = set(counted["id"]) if counted is not None else set(votes["id"])
    flagged = method_followers(votes, gens)
    for voter, mine in votes.groupby("voter_id"):
        mp = p[p["voter_id"] == voter]
        counts = mp["position"].value_counts()
        agree = pf.loc[pf["voter"] == voter, "agrees"] if len(pf) else pd.Series(dtype=bool)
        rows.append(
            {
                "voter": hash_id(voter),
                "votes": len(mine),
                "counted": int(mine["id"].isin(counted_ids).sum()),
                "picks": len(mp),
                "agreement": round(float(agree.mean()), 3) if len(agree) else None,
                "top_position": LETTERS[int(counts.index[0])] if len(counts) else None,
                "position_share": round(float(counts.iloc[0] / len(mp)), 3) if len(counts) else None,
                "median_seconds": (
                    round(float(mine["seconds_shown"].median()), 1)
                    if mine["seconds_shown"].notna().any()
                    else None
                ),
                "follows_one_method": voter in flagged,
            }
        )
    return pd.DataFrame(rows, columns=cols).sort_values("votes", ascending=False).reset_index(drop=True)
