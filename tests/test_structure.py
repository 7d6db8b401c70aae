"""The package's imports only point down: no cycle, the client knows nothing of HA.

Read from the source with ``ast``, so that a cycle through an import inside
a function (which Python would not stop at start-up) fails here too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "custom_components" / "misskey"
NAME = "custom_components.misskey"


def module_name(path: Path) -> str:
    """Return the dotted name of a module of the package."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((NAME, *parts))


def is_type_checking(node: ast.If) -> bool:
    """Return whether ``node`` is ``if TYPE_CHECKING:``."""
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported(path: Path, *, runtime_only: bool) -> Iterator[str]:
    """Yield the modules ``path`` imports; with ``runtime_only``, not for type checking."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while nodes:
        node = nodes.pop()
        if runtime_only and isinstance(node, ast.If) and is_type_checking(node):
            nodes.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = (
                f"{base}.{node.module}" if node.level and node.module else node.module
            )
            module = module or base
            yield module
            # "from . import notify" imports the module notify.
            yield from (f"{module}.{alias.name}" for alias in node.names)
        nodes.extend(ast.iter_child_nodes(node))


def modules() -> dict[str, Path]:
    """Return every module of the package by name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def graph() -> dict[str, set[str]]:
    """Return, for each module, the package's modules it imports at run time."""
    known = modules()
    return {
        name: {
            module
            for module in imported(path, runtime_only=True)
            if module in known and module != name
        }
        for name, path in known.items()
    }


def test_no_import_cycle() -> None:
    """No module imports, through others, a module that imports it.

    A package's __init__ importing its own modules is the one way round
    Python allows, so the api package's re-exports are not counted as a
    step back up.
    """
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for module in sorted(edges[name]):
            if name.startswith(f"{module}."):
                continue
            if state.get(module) == 1:
                cycles.append([*path[path.index(module) :], module])
            elif module not in state:
                visit(module, [*path, module])
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_coordinator_never_imports_the_listener() -> None:
    """The listener may read the coordinator; never the other way (not even for types)."""
    path = PACKAGE / "coordinator.py"
    assert [
        module
        for module in imported(path, runtime_only=False)
        if module.startswith(f"{NAME}.listener") or "source_listener" in module
    ] == []


def test_client_package_knows_nothing_of_home_assistant() -> None:
    """The Misskey client (api/) imports no Home Assistant module and nothing above it."""
    found = {
        path.name: sorted(
            module
            for module in imported(path, runtime_only=False)
            if module.split(".")[0] == "homeassistant"
            or (module.startswith(f"{NAME}.") and not module.startswith(f"{NAME}.api"))
        )
        for path in sorted((PACKAGE / "api").glob("*.py"))
    }
    assert {name: bad for name, bad in found.items() if bad} == {}
