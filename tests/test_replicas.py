"""Two app replicas on one PostgreSQL database share voter tokens and limits (real processes)."""

from __future__ import annotations

import pytest
from gradio_client import Client

from tests.app_server import AppServer


@pytest.fixture(scope="module")
def replicas(postgres, tiny_presets_file, tmp_path_factory):
    url = postgres.new_database()
    # Scripted answers (the fake preset): tokens and limits are the subject here, not models.
    env = {"W2S_DB_URL": url, "W2S_SECRET": "replica-shared-secret-0123456789", "W2S_TOKEN_LIMIT": "4",
           "W2S_RATE_LIMIT": "3", "W2S_MIN_VOTE_SECONDS": "0", "W2S_PRESET": "fake"}  # fmt: skip
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(
                AppServer(tiny_presets_file, tmp_path_factory.mktemp(f"replica-{name}") / "data", **env)
            )
        yield servers
    finally:
        for s in servers:
            s.stop()


def test_token_from_one_replica_works_on_the_other(replicas):
    a, b = (Client(s.url, verbose=False) for s in replicas)
    token = a.predict(api_name="/token")
    out = b.predict("Name a bird.", token, "fake", "baseline,bon", api_name="/compare")
    res = a.predict(out["comparison_id"], "A", token, api_name="/vote")  # shown by b, voted through a
    assert res["recorded"]
    with pytest.raises(Exception, match="already voted"):
        b.predict(out["comparison_id"], "B", token, api_name="/vote")
    history = b.predict(1, "", token, "", api_name="/history")
    assert [r["id"] for r in history] == [out["comparison_id"]]


def test_limits_are_shared_by_the_replicas(replicas):
    a, b = (Client(s.url, verbose=False) for s in replicas)
    # Tokens per address: 4 a minute across both replicas (the first test took one).
    got, refused = [], []
    for client in (a, b, a, b, a, b):
        try:
            got.append(client.predict(api_name="/token"))
        except Exception as exc:
            refused.append(str(exc))
    assert len(got) == 3 and len(refused) == 3 and all("try again in" in m for m in refused)
    # Comparisons per token: 3 a minute, whichever replica answers.
    token = got[0]
    a.predict("One?", token, "fake", "baseline", api_name="/compare")
    b.predict("Two?", token, "fake", "baseline", api_name="/compare")
    a.predict("Three?", token, "fake", "baseline", api_name="/compare")
    with pytest.raises(Exception, match=r"too many comparisons.*try again in"):
        b.predict("Four?", token, "fake", "baseline", api_name="/compare")
