"""Presets: named model setups (the strong model, the guide pair, default settings), from TOML files."""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..options import BY_NAME, OptionError, validate
from .errors import ConfigError

BUILTIN_PRESETS = Path(__file__).with_name("presets.toml")
REPO = Path(__file__).resolve().parents[2]  # a preset's relative `prompts` path starts here
DEFAULT_PRESET = "sentiment-positive"  # the offline pair steers measurably there (docs/tuning.md, evaluate)
ROLES = ("strong", "tuned", "untuned")
CHAT = "chat"


@dataclass(frozen=True)
class RoleSpec:
    """How one role (strong, tuned, untuned) is set up in a preset."""

    source: str
    template: str = CHAT
    system: str | None = None
    eos: str | None = None  # token text that ends a response for this role; default: tokenizer EOS
    stop: tuple[str, ...] = ()
    adapter: str | None = None  # LoRA adapter folder: tuned = base + adapter
    use_adapter: bool = True  # false: the same weights with the adapter off (the untuned guide)
    # Guides only: score the end-of-answer token of a finished answer (the paper's score). A pair
    # that is one model under two templates may set it off: its EOS term measures how much more
    # the chat template expects an answer to end, which rewards stopping, not answering well.
    score_eos: bool = True
    # Remote roles (source "api" or "api:MODEL"): the server, the model name on it, and the NAME of
    # the environment variable that holds the key (the key itself never enters a preset).
    api_base: str | None = None
    model: str | None = None
    api_key_env: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoleSpec:
        """Build from a preset table, rejecting unknown keys."""
        allowed = {"source", "template", "system", "eos", "stop", "adapter", "use_adapter", "score_eos"}
        allowed |= {"api_base", "model", "api_key_env"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "source" not in data:
            raise ValueError("missing 'source'")
        values = dict(data)
        values["stop"] = tuple(values.get("stop", ()))
        return cls(**values)


@dataclass(frozen=True)
class Preset:
    """A named model setup: the strong model and the guide pair, plus default settings."""

    name: str
    description: str
    strong: RoleSpec
    tuned: RoleSpec
    untuned: RoleSpec
    defaults: dict[str, Any] = field(default_factory=dict)
    purpose: str = ""  # one line for the preset dropdown
    prompts: Path | None = None  # a prompt pool, one prompt a line (the Next button, examples)
    reward: str | None = None  # a gold reward per answer: vader-positive, vader-negative or module:function
    arms: tuple[
        str, ...
    ] = ()  # declared arms, as the board names them: 'baseline', 'bon N16', 'w2s W4 K4 L5'

    def models_summary(self) -> str:
        """One line naming the three models."""
        return f"strong={self.strong.source}; tuned={self.tuned.source}; untuned={self.untuned.source}"


def _preset_from_table(name: str, table: dict[str, Any], origin: str) -> Preset:
    """Validate one preset table."""
    try:
        roles = {r: RoleSpec.from_dict(table[r]) for r in ROLES}
    except KeyError as exc:
        raise ConfigError(f"preset {name!r} in {origin}: missing role [{name}.{exc.args[0]}]") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"preset {name!r} in {origin}: {exc}") from exc
    defaults = dict(table.get("defaults", {}))
    unknown = set(defaults) - set(BY_NAME)
    if unknown:
        raise ConfigError(f"preset {name!r} in {origin}: unknown defaults {sorted(unknown)}")
    try:
        validate(defaults)  # the same bounds as every request's
    except OptionError as exc:
        raise ConfigError(f"preset {name!r} in {origin}: defaults: {exc}") from exc
    prompts = table.get("prompts")
    if prompts is not None and (not isinstance(prompts, str) or not prompts.strip()):
        raise ConfigError(f"preset {name!r} in {origin}: prompts must be the path of a text file")
    if prompts and not (REPO / prompts).is_file():
        raise ConfigError(f"preset {name!r} in {origin}: prompts file {REPO / prompts} does not exist")
    reward = table.get("reward")
    if reward is not None and (not isinstance(reward, str) or not reward.strip()):
        raise ConfigError(
            f"preset {name!r} in {origin}: reward must name a reward (vader-positive, module:function)"
        )
    arms = table.get("arms", [])
    if not isinstance(arms, list) or not all(isinstance(a, str) and a.strip() for a in arms):
        raise ConfigError(f'preset {name!r} in {origin}: arms must be a list of arms such as "bon N16"')
    return Preset(
        name,
        str(table.get("description", "")),
        reward=reward.strip() if reward else None,
        arms=tuple(" ".join(a.split()) for a in arms),
        defaults=defaults,
        purpose=str(table.get("purpose", "")),
        prompts=REPO / prompts if prompts else None,
        **roles,
    )


# Each presets file is parsed once per version of it (its modification time and size): a comparison
# reads the presets several times (the door, the plan, the engines), and parsing every TOML file each
# time was work on every request. Presets are frozen, so the parsed ones can be shared.
_PARSED: dict[Path, tuple[tuple[int, int, int], dict[str, Preset]]] = {}
_PARSED_LOCK = threading.Lock()
PARSES = [0]  # how many times a presets file was parsed in this process (tests count it)


def _presets_of(path: Path) -> dict[str, Preset]:
    """The presets one file declares, parsed once per version of the file."""
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    with _PARSED_LOCK:
        hit = _PARSED.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"presets file {path}: {exc}") from exc
    parsed = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"presets file {path}: {name!r} is not a table")
        parsed[name] = _preset_from_table(name, table, str(path))
    with _PARSED_LOCK:
        _PARSED[path] = (stamp, parsed)
        PARSES[0] += 1
    return parsed


def load_presets(extra: list[Path] | None = None) -> dict[str, Preset]:
    """Built-in presets, then each extra file in order (later names replace earlier ones)."""
    presets: dict[str, Preset] = {}
    for path in [BUILTIN_PRESETS, *(extra or [])]:
        if path.is_file():
            presets.update(_presets_of(path))
    return presets
