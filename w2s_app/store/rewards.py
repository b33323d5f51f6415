"""Gold rewards of stored answers: written by the reward worker, read beside people's and a judge's votes."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from .models import AnswerReward, Comparison, Generation, Status

REWARD_COLUMNS = ["generation_id", "comparison_id", "label", "reward", "value"]


class RewardRecords:
    """The answer_reward table: record a comparison's rewards, read them per preset (mixed into Store)."""

    def record_rewards(self, reward: str, values: dict[int, float]) -> None:
        """Store `reward`'s value of each answer (generation id -> value) in one transaction; idempotent."""
        with self.sessions() as s, s.begin():
            for gid, value in values.items():
                s.merge(AnswerReward(generation_id=gid, reward=reward, value=float(value)))

    def answers_to_reward(self, comparison_id: int) -> tuple[str, list[tuple[int, str]]]:
        """(prompt, [(generation id, text)]) of a comparison's finished answers."""
        with self.sessions() as s:
            prompt = s.execute(select(Comparison.prompt).where(Comparison.id == comparison_id)).scalar_one()
            rows = s.execute(
                select(Generation.id, Generation.text).where(
                    Generation.comparison_id == comparison_id, Generation.status == Status.DONE.value
                )
            ).all()
        return prompt, [(int(g), t) for g, t in rows]

    def reward_frame(self, preset: str | None = None, reward: str | None = None) -> pd.DataFrame:
        """Rewards with their answer's comparison and label (of one preset and reward when given)."""
        q = select(
            AnswerReward.generation_id, Generation.comparison_id, Generation.label, AnswerReward.reward,
            AnswerReward.value,
        ).join(Generation, Generation.id == AnswerReward.generation_id)  # fmt: skip
        if preset:
            q = q.where(
                Generation.comparison_id.in_(select(Comparison.id).where(Comparison.preset == preset))
            )
        if reward:
            q = q.where(AnswerReward.reward == reward)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(AnswerReward.generation_id)).all()
        return pd.DataFrame(rows, columns=REWARD_COLUMNS)
