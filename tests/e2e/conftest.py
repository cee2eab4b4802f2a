from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from store.migrate import upgrade
from tests.conftest import TEST_DATABASE_URL
from tests.databases import scratch_database
from tests.e2e.console import Console
from tests.e2e.replicas import shared_nomad
from tests.fakes.nomad_server import FakeNomadServer


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """A console on its own data dir; stopped, and its apps' processes killed, whatever the
    test did (a console that cannot start again must not leave them running)."""
    console = Console(tmp_path / "data")
    try:
        yield console
    finally:
        console.close()


# The replica tests' (tests/e2e/replicas.py): a database of its own on the PostgreSQL
# server, one fake Nomad for every console, a client for them all.


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    with scratch_database(TEST_DATABASE_URL, tmp_path) as url:
        upgrade(url)
        yield url


@pytest.fixture
def nomad() -> Iterator[FakeNomadServer]:
    with shared_nomad() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as client:
        yield client
