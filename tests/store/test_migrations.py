from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from store.engine import make_engine
from store.migrate import downgrade, upgrade
from store.models import Base
from tests.conftest import TEST_DATABASE_URL
from tests.databases import scratch_database


def _inspect(url: str) -> tuple[set[str], list[object]]:
    async def run() -> tuple[set[str], list[object]]:
        engine = make_engine(url)
        try:
            async with engine.connect() as connection:

                def read(sync: Connection) -> tuple[set[str], list[object]]:
                    tables = set(inspect(sync).get_table_names()) - {"alembic_version"}
                    context = MigrationContext.configure(sync, opts={"compare_type": True})
                    return tables, compare_metadata(context, Base.metadata)

                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_migrations_upgrade_to_head_match_the_models_and_downgrade_to_empty(
    tmp_path: Path,
) -> None:
    with scratch_database(TEST_DATABASE_URL, tmp_path) as url:
        upgrade(url)
        tables, differences = _inspect(url)
        assert tables == set(Base.metadata.tables)
        assert differences == []

        downgrade(url)
        tables, _ = _inspect(url)
        assert tables == set()

        upgrade(url)  # and up again: the downgrade left nothing behind that blocks it
        assert _inspect(url)[0] == set(Base.metadata.tables)


def _waiters_on(path: Path) -> int:
    """Blocked flock waiters on `path`, as the kernel lists them ("->" lines of /proc/locks)."""
    inode = path.stat().st_ino
    lines = Path("/proc/locks").read_text().splitlines()
    return sum(1 for line in lines if "->" in line and f":{inode} " in line)


def test_a_second_migration_of_a_sqlite_file_waits_for_the_first(tmp_path: Path) -> None:
    """`user add` run while `serve` migrates a fresh database: before the lock, both created
    the first table and serve died with "table apps already exists"."""
    database = tmp_path / "console.db"
    url = f"sqlite+aiosqlite:///{database}"
    lock_file = Path(f"{database}-migrate.lock")
    lock_file.touch()
    first = os.open(lock_file, os.O_RDWR)  # the first migration, holding the lock
    fcntl.flock(first, fcntl.LOCK_EX)
    second = threading.Thread(target=upgrade, args=(url,))
    try:
        second.start()
        deadline = time.monotonic() + 30
        while _waiters_on(lock_file) == 0:
            assert second.is_alive(), "upgrade did not wait for the lock"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert _inspect(url)[0] == set()  # it waits before touching the schema
    finally:
        os.close(first)
        second.join(timeout=60)
    assert not second.is_alive()
    assert _inspect(url)[0] == set(Base.metadata.tables)
