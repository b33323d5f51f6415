"""The leaderboard computed once per change: cached per view, refreshed in the background.

A request reads the cached board (nothing is fitted per request). A vote (here, or on any replica:
the refresher also watches the vote table's version) marks the boards stale; a background thread
refits every view asked for recently, at most once per `min_interval` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..store.judgements import human_votes, is_judge
from .agreement import agreement
from .board import OUTCOME_COLUMNS, Leaderboard, board_from_outcomes, in_preset, outcomes_from_votes
from .influence import cap_votes
from .quality import filter_votes
from .sources import HUMANS, judge_outcomes, parse_source
from .style import style_board

log = logging.getLogger(__name__)
MAX_VIEWS = 32


@dataclass(frozen=True)
class BoardView:
    """One way of looking at the votes: preset ('' = all), filters, style control, and whose votes.

    `source`: 'humans' (people only, the default), 'judge:<model>' (one automatic judge) or
    'humans+judge:<model>' (both); see sources.py. The filters apply to people's votes.
    """

    preset: str = ""
    min_vote_seconds: float = 0.0
    drop_one_position: bool = False
    style_control: bool = False
    source: str = HUMANS
    drop_followers: bool = False  # voters whose picks follow one method far above chance, fast (influence.py)


def build_board(store: Any, view: BoardView, n_boot: int = 200, voter_cap: int = 0) -> Leaderboard:
    """Fit one view from the database (what the cache keeps, and what the CLI prints).

    A board of a judge (alone or with people) also carries that judge's agreement with people
    (agreement.py), so the page reads it from the cache too. `n_boot` is accepted for older
    callers and unused (the intervals are analytic, fit.py). People's votes count up to `voter_cap`
    per voter and per address and preset (influence.py; 0: all).
    """
    humans, judge = parse_source(view.source)
    preset = view.preset or None
    votes, gens, comps = store.leaderboard_frames(preset)
    votes, gens = in_preset(votes, gens, comps, preset)
    people = cap_votes(human_votes(votes), comps, voter_cap)
    people = filter_votes(people, gens, view.min_vote_seconds, view.drop_one_position, view.drop_followers)
    used, outcomes = [], []
    if humans:
        used.append(people)
        outcomes.append(outcomes_from_votes(people, gens) if len(people) else None)
    judgements = judge_votes = None
    if judge is not None:
        judge_votes = votes[votes["voter_id"] == judge] if len(votes) else votes
        judgements = store.judgement_frame(preset, judge)
        used.append(judge_votes)
        outcomes.append(judge_outcomes(judgements, gens, set(judge_votes["id"].astype(int)))[OUTCOME_COLUMNS])
    all_votes = pd.concat(used, ignore_index=True) if any(len(v) for v in used) else votes.iloc[:0]
    frames = [o for o in outcomes if o is not None and len(o)]
    joined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=OUTCOME_COLUMNS)
    if view.style_control and len(joined):
        ids = sorted(set(joined["ga"].astype(int)) | set(joined["gb"].astype(int)))
        board = style_board(joined, all_votes, gens, store.generation_texts(ids), view.source)
    else:
        board = board_from_outcomes(joined, all_votes, gens, source=view.source)
    board.judges = sorted({v for v in votes["voter_id"] if is_judge(v)}) if len(votes) else []
    if judge is not None:
        board.agreement = agreement(people, judge_votes, gens, judgements, judge)
    return board


class LeaderboardCache:
    """Boards per view; `get` never fits twice for one version of the votes."""

    def __init__(
        self, store: Any, min_interval: float = 5.0, poll: float = 10.0, n_boot: int = 200, voter_cap: int = 0
    ) -> None:
        self.store = store
        self.voter_cap = voter_cap  # counted votes per voter (and address) and preset; 0: all
        self.min_interval = min_interval
        self.poll = poll
        self.n_boot = n_boot
        self.fits = 0  # how many fits ran (tests and benchmarks read it)
        self._boards: OrderedDict[BoardView, tuple[Any, Leaderboard]] = OrderedDict()
        self._lock = threading.Lock()  # guards _boards
        self._fit_lock = threading.Lock()  # one fit at a time: pollers wait for it, never add their own
        self._stale = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background refresher (daemon thread)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="w2s-leaderboard", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the refresher."""
        self._stop.set()
        self._stale.set()

    def changed(self) -> None:
        """A vote landed: refresh soon (in the background)."""
        self._stale.set()

    def get(self, view: BoardView) -> Leaderboard:
        """The cached board of a view; the first request of a view fits it once."""
        with self._lock:
            hit = self._boards.get(view)
            if hit is not None:
                self._boards.move_to_end(view)
                return hit[1]
        with self._fit_lock:
            with self._lock:  # another request may have fitted it while we waited
                if view in self._boards:
                    return self._boards[view][1]
            version = self.store.vote_version()
            board = build_board(self.store, view, self.n_boot, self.voter_cap)
            self.fits += 1
            with self._lock:
                self._boards[view] = (version, board)
                while len(self._boards) > MAX_VIEWS:
                    self._boards.popitem(last=False)
        return board

    def refresh(self) -> int:
        """Refit every cached view whose votes changed; returns how many were refitted."""
        version = self.store.vote_version()
        with self._lock:
            views = [v for v, (ver, _) in self._boards.items() if ver != version]
        for view in views:
            with self._fit_lock:
                board = build_board(self.store, view, self.n_boot, self.voter_cap)
                self.fits += 1
            with self._lock:
                self._boards[view] = (version, board)
        return len(views)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stale.wait(self.poll)  # a local vote wakes us; otherwise look for other replicas' votes
            self._stale.clear()
            if self._stop.is_set():
                return
            started = time.monotonic()
            try:
                self.refresh()
            except Exception:  # a failed refresh keeps the old boards; the next change tries again
                log.exception("leaderboard refresh failed")
            self._stop.wait(max(0.0, self.min_interval - (time.monotonic() - started)))
