"""Shared fixtures: tiny random models over the real SmolLM2 and Gemma tokenizers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# One llama.cpp thread per process: its results do not depend on it, and the suite's workers share
# two cores (two threads each would wait on each other at every barrier).
os.environ.setdefault("W2S_THREADS", "1")
# The same for torch, here and in every process a test starts (apps, CLIs): two workers with two
# torch threads each on two cores wait on each other at every parallel region, several times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The oracles' precision everywhere (auto would pick int8 on a CPU with VNNI): test_precision.py
# and test_precision_auto.py cover the other modes.
os.environ.setdefault("W2S_DTYPE", "float32")

from tests.tiny_models import tiny_presets_toml, tiny_set
from w2s_app.backends.local import ModelPool
from w2s_app.backends.roles import Models, Role, RoleSpec

PLAIN = "Question: {prompt}\nAnswer:"
ADMIN_KEY = "test-admin-key-0123456789"


@pytest.fixture(scope="session")
def tiny_paths() -> dict[str, Path]:
    """Paths of the tiny models (built once, cached under the user cache dir)."""
    return tiny_set()


@pytest.fixture(scope="session")
def pool() -> ModelPool:
    """One model pool for the whole session (CPU, float32)."""
    return ModelPool(device="cpu", dtype="float32")


def make_models(pool: ModelPool, paths: dict[str, Path], strong: str = "strong_smol", stop=()) -> Models:
    """Strong + guide pair roles over tiny models."""
    return Models(
        strong=Role(RoleSpec(str(paths[strong]), PLAIN, stop=tuple(stop)), pool.get(str(paths[strong]))),
        tuned=Role(RoleSpec(str(paths["tuned"]), "chat"), pool.get(str(paths["tuned"]))),
        untuned=Role(RoleSpec(str(paths["untuned"]), "chat"), pool.get(str(paths["untuned"]))),
    )


@pytest.fixture(scope="session")
def same_tok(pool, tiny_paths) -> Models:
    """Strong and guides share the SmolLM2 tokenizer."""
    return make_models(pool, tiny_paths, "strong_smol")


@pytest.fixture(scope="session")
def cross_tok(pool, tiny_paths) -> Models:
    """Strong model on the Gemma tokenizer, guides on SmolLM2's."""
    return make_models(pool, tiny_paths, "strong_gemma")


# Scripted models (engines/fake.py) for tests about the page, the store, the service and the limits:
# they run through the real search, driver, shared loop and queue, in milliseconds per comparison.
FAKE_PRESETS = """
[fake]
description = "Scripted words (tests of the page, store, service and limits)."
purpose = "Tests: scripted words, no model"
prompts = "assets/prompts/instructions.txt"
[fake.strong]
source = "fake"
template = "Question: {prompt}\\nAnswer:"
[fake.tuned]
source = "fake"
[fake.untuned]
source = "fake"
[fake.defaults]
max_new_tokens = 24
w = 2
k = 2
l = 8
n = 4
"""


def fake_preset(name: str, description: str, strong: str, **defaults: int) -> str:
    """A preset of scripted words: the strong role's `fake:` source and options, fake guides."""
    lines = [f"[{name}]", f'description = "{description}"', f"[{name}.strong]", f'source = "{strong}"']
    lines += [
        f"[{name}.tuned]",
        'source = "fake"',
        f"[{name}.untuned]",
        'source = "fake"',
        f"[{name}.defaults]",
    ]
    lines += [f"{key} = {value}" for key, value in defaults.items()]
    return "\n" + "\n".join(lines) + "\n"


FAKE_PRESETS += fake_preset(
    "fake-twins", "Every method writes the same words.", "fake:same", max_new_tokens=12
)
FAKE_PRESETS += fake_preset(
    "fake-slow", "Scripted words, 20 ms a step (progress, deadlines, queues).", "fake:delay=0.02",
    max_new_tokens=48, l=8,
)  # fmt: skip
FAKE_PRESETS += fake_preset(
    "fake-endless", "Scripted words, 20 ms a step, never ending (queues, disconnects, cancellation).",
    "fake:delay=0.02,eos=0", max_new_tokens=24,
)  # fmt: skip


@pytest.fixture(scope="session")
def tiny_presets_file(tiny_paths, tmp_path_factory) -> Path:
    """A presets file defining 'tiny' and 'tiny-cross' (tiny random models) and the fake presets."""
    path = tmp_path_factory.mktemp("presets") / "presets.toml"
    path.write_text(tiny_presets_toml(tiny_paths) + FAKE_PRESETS)
    return path


@pytest.fixture
def tiny_env(monkeypatch, tiny_presets_file, tmp_path) -> Path:
    """Environment for CLI runs on the tiny presets with a fresh data dir."""
    monkeypatch.setenv("W2S_PRESETS", str(tiny_presets_file))
    monkeypatch.setenv("W2S_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    return tmp_path


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session; skipped outside CI when not installed."""
    from tests.db import PostgresServer, pg_bin

    if pg_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL must be installed in CI (scripts/install.sh --dev)")
        pytest.skip("PostgreSQL not installed: apt-get install postgresql")
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'w2s.sqlite3'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture(scope="session")
def app_server(tiny_presets_file, tmp_path_factory):
    """The real app process on the tiny presets (votes open 1 s after answers appear)."""
    from tests.app_server import AppServer

    server = AppServer(
        tiny_presets_file,
        tmp_path_factory.mktemp("app") / "data",
        W2S_MIN_VOTE_SECONDS="1",
        W2S_MAX_COST="60000",  # tiny models: a long comparison is still quick
        W2S_ADMIN_KEY=ADMIN_KEY,
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def serve_server(tiny_presets_file, tmp_path_factory):
    """The real service (python -m w2s_app serve), open (no key), with room for a few waiting requests."""
    from tests.serve_server import ServeServer

    # No cost cap or deadline here (tests/test_composition.py checks those): searches up to T=4096 run.
    server = ServeServer(
        tiny_presets_file,
        tmp_path_factory.mktemp("serve") / "data",
        W2S_MAX_QUEUE="4",
        W2S_MAX_COST="0",
        W2S_REQUEST_SECONDS="0",
    )
    yield server
    server.stop()
