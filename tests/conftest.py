"""Shared fixtures: a migrated test database (SQLite by default, PostgreSQL when
LAIN_CONSOLE_TEST_DATABASE_URL is set) emptied before every test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from store.engine import make_engine, make_sessionmaker
from store.migrate import downgrade, upgrade
from store.models import Base
from tests.databases import scratch_database
from tests.fakes.nomad_server import HEARTBEAT, FakeNomadServer
from tests.processes import kill_processes_in

TEST_DATABASE_URL = os.environ.get("LAIN_CONSOLE_TEST_DATABASE_URL", "")


def pytest_report_header() -> str:
    if TEST_DATABASE_URL:
        return f"database: {TEST_DATABASE_URL.split('@')[-1]} (LAIN_CONSOLE_TEST_DATABASE_URL)"
    return "database: SQLite (set LAIN_CONSOLE_TEST_DATABASE_URL for PostgreSQL)"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to head once per session."""
    with scratch_database(TEST_DATABASE_URL, tmp_path_factory.mktemp("db")) as url:
        upgrade(url)
        yield url
        downgrade(url)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "state_version":  # one row a migration made, always there
                await connection.execute(delete(table))
        # Like a new database, cursors start at 1 again (a console never empties its log).
        if connection.dialect.name == "postgresql":
            await connection.execute(text("ALTER SEQUENCE event_log_id_seq RESTART WITH 1"))
        else:
            await connection.execute(text("DELETE FROM sqlite_sequence WHERE name = 'event_log'"))
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir; whatever runs in it when the test ends, passed or failed, is killed."""
    path = tmp_path / "data"
    path.mkdir()
    yield path
    kill_processes_in(path)


@pytest.fixture(scope="session")
def served_nomad() -> Iterator[FakeNomadServer]:
    """One fake Nomad HTTP server for the run; `nomad_server` gives each test a fresh cluster
    on it."""
    server = FakeNomadServer(heartbeat=HEARTBEAT).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nomad_server(served_nomad: FakeNomadServer) -> FakeNomadServer:
    """The fake Nomad, serving a fresh cluster with every fault off."""
    return served_nomad.reset()
