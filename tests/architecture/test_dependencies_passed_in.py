"""Clients of other systems belong to the app's lifespan (opened once, pooled, closed at
shutdown) and reach resolvers/ through the services: a resolver that opens its own pays a
new connection per call and escapes the settings (timeouts, redirects) and the tests."""

from __future__ import annotations

import ast
from pathlib import Path

RESOLVERS = Path(__file__).resolve().parents[2] / "resolvers"
OPENED_BY_THE_LIFESPAN = {"AsyncClient", "Client", "create_async_engine", "connect"}


def test_resolvers_open_no_clients_of_their_own() -> None:
    opened = []
    for path in sorted(RESOLVERS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name in OPENED_BY_THE_LIFESPAN:
                    opened.append(f"{path.name}:{node.lineno} calls {name}")
    assert opened == []


CACHE_TYPES = {
    "dict",
    "set",
    "OrderedDict",
    "defaultdict",
    "WeakKeyDictionary",
    "WeakValueDictionary",
}


def test_resolvers_keep_no_state_in_their_modules() -> None:
    """What a resolver remembers between calls (shared reads, caches) belongs to the
    services the lifespan owns: a module-level cache outlives the app and is shared by
    every app in one process (the tests run many)."""
    kept = []
    for path in sorted(RESOLVERS.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if isinstance(value, ast.Call):
                name = getattr(value.func, "attr", None) or getattr(value.func, "id", None)
                if name in CACHE_TYPES:
                    kept.append(f"{path.name}:{node.lineno} keeps a {name}")
    assert kept == []
