"""Throw-away databases for tests: a file for SQLite, a fresh database on the PostgreSQL
server named by LAIN_CONSOLE_TEST_DATABASE_URL."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url


@contextlib.contextmanager
def scratch_database(server_url: str, tmp_dir: Path) -> Iterator[str]:
    """Yield the URL of an empty database that is dropped afterwards.

    With no server URL this is a SQLite file in `tmp_dir`. With a PostgreSQL URL, a new
    database is created beside the one the URL names, so tests never touch its data.
    """
    if not server_url:
        yield f"sqlite+aiosqlite:///{tmp_dir / f'test-{secrets.token_hex(4)}.db'}"
        return
    url = make_url(server_url)
    name = f"{url.database or 'lain'}_t{secrets.token_hex(4)}"
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    asyncio.run(_execute(admin_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_execute(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _execute(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
