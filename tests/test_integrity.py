"""Bad input and vote integrity: property-based checks of the runner's and the vote API's inputs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_store import stored
from w2s_app import options
from w2s_app.config import Settings
from w2s_app.contracts import SamplingParams
from w2s_app.errors import RateLimited
from w2s_app.runner import RequestError, build_methods, clean_prompt
from w2s_app.store import Store, VoteError

PRESET = Settings.from_env({}).preset("offline")
values = st.one_of(
    st.none(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.text(max_size=8), st.booleans()
)


@given(st.text(max_size=300))
def test_clean_prompt_accepts_or_refuses_clearly(text):
    try:
        out = clean_prompt(text)
    except RequestError as exc:
        assert str(exc)
        return
    assert out and out == out.strip()
    assert "\x00" not in out
    assert all(c in "\n\t" or c.isprintable() or ord(c) > 127 for c in out)


@given(
    st.lists(st.sampled_from(["baseline", "bon", "w2s", "eft", "magic", ""]), max_size=4),
    st.fixed_dictionaries({k: values for k in ("w", "k", "l", "n", "beta")}),
)
def test_method_settings_accept_or_refuse_clearly(names, given_values):
    try:
        methods = build_methods(names, options.resolve(given_values, PRESET.defaults))
    except RequestError as exc:
        assert str(exc)
        return
    for name, params in methods:
        if name == "w2s":
            assert 1 <= params["w"] <= 16 and 1 <= params["k"] <= 16 and 1 <= params["l"] <= 4096
        if name == "bon":
            assert 1 <= params["n"] <= 64


@given(st.fixed_dictionaries({k: values for k in ("max_new_tokens", "temperature", "top_p", "seed")}))
def test_sampling_settings_accept_or_refuse_clearly(given_values):
    try:
        sp = SamplingParams.from_values(options.resolve(given_values, PRESET.defaults))
    except RequestError as exc:
        assert str(exc)
        return
    assert 1 <= sp.max_new_tokens <= 4096 and 0 <= sp.temperature <= 5 and 0 < sp.top_p <= 1


@pytest.fixture(scope="module")
def vote_store(tmp_path_factory):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('votes') / 'v.sqlite3'}")
    return store, *stored(store)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    comparison=st.one_of(st.integers(-5, 10**9), st.text(max_size=6)),
    voter=st.text(max_size=12),
    choice=st.one_of(st.integers(-5, 10**9), st.text(max_size=10), st.none(), st.floats()),
)
def test_vote_api_never_corrupts(vote_store, comparison, voter, choice):
    store, cid, gids = vote_store
    before = len(store.frame("votes"))
    try:
        store.record_vote(comparison, voter, choice)
    except (VoteError, ValueError):
        assert len(store.frame("votes")) == before
        return
    # Accepted only when everything named exists and belongs together.
    assert int(comparison) == cid
    assert choice in ("tie", "all_bad") or int(choice) in gids
    assert len(store.frame("votes")) == before + 1


def test_too_fast_votes_are_refused(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'v.sqlite3'}")
    cid, gids = stored(store)
    with pytest.raises(VoteError, match="too fast"):
        store.record_vote(cid, "bot", gids[0], min_seconds=60)
    assert store.record_vote(cid, "human", gids[0], min_seconds=0.0)


def test_rate_limit_window(tmp_path):
    from w2s_app.limits import Limits, LimitSettings

    lim = Limits(Store(f"sqlite:///{tmp_path / 'w2s.sqlite3'}"), LimitSettings())
    for t in range(3):
        lim.hit("v", "vote", 3, now=float(t))
    with pytest.raises(RateLimited, match="at most 3 a minute; try again in 50 s"):
        lim.hit("v", "vote", 3, now=10.0)
    lim.hit("other", "vote", 3, now=10.0)  # other voters are not affected
    lim.hit("v", "comparison", 3, now=10.0)  # nor other kinds
    lim.hit("v", "vote", 3, now=61.0)  # the window slides
    lim.hit("v", "vote", 0)  # 0 = off


def test_settings_numbers_validated():
    from w2s_app.config import ConfigError

    assert Settings.from_env({"SPACE_ID": "x/y"}).rate_limit == 20
    assert Settings.from_env({}).rate_limit == 20  # on by default everywhere, not only on Spaces
    assert Settings.from_env({"W2S_RATE_LIMIT": "0"}).rate_limit == 0
    assert Settings.from_env({"SPACE_ID": "x/y"}).trusted_proxies == ("private",)
    assert Settings.from_env({}).trusted_proxies == ()
    with pytest.raises(ConfigError, match="W2S_MAX_COST must be a finite number"):
        Settings.from_env({"W2S_MAX_COST": "-1"})
    with pytest.raises(ConfigError, match="W2S_REQUEST_SECONDS must be a finite number"):
        Settings.from_env({"W2S_REQUEST_SECONDS": "inf"})
    with pytest.raises(ConfigError, match="W2S_RATE_LIMIT must be a whole number"):
        Settings.from_env({"W2S_RATE_LIMIT": "lots"})
