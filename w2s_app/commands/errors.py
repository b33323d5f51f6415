"""The error a command raises for bad input: printed as one line by `cli.main`, with its exit code."""

from __future__ import annotations

EXIT_BAD_INPUT = 2


class CliError(Exception):
    """An error to print without a traceback, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code
