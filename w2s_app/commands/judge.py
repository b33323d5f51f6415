"""`judge`: judge a preset's stored comparisons with a model on an OpenAI-compatible server.

Its options and its work are in judge/command.py; this module hands it the deployment's store.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config import Settings
from ..judge import add_judge_parser, cmd_judge
from ..wiring import build_services

NAME = "judge"


def add_parser(subparsers: Any) -> None:
    """Register `judge` (judge/command.py declares its options)."""
    add_judge_parser(subparsers)


def run(args: argparse.Namespace) -> int:
    """Judge a preset's stored comparisons in the deployment's store."""
    settings = Settings.from_env()
    return cmd_judge(args, settings, build_services(settings).store)
