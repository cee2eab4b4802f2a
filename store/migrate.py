"""Run the Alembic migrations from code (the CLI and the tests), outside any event loop."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from store.engine import make_sqlite_file_private

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
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
