"""`agreement`: how often a judge agrees with people.

Its options and its work are in judge/command.py; this module hands it the deployment's store.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config import Settings
from ..judge import add_agreement_parser, cmd_agreement
from ..wiring import build_services

NAME = "agreement"


def add_parser(subparsers: Any) -> None:
    """Register `agreement` (judge/command.py declares its options)."""
    add_agreement_parser(subparsers)


def run(args: argparse.Namespace) -> int:
    """Print a judge's agreement with people's votes in the deployment's store."""
    settings = Settings.from_env()
    return cmd_agreement(args, settings, build_services(settings).store)
