"""The SQLite engine's cursors make one trip to aiosqlite's thread per statement, and give
SQLAlchemy everything a DBAPI cursor gives: rows, rowcount, lastrowid, executemany, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.sqltrips import trips
from store.engine import make_sessionmaker, open_engine
from store.models import StateVersion

METADATA = MetaData()
THINGS = Table(
    "things",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
    Column("size", Integer, nullable=False),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with open_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}") as opened:
        async with opened.begin() as connection:
            await connection.run_sync(METADATA.create_all)
            # Every writing session bumps the state version (store/stateversion.py).
            await connection.run_sync(StateVersion.__table__.create)
            await connection.execute(insert(StateVersion).values(id=1, version=0))
        yield opened


async def test_a_statement_is_one_trip_to_the_connections_thread(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(select(1))  # the transaction's BEGIN is SQLite's own
        with trips() as counted:
            rows = (await connection.execute(select(THINGS.c.name))).all()
            await connection.execute(insert(THINGS).values(name="a", size=1))
        # SQLAlchemy's adapter: cursor, execute, fetchall and close for each (8 trips).
        assert rows == []
        assert dict(counted) == {"_execute": 2}


async def test_a_session_that_only_read_ends_without_a_trip(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)
    async with sessions() as warm:
        await warm.execute(select(1))  # the pool's connection, opened before counting
    with trips() as counted:
        async with sessions() as session:
            await session.execute(select(THINGS.c.name))
            await session.execute(select(THINGS.c.size))
    # Nothing to roll back: neither the session's rollback nor the pool's reset goes to the
    # thread (SQLAlchemy's adapter: 2 rollbacks more).
    assert dict(counted) == {"_execute": 2}

    with trips() as counted:
        async with sessions.begin() as session:
            await session.execute(insert(THINGS).values(name="a", size=1))
    assert dict(counted) == {"_execute": 2, "commit": 1}  # the insert, the state version


async def test_a_write_not_committed_is_still_rolled_back(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        await session.execute(insert(THINGS).values(name="a", size=1))
        await session.rollback()
        await session.execute(insert(THINGS).values(name="b", size=2))
    # The second insert was never committed: closing the session rolled it back.
    async with sessions() as session:
        assert (await session.execute(select(THINGS.c.name))).all() == []


async def test_rows_rowcount_and_new_ids_reach_sqlalchemy(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        first = await connection.execute(insert(THINGS).values(name="a", size=1))
        second = await connection.execute(insert(THINGS).values(name="b", size=2))
        assert (first.inserted_primary_key, second.inserted_primary_key) == ((1,), (2,))
        many = await connection.execute(
            insert(THINGS), [{"name": n, "size": s} for n, s in (("c", 3), ("d", 4), ("e", 5))]
        )
        assert many.rowcount == 3
        grown = await connection.execute(update(THINGS).where(THINGS.c.size > 2).values(size=9))
        assert grown.rowcount == 3
        found = await connection.execute(select(THINGS.c.name, THINGS.c.size).order_by("id"))
        assert list(found.keys()) == ["name", "size"]
        assert [tuple(row) for row in found] == [
            ("a", 1),
            ("b", 2),
            ("c", 9),
            ("d", 9),
            ("e", 9),
        ]
        returned = await connection.execute(
            insert(THINGS).values(name="f", size=6).returning(THINGS.c.id, THINGS.c.name)
        )
        assert [tuple(row) for row in returned] == [(6, "f")]


async def test_an_error_raises_and_leaves_the_connection_usable(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(insert(THINGS).values(name="a", size=1))
        await connection.commit()
        with pytest.raises(IntegrityError, match=r"UNIQUE constraint failed: things\.name"):
            await connection.execute(insert(THINGS).values(name="a", size=2))
        await connection.rollback()
        kept = await connection.scalar(select(THINGS.c.id).where(THINGS.c.name == "a"))
        assert kept == 1  # the first row, untouched


async def test_server_side_cursors_still_stream(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(THINGS), [{"name": f"n{i}", "size": i} for i in range(250)])
    async with engine.connect() as connection:
        streamed = await connection.stream(select(THINGS.c.size).order_by(THINGS.c.id))
        sizes = [size async for (size,) in streamed]
    assert sizes == list(range(250))


async def test_a_connection_terminated_twice_over_closes_without_waiting_for_ever(
    engine: AsyncEngine,
) -> None:
    # What a statement cancelled twice leaves (a shutdown cancelling a task mid-query, which
    # anyio cancels again): SQLAlchemy starts a graceful close in a shielded task, the
    # second cancellation makes it force-close too, and the graceful close then runs after
    # the force close stopped aiosqlite's thread. It must end, not wait for that thread.
    pooled = await engine.raw_connection()
    adapted = pooled.dbapi_connection
    assert adapted is not None
    try:
        adapted._terminate_force_close()
        async with asyncio.timeout(10):
            await adapted._terminate_graceful_close()
            await asyncio.to_thread(adapted._connection._thread.join, 10)
        assert not adapted._connection._thread.is_alive()
    finally:
        pooled.detach()  # not back to the pool: it is closed
