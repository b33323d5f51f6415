"""Configuration: the deployment's settings (environment) and the presets (TOML)."""

from .errors import ConfigError
from .presets import BUILTIN_PRESETS, CHAT, DEFAULT_PRESET, REPO, ROLES, Preset, RoleSpec, load_presets
from .settings import (
    ENGINE_NAMES,
    KEYS,
    OPENAI_API_KEY,
    PRECISIONS,
    Declared,
    Settings,
    cache_dir,
    default_data_dir,
    env_reference,
    read_key,
)

__all__ = [
    "BUILTIN_PRESETS",
    "CHAT",
    "DEFAULT_PRESET",
    "ENGINE_NAMES",
    "KEYS",
    "OPENAI_API_KEY",
    "PRECISIONS",
    "REPO",
    "ROLES",
    "ConfigError",
    "Declared",
    "Preset",
    "RoleSpec",
    "Settings",
    "cache_dir",
    "default_data_dir",
    "env_reference",
    "load_presets",
    "read_key",
]
