"""The page's settings controls, made from the option declarations (options.py): one control per setting,
with its label, help, bounds and default. The Gradio `/compare` endpoint's signature comes from the
same declarations (`api.compare_signature`)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..options import ALL, SEED, Option

SLIDER_SPAN = 64  # a whole-number setting with at most this many values is a slider, else a number box
SEED_LABEL = (
    "Seed (empty: a fresh random seed for every run; a seed you choose keeps your vote off the board)"
)


def preset_value(option: Option, defaults: dict[str, Any]) -> Any:
    """The control's value for a preset: its default for the setting, else the declared one (seed: empty)."""
    if option is SEED:
        return defaults.get("seed")  # a preset may fix a seed; by default every run draws a fresh one
    return defaults.get(option.name, option.default)


def control(option: Option, value: Any) -> gr.components.Component:
    """One Gradio input for a setting."""
    if option.choices:
        return gr.Dropdown(list(option.choices), value=value, label=option.label, info=option.help)
    if option is SEED:
        return gr.Number(value=value, precision=0, minimum=option.lo, maximum=option.hi, label=SEED_LABEL)
    span = (option.hi - option.lo) / option.step
    if option.kind is float or span <= SLIDER_SPAN:
        return gr.Slider(
            option.lo, option.hi, value=value, step=option.step, label=option.label, info=option.help
        )
    return gr.Number(
        value=value, precision=0, minimum=option.lo, maximum=option.hi, label=option.label, info=option.help
    )


def build_controls(defaults: dict[str, Any]) -> list[gr.components.Component]:
    """Every setting's control, in the order of options.ALL; shown in two rows (methods', sampling)."""
    made: dict[str, gr.components.Component] = {}
    for group in ([o for o in ALL if o.method], [o for o in ALL if not o.method]):
        with gr.Row():
            made.update({o.name: control(o, preset_value(o, defaults)) for o in group})
    return [made[o.name] for o in ALL]


def preset_values(defaults: dict[str, Any]) -> list[Any]:
    """The controls' values for a preset, in the controls' order."""
    return [preset_value(o, defaults) for o in ALL]


def values_of(controls: list[Any]) -> dict[str, Any]:
    """The settings a run asks for, by option name (an empty box is None: the preset's default)."""
    return {o.name: (None if v == "" else v) for o, v in zip(ALL, controls, strict=True)}
