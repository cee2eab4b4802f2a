from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.console import Console


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """A console on its own data dir; stopped, and its apps' processes killed, whatever the
    test did (a console that cannot start again must not leave them running)."""
    console = Console(tmp_path / "data")
    try:
        yield console
    finally:
        console.close()
