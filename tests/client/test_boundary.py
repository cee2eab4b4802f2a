"""DESIGN: the client talks to a console over its public API only, so it imports nothing of
the server's packages, and the server's packages never import it (server/cli.py excepted:
it dispatches the verbs)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {"lainyaml", "store", "backends", "resolvers", "schema", "rest_compat", "server"}


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_the_client_imports_nothing_of_the_server() -> None:
    files = sorted((ROOT / "client").rglob("*.py"))
    assert files
    for path in files:
        assert not _imported(path) & OURS, path


def test_only_the_command_line_reaches_the_client() -> None:
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else []:
            if path != ROOT / "server" / "cli.py":
                assert "client" not in _imported(path), path
