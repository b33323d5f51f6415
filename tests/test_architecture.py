"""The house's layers: imports run one way, with no circle, and engines' abilities are declared, not probed.

Read from the source with `ast` (no import runs), so the check covers imports inside functions too.
docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "w2s_app"

# Top to bottom: a module may import its own layer's modules (without a circle) and any layer below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("entry points", ("w2s_app.__main__", "w2s_app.cli", "w2s_app.serve", "w2s_app.ui")),
    ("composition root", ("w2s_app.wiring",)),
    (
        "services",
        (
            "w2s_app.runner",
            "w2s_app.limits",
            "w2s_app.identity",
            "w2s_app.leaderboard",
            "w2s_app.judge",
            "w2s_app.evaluate",
            "w2s_app.tuning",
            "w2s_app.model_queue",
            "w2s_app.tiny",
        ),
    ),
    ("store", ("w2s_app.store",)),
    ("search", ("w2s_app.search",)),
    ("implementations", ("w2s_app.engines",)),
    ("backends", ("w2s_app.backends",)),
    (
        "contracts",
        (
            "w2s_app.contracts",
            "w2s_app.options",
            "w2s_app.config",
            "w2s_app.errors",
            "w2s_app.twins",
            "w2s_app.prompt_pool",
            "w2s_app",
        ),
    ),
]
# Probing an engine's abilities is what the contracts replace.
NO_PROBING = ("w2s_app.search", "w2s_app.engines", "w2s_app.wiring", "w2s_app.runner", "w2s_app.contracts")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path) -> set[str]:
    """Every project module this module imports (at any depth of its code)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("w2s_app")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith("w2s_app"):
                continue
            known = modules()
            for alias in node.names:  # `from pkg import module` imports the module
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    return out


def layer_of(name: str) -> int:
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    assert best is not None, f"{name} is in no layer: add it to LAYERS (and docs/architecture.md)"
    return best[0]


GRAPH = {name: imports_of(name, path) for name, path in modules().items()}


def test_every_module_has_a_layer():
    for name in GRAPH:
        layer_of(name)


def test_no_import_runs_back_up():
    upward = [
        f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
        for a, targets in GRAPH.items()
        for b in targets
        if b in GRAPH and layer_of(b) < layer_of(a) and b != "w2s_app"
    ]
    assert upward == []


def test_no_import_circle():
    """Tarjan's strongly connected components over the module graph: each must be one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in GRAPH or w == v:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            # A package's __init__ re-exporting its own modules is not a circle of meaning.
            if len([m for m in component if m not in ("w2s_app",)]) > 1 and not _package_exports(component):
                circles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert circles == []


def _package_exports(component: list[str]) -> bool:
    """A package and the modules its __init__ re-exports import each other only through the package."""
    packages = [m for m in component if (PACKAGE.parent / m.replace(".", "/") / "__init__.py").exists()]
    return len(packages) == 1 and all(m.startswith(packages[0] + ".") or m == packages[0] for m in component)


@pytest.mark.parametrize("prefix", NO_PROBING)
def test_abilities_are_declared_not_probed(prefix):
    probes = []
    for name, path in modules().items():
        if not (name == prefix or name.startswith(prefix + ".")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "hasattr":
                probes.append(f"{name}:{node.lineno}")
    assert probes == []


def test_no_two_classes_share_a_name():
    """A class name means one thing in the whole package (Answer, Choice, ApiError, Comparison were two)."""
    seen: dict[str, list[str]] = {}
    for name, path in modules().items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                seen.setdefault(node.name, []).append(name)
    assert {k: v for k, v in seen.items() if len(v) > 1} == {}
