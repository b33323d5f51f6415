"""What generate, batch and evaluate share: their options, the settings and services they make, the
comparison request and the result rows."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from .. import options
from ..config import ENGINE_NAMES, PRECISIONS, Settings
from ..runner import CompareRequest, ComparisonResult
from ..wiring import Services, build_services
from .errors import CliError


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options shared by generate, batch and evaluate: every comparison setting (options.py), and the
    engine, precision and server."""
    p.add_argument("--preset", default=None, help="preset name (default: W2S_PRESET or 'sentiment-positive')")
    p.add_argument(
        "--methods",
        default="baseline,bon,w2s",
        help="comma-separated methods or arms: baseline,bon,w2s,eft, or e.g. 'bon N16,w2s W4 K4 L5'",
    )
    p.add_argument("--arms", action="store_true",
                   help="run the preset's declared arms (presets.toml `arms`) instead of --methods")  # fmt: skip
    for o in options.ALL:
        # Values are checked by options.validate (not argparse), so the message is every surface's.
        bounds = o.bounds_text()
        p.add_argument(
            "--" + o.surface_name("cli").replace("_", "-"),
            dest=o.name,
            default=None,
            metavar=o.name.upper(),
            help=f"{o.help} ({bounds}; default: the preset's, else {o.default})",
        )
    p.add_argument("--engine", default=None, help=f"sampler of a local strong model: {', '.join(ENGINE_NAMES)} "
                   "(default: W2S_ENGINE)")  # fmt: skip
    p.add_argument(
        "--dtype",
        choices=PRECISIONS,
        default=None,
        help="precision of local transformers models (default: W2S_DTYPE, else auto)",
    )
    p.add_argument("--api-base", default=None, help="OpenAI-compatible server URL (default: OPENAI_BASE_URL)")
    p.add_argument("--api-model", default=None, help="model name on that server (default: W2S_API_MODEL)")


def comparison_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Every comparison setting given on the command line, by option name (None: not given)."""
    return {o.name: getattr(args, o.name) for o in options.ALL}


def methods(args: argparse.Namespace) -> list[str]:
    """The methods or arms of --methods, in order (blanks dropped), or with --arms the preset's arms."""
    if getattr(args, "arms", False):
        preset = Settings.from_env().preset(args.preset)
        if not preset.arms:
            raise CliError(f"preset {preset.name!r} declares no arms; name them with --methods")
        return list(preset.arms)
    return [m.strip() for m in args.methods.split(",") if m.strip()]


def settings(args: argparse.Namespace) -> Settings:
    """The environment's settings, with the command line's engine, precision and server."""
    out = Settings.from_env()
    if args.engine:
        if args.engine not in ENGINE_NAMES:
            raise CliError(f"unknown engine {args.engine!r}; choose from {', '.join(ENGINE_NAMES)}")
        out = replace(out, engine=args.engine)
    if args.dtype:
        out = replace(out, dtype=args.dtype)
    # The API server and model may come from flags; the key only from OPENAI_API_KEY (never argv).
    if args.api_base:
        out = replace(out, api_base=args.api_base)
    if args.api_model:
        out = replace(out, api_model=args.api_model)
    return out


def services(args: argparse.Namespace) -> Services:
    """The process's services (wiring.build_services): every comparison the CLI runs is stored."""
    return build_services(settings(args))


def request(args: argparse.Namespace, prompt: str, **given: Any) -> CompareRequest:
    """A comparison request from the command line (no request limits: the operator runs it)."""
    return CompareRequest(prompt, args.preset, methods(args), {**comparison_settings(args), **given})


def result_rows(comp: ComparisonResult, trace: bool) -> list[dict[str, Any]]:
    """Each method's result as a dict, with or without its search trace."""
    rows = []
    for r in comp.results:
        d = r.to_dict()
        if not trace:
            d.pop("trace")
        rows.append(d)
    return rows
