"""The arena core: every action a door performs, below the page, the named Gradio API, the JSON route,
the service and the command line.

Issue a token and resolve who asks (`caller`), start and stream a comparison blind (`compare`), vote
and reveal (`votes`), read a board and pace its pollers (`boards`), exports and history (`records`),
the admin's per-voter table and judge (`admin`). Inputs are checked here; a refusal is one
`ArenaError` with a message safe to show, which each door maps once (the page: an error line; the
Gradio API: gr.Error; the JSON route and the service: an HTTP status).
"""

from .errors import ArenaError

__all__ = ["ArenaError"]
