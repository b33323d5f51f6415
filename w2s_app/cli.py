"""Command line: generate, batch, export, leaderboard, tune-guide, evaluate, prepare, serve."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from .backends.local import ModelLoadError
from .commands import COMMANDS
from .commands.errors import EXIT_BAD_INPUT, CliError
from .config import ConfigError
from .errors import RequestError
from .wiring import startup_message

BY_NAME = {command.NAME: command for command in COMMANDS}


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments print one line (not the whole usage) and exit 2."""

    def error(self, message: str) -> Any:
        """Print one line and exit 2 (argparse calls this on bad arguments)."""
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand (each command module declares its own options)."""
    parser = OneLineParser(prog="python -m w2s_app", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad input exits 2 with one line on stderr, never a traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return BY_NAME[args.command].run(args)
    except (CliError, RequestError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "code", EXIT_BAD_INPUT)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        # A data dir or database that cannot be used, a bad environment: one line, as the app says it.
        message = startup_message(exc)
        if message is None:
            raise
        print(f"error: cannot start: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
