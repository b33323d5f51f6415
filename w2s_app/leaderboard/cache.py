"""The leaderboard computed once per change: cached per view, refreshed in the background.

A request reads the cached board (nothing is fitted per request). A vote (here, or on any replica:
the refresher also watches the vote table's version) marks the boards stale; a background thread
refits every view asked for recently, at most once per `min_interval` seconds.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy.exc import OperationalError

from ..store.judgements import human_votes, is_judge
from .agreement import agreement
from .board import OUTCOME_COLUMNS, Leaderboard, board_from_outcomes, in_preset, outcomes_from_votes
from .gold import gold_views
from .influence import cap_votes
from .quality import filter_votes
from .style import style_board
from .vote_sources import HUMANS, judge_outcomes, parse_source

log = logging.getLogger(__name__)
MAX_VIEWS = 32
MAX_PENDING = 8  # new views queued for the background at once; more are refused (BoardPending)
NEW_VIEW_SECONDS = 1.0  # the background fits at most one new view per this many seconds


@dataclass(frozen=True)
class BoardView:
    """One way of looking at the votes: preset ('' = all), filters, style control, and whose votes.

    `vote_source`: 'humans' (people only, the default), 'judge:<model>' (one automatic judge) or
    'humans+judge:<model>' (both); see vote_sources.py. The filters apply to people's votes.
    """

    preset: str = ""
    min_vote_seconds: float = 0.0
    drop_one_position: bool = False
    style_control: bool = False
    vote_source: str = HUMANS  # the `source` setting of views.FIELDS
    drop_followers: bool = False  # voters whose picks follow one method far above chance, fast (influence.py)


def build_board(
    store: Any, view: BoardView, n_boot: int = 200, voter_cap: int = 0, declared: tuple[str, ...] = ()
) -> Leaderboard:
    """Fit one view from the database (what the cache keeps, and what the CLI prints).

    A board of a judge (alone or with people) also carries that judge's agreement with people
    (agreement.py), so the page reads it from the cache too. `n_boot` is accepted for older
    callers and unused (the intervals are analytic, fit.py). People's votes count up to `voter_cap`
    per voter and per address and preset (influence.py; 0: all).
    """
    humans, judge = parse_source(view.vote_source)
    preset = view.preset or None
    votes, gens, comps = store.leaderboard_frames(preset)
    votes, gens = in_preset(votes, gens, comps, preset)
    # The filters see every vote a voter cast (a capped voter would have too few picks to show a
    # pattern); the cap then bounds what each remaining voter and address can move.
    people = filter_votes(
        human_votes(votes), gens, view.min_vote_seconds, view.drop_one_position, view.drop_followers
    )
    people = cap_votes(people, comps, voter_cap)
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
        board = style_board(joined, all_votes, gens, store.generation_texts(ids), view.vote_source)
    else:
        board = board_from_outcomes(joined, all_votes, gens, vote_source=view.vote_source)
    board.judges = sorted({v for v in votes["voter_id"] if is_judge(v)}) if len(votes) else []
    if judge is not None:
        board.agreement = agreement(people, judge_votes, gens, judgements, judge)
    if declared and len(board.table):
        # The preset's declared arms, and any other configuration (a rater's sliders): a custom arm.
        board.table["arm"] = ["declared" if e in declared else "custom" for e in board.table["entity"]]
    # Gold rewards are read beside the board, never into it: the people's table does not change.
    rewards = store.reward_frame(preset)
    if len(rewards):
        rewards = rewards[rewards["generation_id"].isin(gens["id"])]
        board.gold = gold_views(rewards, people, gens, judge_votes, judgements, judge)
    return board


class BoardPending(Exception):
    """A view the background has not fitted yet; ask again after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"this leaderboard view is being computed; ask again in {math.ceil(retry_after)} s")
        self.retry_after = retry_after


class LeaderboardCache:
    """Boards per view, fitted in one background thread; `get` never fits twice for one version of the votes.

    Once started, a request never fits: a view not yet cached is queued for the background, which
    fits new views at most one per `new_view_seconds` (so asking for many new views costs the
    process a bounded share of a core) and refits changed ones at most once per `min_interval`.
    Before `start` (a command-line process) `get` fits in the caller's thread.
    """

    def __init__(
        self,
        store: Any,
        min_interval: float = 5.0,
        poll: float = 10.0,
        n_boot: int = 200,
        voter_cap: int = 0,
        new_view_seconds: float = NEW_VIEW_SECONDS,
        arms_of: Callable[[str], tuple[str, ...]] | None = None,
    ) -> None:
        self.store = store
        self.arms_of = arms_of  # a preset's declared arms (its board marks the others custom)
        self.voter_cap = voter_cap  # counted votes per voter (and address) and preset; 0: all
        self.min_interval = min_interval
        self.poll = poll
        self.n_boot = n_boot
        self.new_view_seconds = new_view_seconds
        self.fits = 0  # how many fits ran (tests and benchmarks read it)
        self._boards: OrderedDict[BoardView, tuple[Any, Leaderboard]] = OrderedDict()
        self._wanted: OrderedDict[BoardView, threading.Event] = OrderedDict()  # new views, oldest first
        self._failed: dict[BoardView, Exception] = {}  # new views the background could not fit, and why
        self._lock = threading.Lock()  # guards _boards and _wanted
        self._fit_lock = threading.Lock()  # one fit at a time
        self._wake = threading.Event()
        self._stale = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _declared(self, view: BoardView) -> tuple[str, ...]:
        """The arms the view's preset declares (none for the board of every preset, or a missing one)."""
        if not view.preset or self.arms_of is None:
            return ()
        try:
            return self.arms_of(view.preset)
        except Exception:  # a preset removed from the files since its votes: no arms to mark
            return ()

    def start(self) -> None:
        """Start the background fitter (daemon thread)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="w2s-leaderboard", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the fitter."""
        self._stop.set()
        self._wake.set()

    def changed(self) -> None:
        """A vote landed: refresh soon (in the background)."""
        self._stale = True
        self._wake.set()

    def get(self, view: BoardView, wait: float = 30.0) -> Leaderboard:
        """The cached board of a view; a new view waits up to `wait` s for the background (BoardPending)."""
        with self._lock:
            hit = self._boards.get(view)
            if hit is not None:
                self._boards.move_to_end(view)
                return hit[1]
            if self._thread is None:
                ready = None
            else:
                ready = self._wanted.get(view)
                if ready is None:
                    if len(self._wanted) >= MAX_PENDING:
                        raise BoardPending(self.new_view_seconds * len(self._wanted))
                    ready = self._wanted[view] = threading.Event()
                    self._wake.set()
        if ready is None:
            return self._fit_now(view)
        if ready.wait(wait):
            with self._lock:
                if view in self._boards:
                    return self._boards[view][1]
                failed = self._failed.pop(view, None)
            if failed is not None:  # the background could not fit it (a database down): say why
                raise failed
        with self._lock:
            queued = list(self._wanted).index(view) + 1 if view in self._wanted else 1
        raise BoardPending(self.new_view_seconds * queued)

    def _fit_now(self, view: BoardView) -> Leaderboard:
        """Fit a view in this thread (no background running), once per version of the votes."""
        with self._fit_lock:
            with self._lock:  # another request may have fitted it while we waited
                if view in self._boards:
                    return self._boards[view][1]
            return self._fit(view)

    def _fit(self, view: BoardView) -> Leaderboard:
        """Fit one view and keep it (the caller holds _fit_lock)."""
        version = self.store.vote_version()
        board = build_board(self.store, view, self.n_boot, self.voter_cap, self._declared(view))
        self.fits += 1
        with self._lock:
            self._boards[view] = (version, board)
            self._boards.move_to_end(view)
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
                board = build_board(self.store, view, self.n_boot, self.voter_cap, self._declared(view))
                self.fits += 1
            with self._lock:
                if view in self._boards:  # not evicted meanwhile
                    self._boards[view] = (version, board)
        return len(views)

    def _fit_wanted(self) -> None:
        """Fit the oldest new view asked for, and wake whoever waits on it."""
        with self._lock:
            if not self._wanted:
                return
            view, ready = next(iter(self._wanted.items()))
        try:
            with self._fit_lock:
                self._fit(view)
        except Exception as exc:  # handed to whoever waits for this view, then to the next asker
            with self._lock:
                self._failed[view] = exc
                while len(self._failed) > MAX_PENDING:
                    self._failed.pop(next(iter(self._failed)))
            raise
        finally:
            with self._lock:
                self._wanted.pop(view, None)
            ready.set()

    def _run(self) -> None:
        """Fit new views (one per new_view_seconds) and refresh changed ones (one pass per min_interval)."""
        last_new = last_refresh = -math.inf
        last_check = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            waits = [self.poll - (now - last_check)]
            if self._wanted:
                waits.append(self.new_view_seconds - (now - last_new))
            if self._stale:
                waits.append(self.min_interval - (now - last_refresh))
            timeout = max(0.0, min(waits))
            if timeout > 0:
                self._wake.wait(timeout)  # a vote or a new view wakes us; else look for other replicas' votes
                self._wake.clear()
            if self._stop.is_set():
                return
            now = time.monotonic()
            try:
                if self._wanted and now - last_new >= self.new_view_seconds:
                    last_new = now
                    self._fit_wanted()
                if now - last_check >= self.poll:
                    last_check, self._stale = now, True  # another replica's votes show in the version
                if self._stale and now - last_refresh >= self.min_interval:
                    last_refresh, self._stale = now, False
                    self.refresh()
            except OperationalError as exc:  # a database down: one line (the asker is told why)
                log.warning(
                    "leaderboard fit failed: the database is unavailable (%s)", type(exc.orig).__name__
                )
            except Exception:  # a failed fit keeps the old boards; the next change tries again
                log.exception("leaderboard refresh failed")
