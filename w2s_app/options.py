"""Every comparison setting, declared once: type, default, bounds, help, label and its part of a label.

The command line's flags, the page's controls, the Gradio `/compare` signature, the service's request
fields, the method labels ("w2s W2 K2 L30"), the cost cap and every bound message are made from these
declarations, so a setting cannot be spelled two ways. `validate` is the one validator: it checks every
given value, whichever methods run, and its error names the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import RequestError

NOISE_MODES = ("independent", "shared")
SEED_MAX = 2**32 - 1


class OptionError(RequestError):
    """A setting's value is not allowed; `field` names the setting (its canonical name)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Option:
    """One setting of a comparison."""

    name: str  # canonical name: the CLI flag (--max-new-tokens), the page, /compare, the store
    kind: type  # int, float or str
    default: Any
    help: str
    label: str  # the page's control label
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    method: str | None = None  # the method it belongs to; None: shared by every method (sampling)
    tag: str = ""  # its part of a method label: W -> "W2"
    step: float = 1
    # The same setting under another name on one surface (OpenAI's n is the number of choices, so
    # best-of-N's N travels as n_best in the service).
    aliases: Mapping[str, str] = field(default_factory=dict)

    def surface_name(self, surface: str) -> str:
        """This setting's name on a surface ('serve', 'cli', 'page', 'compare')."""
        return self.aliases.get(surface, self.name)

    def bounds_text(self) -> str:
        """'between 1 and 16', 'one of independent, shared'."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return f"between {_num(self.lo)} and {_num(self.hi)}"

    def check(self, value: Any) -> Any:
        """The value as this setting's type, or OptionError naming the setting."""
        if self.choices:
            if not isinstance(value, str) or value not in self.choices:
                raise OptionError(
                    self.name, f"{self.name} must be {self.bounds_text()}, got {short_value(value)}"
                )
            return value
        what = "a whole number" if self.kind is int else "a number"
        # A bool is not a number here, although Python says it is: w=true must not run as w=1.
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise OptionError(
                self.name, f"{self.name} must be {what} {self.bounds_text()}, got {short_value(value)}"
            )
        try:
            number = float(value.strip()) if isinstance(value, str) else float(value)
        except (ValueError, OverflowError):
            raise OptionError(
                self.name, f"{self.name} must be {what} {self.bounds_text()}, got {short_value(value)}"
            ) from None
        if not math.isfinite(number) or not self.lo <= number <= self.hi:
            raise OptionError(
                self.name, f"{self.name} must be {what} {self.bounds_text()}, got {short_value(value)}"
            )
        if self.kind is int:
            if number != int(number):
                raise OptionError(
                    self.name, f"{self.name} must be {what} {self.bounds_text()}, got {short_value(value)}"
                )
            return int(number)
        return number

    def tag_of(self, value: Any) -> str:
        """This setting's part of a method label, e.g. 'W2' or 'beta0.5'."""
        return f"{self.tag}{value:g}" if self.kind is float else f"{self.tag}{value}"


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def short_value(value: Any) -> str:
    """A value for an error message, the same whichever surface sent it: a number as the number (999
    from the command line's '999' too), true/false as JSON writes them, anything else as its repr, cut
    to 40 characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = f"{value:g}" if isinstance(value, float) else str(value)
    else:
        text = repr(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
                text = value.strip() if math.isfinite(number) else text
            except ValueError:
                pass
    return text if len(text) <= 40 else text[:37] + "..."


# ---- sampling: shared by every method of a comparison -------------------------------------------

MAX_NEW_TOKENS = Option(
    "max_new_tokens", int, 128, "token budget T of each answer", "Max new tokens", 1, 4096, step=8,
    aliases={"serve": "max_tokens"},
)  # fmt: skip
TEMPERATURE = Option(
    "temperature", float, 0.7, "sampling temperature (0: greedy)", "Temperature", 0, 5, step=0.05
)
TOP_P = Option("top_p", float, 1.0, "nucleus sampling: keep the smallest set of tokens with this mass", "Top-p",
               0.01, 1, step=0.01)  # fmt: skip
SEED = Option(
    "seed",
    int,
    0,
    "noise seed: the same prompt, settings and seed give the same answers",
    "Seed",
    0,
    SEED_MAX,
)
NOISE = Option(
    "noise", str, "independent",
    "independent: each method draws its own noise; shared: common random numbers (paired evaluation)",
    "Noise", choices=NOISE_MODES,
)  # fmt: skip

# ---- per method --------------------------------------------------------------------------------

N = Option("n", int, 4, "best-of-N: samples to choose from", "N (best-of-N)", 1, 64, method="bon", tag="N",
           aliases={"serve": "n_best"})  # fmt: skip
W = Option("w", int, 2, "w2s: beam width W (beams kept)", "W (beams)", 1, 16, method="w2s", tag="W")
K = Option("k", int, 2, "w2s: successors K per beam", "K (successors)", 1, 16, method="w2s", tag="K")
L = Option("l", int, 30, "w2s: chunk length L (tokens)", "L (chunk tokens)", 1, 4096, method="w2s", tag="L")
BETA = Option("beta", float, 1.0, "eft: guidance strength beta", "beta (eft)", 0, 10, method="eft", tag="beta",
              step=0.1)  # fmt: skip

SAMPLING: tuple[Option, ...] = (MAX_NEW_TOKENS, TEMPERATURE, TOP_P, SEED, NOISE)
METHOD_OPTIONS: tuple[Option, ...] = (W, K, L, N, BETA)
# The order of positional arguments on every surface that has one (/compare): the first eight are
# the order scripts have always used; settings added later go at the end.
ALL: tuple[Option, ...] = (W, K, L, N, MAX_NEW_TOKENS, TEMPERATURE, TOP_P, SEED, BETA, NOISE)
BY_NAME: dict[str, Option] = {o.name: o for o in ALL}


def by_surface_name(surface: str) -> dict[str, Option]:
    """Each setting under its name on a surface."""
    return {o.surface_name(surface): o for o in ALL}


def validate(given: Mapping[str, Any]) -> dict[str, Any]:
    """Every given (non-None) setting checked and typed, whichever methods run; unknown names refused."""
    out: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        option = BY_NAME.get(name)
        if option is None:
            raise OptionError(name, f"unknown setting {name!r}; known: {', '.join(BY_NAME)}")
        out[name] = option.check(value)
    return out


def resolve(given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting's value: the given one, else the preset's default, else the declared default."""
    merged = {o.name: o.default for o in ALL}
    merged.update(validate(defaults))
    merged.update(validate(given))
    return merged
