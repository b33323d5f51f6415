"""The house's layers: imports run one way, with no circle, and engines' abilities are declared, not probed.

Read from the source with `ast` (no import runs), so the check covers imports inside functions too.
docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "w2s_app"
ROOT = PACKAGE.parent
MAP = ROOT / "docs" / "architecture.md"


def map_layers(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """The layer table of docs/architecture.md, top to bottom: (layer, module prefixes).

    The second column's backticked names are modules of w2s_app (`cli.py`, `serve/`, `__init__.py`
    for the package itself); one followed by "(repo root)" is a file beside the package. A name that
    is neither fails: the map may not name what does not exist.
    """
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| layer |"))
    layers = []
    for row in lines[header + 2 :]:  # past the header and its |---| line, to the table's end
        if not row.startswith("|"):
            break
        cells = [c.strip() for c in row.strip("|").split("|")]
        names = []
        for match in re.finditer(r"`([^`]+)`( \(repo root\))?", cells[1]):
            item, beside = match.group(1), match.group(2)
            if beside:
                assert (ROOT / item).exists(), f"the map names {item} beside the package; it does not exist"
                continue
            path = PACKAGE / item
            assert path.exists(), f"the map's layer {cells[0]!r} names {item}; w2s_app/{item} does not exist"
            stem = item.rstrip("/").removesuffix(".py")
            names.append("w2s_app" if stem == "__init__" else f"w2s_app.{stem.replace('/', '.')}")
        layers.append((cells[0], tuple(names)))
    listed = [name for _, names in layers for name in names]
    twice = sorted({name for name in listed if listed.count(name) > 1})
    assert not twice, f"the map puts {', '.join(twice)} in two layers"
    return layers


# Top to bottom: a module may import its own layer's modules (without a circle) and any layer below.
LAYERS = map_layers(MAP.read_text(encoding="utf-8"))
SIBLINGS = [prefixes for name, prefixes in LAYERS if "siblings" in name]  # rows whose packages never meet
DOORS = ("w2s_app.ui", "w2s_app.serve")  # no door imports another's modules, or the store's
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
            # The package itself (`__init__.py`) is one module, not a prefix of every module.
            if name == prefix or (prefix != "w2s_app" and name.startswith(prefix + ".")):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    assert best is not None, f"{name} is in no layer: add it to the layer table of docs/architecture.md"
    return best[0]


GRAPH = {name: imports_of(name, path) for name, path in modules().items()}


def test_every_module_has_a_layer():
    for name in GRAPH:
        layer_of(name)


def test_the_map_is_read_from_the_doc():
    """The table is parsed, not copied: every layer of the doc is here, in the doc's order."""
    names = [name for name, _ in LAYERS]
    assert names[0] == "doors" and names[-1] == "contracts" and "arena core" in names
    assert all(prefixes for _, prefixes in LAYERS), "a layer of the map lists no module"


def test_a_wrong_map_line_fails():
    """A map naming a module that does not exist is refused (so the doc cannot drift from the code)."""
    wrong = MAP.read_text(encoding="utf-8").replace("`arena/`", "`arenas/`")
    with pytest.raises(AssertionError, match="arenas/"):
        map_layers(wrong)
    twice = MAP.read_text(encoding="utf-8").replace(
        "| arena core | `arena/` |", "| arena core | `arena/`, `serve/` |"
    )
    with pytest.raises(AssertionError, match=r"w2s_app\.serve in two layers"):
        map_layers(twice)


def test_siblings_never_import_each_other():
    crossing = [
        f"{a} imports {b}"
        for row in SIBLINGS
        for a, targets in GRAPH.items()
        for b in targets
        if (pa := _prefix(a, row)) and (pb := _prefix(b, row)) and pa != pb
    ]
    assert crossing == []


def test_doors_import_no_other_door_and_no_store_module():
    crossing = [
        f"{a} imports {b}"
        for a, targets in GRAPH.items()
        if (door := _prefix(a, DOORS))
        for b in targets
        if b.startswith("w2s_app.store") or ((other := _prefix(b, DOORS)) and other != door)
    ]
    assert crossing == []


def _prefix(name: str, prefixes: tuple[str, ...]) -> str | None:
    """The prefix (package) a module belongs to, among these."""
    return next((p for p in prefixes if name == p or name.startswith(p + ".")), None)


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
