from __future__ import annotations

import asyncio
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
