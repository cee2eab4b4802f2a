"""Run the Alembic migrations from code (the CLI and the tests), outside any event loop."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config

from store.engine import make_sqlite_file_private, sqlite_file

__all__ = ["alembic_config", "downgrade", "upgrade"]

_MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    # ConfigParser interpolation would choke on a '%' in a password.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema up to `revision`. Uses asyncio.run: call it with no loop running."""
    make_sqlite_file_private(database_url)  # before SQLite creates it world-readable
    with _one_migration_at_a_time(database_url):
        command.upgrade(alembic_config(database_url), revision)


@contextlib.contextmanager
def _one_migration_at_a_time(database_url: str) -> Iterator[None]:
    """Wait for, then hold, `<database file>-migrate.lock` on SQLite.

    `serve` and the admin commands (`user add` while a console starts) both migrate first;
    SQLite commits each DDL statement of a migration on its own, so two at once would both
    create the first table and one would die. The later one waits here and then finds the
    schema at head. PostgreSQL takes an advisory lock instead (migrations/env.py).
    """
    path = sqlite_file(database_url)
    if path is None or not path.parent.is_dir():
        yield
        return
    fd = os.open(f"{path}-migrate.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocking, outside any event loop (see upgrade)
        yield
    finally:
        os.close(fd)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
