"""The stored state version moves with every committed write and with nothing else."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.models import NotifySubscriber, User
from store.stateversion import read_state_version


async def _version(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        found = await read_state_version(session)
    assert found is not None, "the migration leaves the version row"
    return found


async def test_orm_write_bumps_once_per_transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    before = await _version(sessions)
    async with sessions.begin() as session:
        session.add(User(name="alice"))
        await session.flush()  # a flush mid-transaction, then more changes at commit
        session.add(User(name="bob"))
    assert await _version(sessions) == before + 1


async def test_core_statements_bump(sessions: async_sessionmaker[AsyncSession]) -> None:
    before = await _version(sessions)
    async with sessions.begin() as session:
        await session.execute(insert(NotifySubscriber).values(type="imagepush", url="u"))
    async with sessions.begin() as session:
        await session.execute(update(NotifySubscriber).values(url="v"))
    async with sessions.begin() as session:
        await session.execute(delete(NotifySubscriber))
    assert await _version(sessions) == before + 3


async def test_reads_and_rollbacks_do_not_bump(sessions: async_sessionmaker[AsyncSession]) -> None:
    before = await _version(sessions)
    async with sessions.begin() as session:
        await session.execute(select(User))

    async def abandoned() -> None:
        async with sessions.begin() as session:
            session.add(User(name="carol"))
            await session.flush()
            raise RuntimeError("abandon the transaction")

    with pytest.raises(RuntimeError):
        await abandoned()
    async with sessions() as session:
        assert (await session.execute(select(User))).all() == []
    assert await _version(sessions) == before
    # A session used again after a rollback counts only its new transaction's writes.
    async with sessions() as session:
        session.add(User(name="dave"))
        await session.flush()
        await session.rollback()
        await session.execute(select(User))
        await session.commit()
    assert await _version(sessions) == before
