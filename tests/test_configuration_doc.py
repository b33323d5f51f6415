"""docs/configuration.md's tables are what the declarations in config/settings.py generate, and
config/ is the one place that reads the environment (checked with `ast`, aliases included)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from w2s_app.config.settings import GROUPS, env_reference
from w2s_app.config.settings_doc import DOC, END, main, render, start_marker, table, tables_in

APP = Path(__file__).resolve().parents[1] / "w2s_app"
# The two writes that must happen outside config/, each before a library reads its environment:
# OpenMP's spin count before torch or llama.cpp start threads, uvicorn's proxy list before Gradio
# starts it. A write of another variable, or from another module, fails the test like a read.
ALLOWED_WRITES = {("__init__.py", "GOMP_SPINCOUNT"), ("ui/__init__.py", "FORWARDED_ALLOW_IPS")}


def test_the_doc_tables_are_the_generated_ones():
    text = DOC.read_text(encoding="utf-8")
    assert tables_in(text) == {group: table(group) for group in GROUPS}, (
        "docs/configuration.md's tables differ from the declarations: run python -m w2s_app.config.settings_doc"
    )
    assert main(["--check"]) == 0


def test_a_stale_table_is_found_and_rewritten():
    text = DOC.read_text(encoding="utf-8")
    stale = text.replace("| `W2S_RATE_LIMIT` | comparisons", "| `W2S_RATE_LIMIT` | requests", 1)
    assert stale != text and tables_in(stale)["limits"] != table("limits")
    assert render(stale) == text
    with pytest.raises(ValueError, match="limits settings table"):
        tables_in(text.replace(start_marker("limits"), "", 1))


def test_every_declared_variable_has_one_row_and_every_w2s_variable_in_the_doc_is_declared():
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", text, re.M)
    declared = [row.env for row in env_reference()]
    assert len(set(declared)) == len(declared), "a variable is declared twice"
    assert sorted(rows) == sorted(declared)
    assert sorted(set(re.findall(r"`(W2S_[A-Z0-9_]+)`", text)) - set(declared)) == []
    # The generated blocks are complete tables: a row never sits after its block's end marker.
    for group in GROUPS:
        block = text.split(start_marker(group), 1)[1].split(END, 1)[0]
        assert block.strip().splitlines()[1] == "|---|---|---|"


def environment_uses(relative: str, source: str) -> list[str]:
    """Each use of the process environment in a module that is not an allowed write, as 'file:line what'."""
    tree = ast.parse(source)
    os_names, environ_names, getenv_names = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            environ_names |= {a.asname or a.name for a in node.names if a.name in ("environ", "environb")}
            getenv_names |= {a.asname or a.name for a in node.names if a.name in ("getenv", "getenvb")}
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    out = []
    for node in ast.walk(tree):
        is_os = (
            isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in os_names
        )
        if (is_os and node.attr in ("getenv", "getenvb")) or (
            isinstance(node, ast.Name) and node.id in getenv_names
        ):
            out.append(f"{relative}:{node.lineno} getenv")
        elif (is_os and node.attr in ("environ", "environb")) or (
            isinstance(node, ast.Name) and node.id in environ_names and isinstance(node.ctx, ast.Load)
        ):
            if (relative, _written(node, parents)) not in ALLOWED_WRITES:
                out.append(f"{relative}:{node.lineno} environ")
    return out


def _written(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str | None:
    """The variable a write names (environ[NAME] = ..., environ.setdefault(NAME, ...)), else None."""
    parent = parents.get(node)
    if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store):
        key = parent.slice
    elif isinstance(parent, ast.Attribute) and parent.attr == "setdefault":
        call = parents.get(parent)
        key = call.args[0] if isinstance(call, ast.Call) and call.args else None
    else:
        return None
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None


def test_only_config_reads_the_environment():
    uses = []
    for path in sorted(APP.rglob("*.py")):
        relative = path.relative_to(APP).as_posix()
        if not relative.startswith("config/"):
            uses += environment_uses(relative, path.read_text(encoding="utf-8"))
    assert uses == [], "read the variable through Settings (declared in config/settings.py), passed in"


@pytest.mark.parametrize(
    "source",
    [
        "import os\nx = os.environ.get('W2S_X')",
        "import os as _o\nx = _o.getenv('W2S_X')",
        "from os import environ\nx = environ['W2S_X']",
        "from os import getenv as g\nx = g('W2S_X')",
        "import os\nenv = dict(os.environ)",
        "import os\nos.environ['W2S_X'] = '1'",  # a write, but not an allowed one
        "import os\nos.environ.setdefault('GOMP_SPINCOUNT', '1')",  # allowed only in w2s_app/__init__.py
    ],
)
def test_the_environment_check_finds_reads_and_other_writes(source):
    assert environment_uses("backends/x.py", source) != []


def test_the_two_writes_are_allowed_where_they_must_happen():
    assert (
        environment_uses("__init__.py", "import os as _os\n_os.environ.setdefault('GOMP_SPINCOUNT', '1')")
        == []
    )
    assert environment_uses("ui/__init__.py", "import os\nos.environ['FORWARDED_ALLOW_IPS'] = ''") == []
