"""The layers of DESIGN.md's layout table, checked on every import statement of the product
(those under `if TYPE_CHECKING:` included: a cycle hidden there is still a cycle)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Package -> the packages of ours it may import (itself always allowed).
ALLOWED: dict[str, frozenset[str]] = {
    "lainyaml": frozenset(),
    "store": frozenset({"lainyaml"}),
    "backends": frozenset({"lainyaml"}),
    "resolvers": frozenset({"lainyaml", "store", "backends"}),
    "schema": frozenset({"resolvers"}),
    "rest_compat": frozenset({"resolvers"}),
    "client": frozenset(),
    # The one `lain-console` command serves and is the client: server/cli.py reaches client/.
    "server": frozenset(
        {"lainyaml", "store", "backends", "resolvers", "schema", "rest_compat", "client"}
    ),
}
OURS = frozenset(ALLOWED) | {"tests", "bench"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path) -> set[str]:
    """Every module of ours `module` imports, by absolute name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in OURS}


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = []
    for module, path in _modules().items():
        layer = module.split(".")[0]
        for imported in sorted(_imports(module, path)):
            target = imported.split(".")[0]
            if target != layer and target not in ALLOWED[layer]:
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_no_module_of_the_product_imports_tests_or_bench() -> None:
    wrong = [
        f"{module} imports {imported}"
        for module, path in _modules().items()
        for imported in sorted(_imports(module, path))
        if imported.split(".")[0] in ("tests", "bench")
    ]
    assert wrong == []


def test_no_import_cycles_between_modules() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for imported in _imports(module, path):
            # `from resolvers import access` names the module resolvers.core.access.
            target = imported if imported in modules else imported.rpartition(".")[0]
            if target in modules and target != module and not _is_package_of(target, module):
                graph[module].add(target)
    cycles = _cycles(graph)
    assert cycles == []


def _is_package_of(package: str, module: str) -> bool:
    return module.startswith(f"{package}.")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One example cycle per strongly connected component bigger than one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
