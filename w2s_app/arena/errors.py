"""The arena core's one error type, and how a database that does not answer becomes one."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


class ArenaError(ValueError):
    """A message safe to show a client: the core's one error type, which each door maps once."""


DATABASE_DOWN = "the database is not answering right now; nothing was recorded. Try again in a moment"


def database_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """A page action whose database does not answer says so (an ArenaError), instead of a generic error."""

    @functools.wraps(fn)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except OperationalError as exc:  # connection refused, server gone, database locked for good
            log.warning("database unavailable: %s", str(getattr(exc, "orig", exc)).strip().splitlines()[0])
            raise ArenaError(DATABASE_DOWN) from exc

    return wrapped
