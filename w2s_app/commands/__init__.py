"""The command line's subcommands, one module each: `NAME`, `add_parser(subparsers)` and `run(args)`.

`cli.py` builds the top-level parser from `COMMANDS` (in this order in `--help`) and dispatches to
the chosen command's `run`; the options every comparison command takes are in `run_options.py`.
"""

from . import agreement, batch, evaluate, export, generate, judge, leaderboard, prepare, serve, tune_guide

COMMANDS = (generate, batch, export, leaderboard, tune_guide, evaluate, prepare, judge, agreement, serve)

__all__ = ["COMMANDS"]
