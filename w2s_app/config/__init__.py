"""Configuration: the deployment's settings (environment) and the presets (TOML)."""

from .errors import ConfigError
from .presets import BUILTIN_PRESETS, CHAT, DEFAULT_PRESET, REPO, ROLES, Preset, RoleSpec, load_presets
from .settings import ENGINE_NAMES, PRECISIONS, Settings, default_data_dir, env_reference

__all__ = [
    "BUILTIN_PRESETS",
    "CHAT",
    "DEFAULT_PRESET",
    "ENGINE_NAMES",
    "PRECISIONS",
    "REPO",
    "ROLES",
    "ConfigError",
    "Preset",
    "RoleSpec",
    "Settings",
    "default_data_dir",
    "env_reference",
    "load_presets",
]
