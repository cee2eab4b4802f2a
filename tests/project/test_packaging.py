"""The package's metadata says what it is: every third-party module the code imports is a
declared dependency (not one that only arrives through another package), the lock pins
every declared one, the package data it lists exists and the image copies every package."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
PACKAGE_PATTERNS = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
# The shipped packages, as pyproject's `find` patterns name them ("lainyaml*" -> lainyaml).
PACKAGES = [pattern.rstrip("*") for pattern in PACKAGE_PATTERNS]
# Code that runs only from a checkout, with the dev extra installed.
CHECKOUT_ONLY = ["tests", "bench"]
FIRST_PARTY = {*PACKAGES, *CHECKOUT_ONLY}


def _declared(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


RUNTIME = _declared(PROJECT["dependencies"])
DEV = _declared(PROJECT["optional-dependencies"]["dev"])


@cache
def _imported_modules(folder: str) -> dict[str, str]:
    """Top-level modules imported by the code under `folder`, each with one file that does."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.partition(".")[0], str(path.relative_to(ROOT)))
    return found


def _third_party(folder: str) -> dict[str, str]:
    return {
        module: path
        for module, path in _imported_modules(folder).items()
        if module not in sys.stdlib_module_names
        and module not in FIRST_PARTY
        and module != "__future__"
    }


@cache
def _module_distributions() -> dict[str, list[str]]:
    return packages_distributions()  # reads every installed distribution's RECORD: slow


def _distributions(module: str) -> set[str]:
    return {canonicalize_name(d) for d in _module_distributions().get(module, [])}


@pytest.mark.parametrize("folder", PACKAGES)
def test_shipped_code_imports_only_declared_dependencies(folder: str) -> None:
    undeclared = {
        module: f"{path} (from {sorted(_distributions(module)) or 'nothing installed'})"
        for module, path in _third_party(folder).items()
        if not _distributions(module) & RUNTIME
    }
    assert undeclared == {}, "imported but not in [project] dependencies"


@pytest.mark.parametrize("folder", CHECKOUT_ONLY)
def test_tests_and_bench_import_only_declared_dependencies(folder: str) -> None:
    undeclared = {
        module: f"{path} (from {sorted(_distributions(module)) or 'nothing installed'})"
        for module, path in _third_party(folder).items()
        if not _distributions(module) & (RUNTIME | DEV)
    }
    assert undeclared == {}, "imported but neither a dependency nor in the dev extra"


def test_every_dev_dependency_is_used() -> None:
    """A dev dependency is imported somewhere, or is a pytest plugin or a tool make runs."""
    used = {
        dist
        for folder in [*PACKAGES, *CHECKOUT_ONLY]
        for module in _third_party(folder)
        for dist in _distributions(module)
    }
    plugins_and_tools = {"pytest-asyncio", "pytest-timeout", "ruff", "mypy", "types-pyyaml"}
    assert DEV - used - plugins_and_tools == set()


def _lock_pins() -> dict[str, str]:
    lock = (ROOT / "requirements.lock").read_text()
    return {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", lock, re.MULTILINE)
    }


def test_the_lock_pins_every_dependency_within_its_range() -> None:
    pins = _lock_pins()
    wrong = {}
    for text in PROJECT["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        pinned = pins.get(name)
        if pinned is None or not requirement.specifier.contains(pinned, prereleases=True):
            wrong[name] = f"{pinned} for {requirement.specifier}"
    assert wrong == {}, "requirements.lock is stale: run `make lock`"


def test_every_lock_pin_has_hashes() -> None:
    """The Dockerfile installs with --require-hashes, which refuses a pin without one."""
    entries = re.split(
        r"^(?=[A-Za-z0-9._-]+==)", (ROOT / "requirements.lock").read_text(), flags=re.M
    )
    unhashed = [e.split()[0] for e in entries if "==" in e.split()[0] and "--hash=" not in e]
    assert unhashed == []


def test_listed_package_data_exists() -> None:
    missing = [
        f"{package}/{pattern}"
        for package, patterns in PYPROJECT["tool"]["setuptools"]["package-data"].items()
        for pattern in patterns
        if not any((ROOT / package).glob(pattern))
    ]
    assert missing == []


def test_the_image_copies_every_package() -> None:
    copied = set(re.findall(r"^COPY (\S+) \./\1$", (ROOT / "Dockerfile").read_text(), re.M))
    assert set(PACKAGES) - copied == set()
