"""Writers to one SQLite file queue in the console, first come first served, instead of
polling SQLite's lock from its busy handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from store.engine import make_sessionmaker, open_engine, queued_writers
from store.models import StateVersion


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with open_engine(f"sqlite+aiosqlite:///{tmp_path / 'writers.db'}") as opened:
        async with opened.begin() as connection:
            await connection.execute(text("CREATE TABLE t (writer TEXT)"))
            # Every writing session bumps the state version (store/stateversion.py).
            await connection.run_sync(StateVersion.__table__.create)
            await connection.execute(text("INSERT INTO state_version VALUES (1, 0)"))
        yield opened


async def _queued(engine: AsyncEngine, count: int) -> None:
    """Poll (10 s at most) until `count` writers wait for their turn."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        if queued_writers(engine) == count:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{count} writers never queued"
        await asyncio.sleep(0.01)


async def _write(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    order: list[str],
    *,
    holding: asyncio.Event | None = None,
    release: asyncio.Event | None = None,
) -> None:
    async with sessions.begin() as session:
        await session.execute(text("INSERT INTO t VALUES (:w)"), {"w": name})
        order.append(name)
        if holding is not None:
            holding.set()
        if release is not None:
            await release.wait()


async def test_writers_wait_their_turn_in_order(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)
    order: list[str] = []
    holding, release = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(_write(sessions, "a", order, holding=holding, release=release))
    await holding.wait()
    queued = []
    for count, name in enumerate("bcd", start=1):
        queued.append(asyncio.create_task(_write(sessions, name, order)))
        await _queued(engine, count)  # each reaches its INSERT before the next one starts
    assert order == ["a"], "the others wait while the first transaction writes"
    assert not any(task.done() for task in queued)

    release.set()
    await asyncio.wait_for(asyncio.gather(first, *queued), timeout=30)
    assert order == ["a", "b", "c", "d"]
    async with sessions() as session:
        rows = (await session.execute(text("SELECT writer FROM t ORDER BY rowid"))).scalars()
        assert list(rows) == ["a", "b", "c", "d"]


async def test_a_rolled_back_or_abandoned_writer_lets_the_next_one_in(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)

    async def failing() -> None:
        async with sessions.begin() as session:
            await session.execute(text("INSERT INTO t VALUES ('rolled back')"))
            raise RuntimeError("the change fails half-way")

    with pytest.raises(RuntimeError):
        await failing()
    async with sessions() as session:  # closed without commit or rollback
        await session.execute(text("INSERT INTO t VALUES ('abandoned')"))
    order: list[str] = []
    await asyncio.wait_for(_write(sessions, "next", order), timeout=5)
    async with sessions() as session:
        assert list((await session.execute(text("SELECT writer FROM t"))).scalars()) == ["next"]


async def test_readers_do_not_wait_for_a_writer(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)
    holding, release = asyncio.Event(), asyncio.Event()
    writer = asyncio.create_task(_write(sessions, "a", [], holding=holding, release=release))
    await holding.wait()
    async with sessions() as session:
        count = await asyncio.wait_for(session.scalar(text("SELECT count(*) FROM t")), 5)
    assert count == 0  # WAL: the reader sees the last commit, not the open transaction
    release.set()
    await writer
