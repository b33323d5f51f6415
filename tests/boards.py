"""Boards of hand-made vote frames, fitted the way the app fits every board (leaderboard.cache.build_board)."""

from __future__ import annotations

import pandas as pd

from w2s_app.leaderboard import BoardView, Leaderboard, build_board


class FrameStore:
    """The store's board reads over in-memory frames shaped like its tables (votes need `voter_id`)."""

    def __init__(
        self,
        votes: pd.DataFrame,
        gens: pd.DataFrame,
        comps: pd.DataFrame,
        texts: dict[int, str] | None = None,
    ) -> None:
        self.frames = votes, gens, comps
        self.texts = texts

    def leaderboard_frames(
        self, preset: str | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Every frame whole: build_board itself keeps the preset's blind votes (leaderboard.board.in_preset)."""
        return self.frames

    def reward_frame(self, preset: str | None = None, reward: str | None = None) -> pd.DataFrame:
        """No gold rewards in hand-made frames."""
        return pd.DataFrame(columns=["generation_id", "comparison_id", "label", "reward", "value"])

    def generation_texts(self, ids: list[int]) -> dict[int, str]:
        """Answer texts by generation id (style control reads them)."""
        if self.texts is None:
            raise AssertionError("a style-controlled board needs the answers' texts")
        return {int(i): self.texts[int(i)] for i in ids if int(i) in self.texts}


def fit_board(
    votes: pd.DataFrame,
    gens: pd.DataFrame,
    comps: pd.DataFrame,
    preset: str = "",
    texts: dict[int, str] | None = None,
    style_control: bool = False,
) -> Leaderboard:
    """People's board of these frames (no filter, no voter cap), plain or net of style."""
    view = BoardView(preset=preset, style_control=style_control)
    return build_board(FrameStore(votes, gens, comps, texts), view)
