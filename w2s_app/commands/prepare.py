"""`prepare`: load a preset's models ahead of time, so the first comparison does not wait for them."""

from __future__ import annotations

import argparse
from typing import Any

from ..config import Settings
from ..wiring import build_services

NAME = "prepare"


def add_parser(subparsers: Any) -> None:
    """Register `prepare`."""
    p = subparsers.add_parser(
        NAME,
        help="load a preset's models ahead of time (the transformers engine also converts GGUF weights)",
    )
    p.add_argument("--preset", default=None)


def run(args: argparse.Namespace) -> int:
    """Load every model of a preset (llama.cpp reads the GGUF files as they are; the transformers
    engine converts them to its weights once, cached), printing what each source loaded."""
    services = build_services(Settings.from_env())
    for line in services.engines.prepare(services.runner.preset(args.preset)):
        print(line)  # the source's kind knows what to load
    return 0
