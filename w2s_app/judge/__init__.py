"""Automatic judges: any instruction model on an OpenAI-compatible server votes on stored comparisons.

The judge sees each pair of answers in both orders under a versioned rubric (rubrics/), its
replies are read strictly (parse.py), and its verdict on a comparison is stored as a vote of voter
`judge:<model>` with every pair's replies and cost (store/judgements.py). Judge votes never enter
people's leaderboard; see leaderboard/vote_sources.py for judge and mixed boards and
leaderboard/agreement.py for how often a judge agrees with people.
"""

from .ask import JudgeAsk, JudgeRun, parse_since, prepare
from .client import JudgeSetupError, OpenAIJudge, make_judge
from .command import add_agreement_parser, add_judge_parser, cmd_agreement, cmd_judge
from .page_action import judge_now
from .prompt import PROMPT_VERSION, Rubric, load_rubric
from .protocol import Judge, Reply, judge_comparison
from .run import JudgeReport, run_judge

__all__ = [
    "PROMPT_VERSION",
    "Judge",
    "JudgeAsk",
    "JudgeReport",
    "JudgeRun",
    "JudgeSetupError",
    "OpenAIJudge",
    "Reply",
    "Rubric",
    "add_agreement_parser",
    "add_judge_parser",
    "cmd_agreement",
    "cmd_judge",
    "judge_comparison",
    "judge_now",
    "load_rubric",
    "make_judge",
    "parse_since",
    "prepare",
    "run_judge",
]
