"""Alembic environment: async engine, batch mode for SQLite, URL from the caller's Config."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config
from sqlalchemy.pool import NullPool

from store.models import Base

config = context.config


def _configure(connection: Connection | None = None) -> None:
    context.configure(
        connection=connection,
        url=None if connection is not None else config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite can only ALTER by copying the table
        compare_type=True,
    )


# pg_advisory_xact_lock key of migrations ("lainMig" in ASCII).
_MIGRATION_LOCK = 0x6C61696E4D6967


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas start together and each migrates first: one at a time, and the
            # later ones find the schema at head (DDL is transactional on PostgreSQL).
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        context.run_migrations()


async def _run_online() -> None:
    engine = async_engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=NullPool,
    )
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
    await engine.dispose()


if context.is_offline_mode():
    _configure()
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
