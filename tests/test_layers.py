"""The package's modules import each other in one direction only: no import circles.

The graph is read from the source with ``ast``: every ``import`` counts, at module
level, inside functions (lazy imports) and under ``if TYPE_CHECKING:``. An edge
goes to the module named: ``from a.b import c`` is an edge to ``a.b.c`` when
that is a module, else to the package ``a.b`` (its ``__init__``), whose names
are then being read. Running a parent package's ``__init__`` on the way to a
submodule is not an edge: it is already loaded and no name is read from it.
A circle is reported as the list of modules on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import remote_store_transfer

ROOT = Path(remote_store_transfer.__file__).parent
TOP = "remote_store_transfer"


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _target(name: str) -> str | None:
    """The package module that importing *name* runs last (``None``: not ours)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from a.b import c``: c may be a module (a.b.c) or a name in a.b
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    edges: set[str] = set()
    for name in names:
        target = _target(name)
        if target is not None and target != module and target.startswith(TOP):
            edges.add(target)
    return edges


GRAPH = {module: _imports(module) for module in MODULES}


def _cycle() -> list[str] | None:
    """One import circle, as the modules on it, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for nxt in sorted(GRAPH[module]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state and (found := visit(module)):
            return found
    return None


def _reaches(start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module == goal:
            return True
        if module not in seen:
            seen.add(module)
            todo.extend(GRAPH[module])
    return False


def test_the_graph_sees_lazy_and_type_only_imports() -> None:
    """The reader is not blind: it finds a lazy import and a TYPE_CHECKING import we know of."""
    assert f"{TOP}.plugin.manager" in GRAPH[f"{TOP}.runtime"]
    assert f"{TOP}.batch" in GRAPH[f"{TOP}.streaming"]  # under TYPE_CHECKING
    assert f"{TOP}.tree.walk" in GRAPH[f"{TOP}.tree.plan"]  # inside a function
    assert len(GRAPH) > 30


def test_no_import_circles() -> None:
    assert _cycle() is None, " -> ".join(_cycle() or [])


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        ("plugin.manager", "config"),
        ("plugin.manager", "runtime"),
        ("config", "runtime"),
        ("config", "transfers"),
        ("runtime", "transfers"),
        ("runtime", "tree.engine"),
        ("streaming", "runtime"),
        ("streaming", "transfers"),
        ("tree.engine", "transfers"),
        ("transfers", "cli"),
    ],
)
def test_nothing_below_imports_upward(lower: str, upper: str) -> None:
    """The layers: plugin.manager < config < runtime < tree < transfers < cli; streaming needs no manager."""
    assert not _reaches(f"{TOP}.{lower}", f"{TOP}.{upper}")


def test_runtime_sits_above_config_and_the_manager() -> None:
    """The process-wide manager is built from config by a module above both."""
    assert {f"{TOP}.config", f"{TOP}.plugin.manager"} <= GRAPH[f"{TOP}.runtime"]
    from remote_store_transfer import plugin_manager, runtime

    assert plugin_manager is runtime.plugin_manager


def test_every_built_in_plugin_name_has_a_class() -> None:
    from remote_store_transfer import config
    from remote_store_transfer.plugin import PLUGIN_NAMES

    assert tuple(config._CLASSES) == PLUGIN_NAMES


def test_the_architecture_page_names_every_module() -> None:
    """docs/architecture.md names each module by its path, and names none that does not exist."""
    import re

    page = (Path(__file__).parent.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = {path for path in re.findall(r"`((?:[a-z_]+/)*[a-z_]+\.py)`", page) if not path.startswith("tests/")}
    files = {path.relative_to(ROOT).as_posix() for path in ROOT.rglob("*.py")}
    assert files - named == set(), "modules the page does not name"
    assert named - files == set(), "paths on the page that are not modules"


def test_only_locations_asks_a_store_where_it_is() -> None:
    """``locations.py`` alone calls ``Store.resolve()`` / ``native_path()``: one rule for every check."""
    askers = set()
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if call and node.func.attr in ("resolve", "native_path") and module != f"{TOP}.locations":
                askers.add(f"{module}:{node.lineno}")
    assert askers == set()
