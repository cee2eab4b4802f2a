from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.models import App, AppStatus, AuditEntry, Maintainer, MaintainerRole, Proc, Release


async def _app(sessions: async_sessionmaker[AsyncSession], name: str = "hello") -> App:
    async with sessions.begin() as session:
        app = App(name=name)
        session.add(app)
    return app


async def test_app_defaults_are_undeployed_with_utc_times(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _app(sessions)
    async with sessions() as session:
        app = (await session.execute(select(App))).scalar_one()
    assert app.status is AppStatus.UNDEPLOYED
    assert app.meta_version is None
    assert app.last_error == ""
    assert app.created_at.tzinfo is not None
    assert abs(app.created_at - datetime.now(UTC)) < timedelta(minutes=1)


async def test_app_name_is_unique(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _app(sessions)
    with pytest.raises(IntegrityError):
        await _app(sessions)


async def test_release_meta_version_is_unique_per_app_only(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hello, world = await _app(sessions, "hello"), await _app(sessions, "world")
    version = "1528874349-" + "a" * 40
    async with sessions.begin() as session:
        for app in (hello, world):
            session.add(
                Release(app_id=app.id, meta_version=version, meta_timestamp=1, lain_yaml="x")
            )
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            session.add(
                Release(app_id=hello.id, meta_version=version, meta_timestamp=1, lain_yaml="y")
            )


async def test_deleting_an_app_removes_its_rows_but_keeps_the_audit_log(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    app = await _app(sessions)
    async with sessions.begin() as session:
        session.add_all(
            [
                Release(app_id=app.id, meta_version="v", meta_timestamp=1, lain_yaml="x"),
                Proc(app_id=app.id, name="web", proc_type="web", meta_version="v", spec={"a": 1}),
                Maintainer(app_id=app.id, username="alice", role=MaintainerRole.ADMIN),
                AuditEntry(username="alice", operation="REPOSIT", app="hello"),
            ]
        )
    async with sessions.begin() as session:
        await session.delete(await session.get(App, app.id))
    async with sessions() as session:
        for model in (Release, Proc, Maintainer):
            assert (await session.execute(select(model))).first() is None
        entry = (await session.execute(select(AuditEntry))).scalar_one()
    assert entry.app == "hello"


async def test_proc_spec_round_trips_as_json(sessions: async_sessionmaker[AsyncSession]) -> None:
    app = await _app(sessions)
    spec = {"cmd": ["python", "-m", "http.server"], "env": ["A=1"], "port": 80}
    async with sessions.begin() as session:
        session.add(Proc(app_id=app.id, name="web", proc_type="web", meta_version="v", spec=spec))
    async with sessions() as session:
        proc = (await session.execute(select(Proc))).scalar_one()
    assert proc.spec == spec
    assert proc.num_instances is None  # no override: the release decides


async def test_times_are_stored_as_utc_whatever_zone_they_arrive_in(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    shanghai = timezone(timedelta(hours=8))
    at = datetime(2026, 1, 1, 8, 0, tzinfo=shanghai)
    async with sessions.begin() as session:
        session.add(AuditEntry(username="a", operation="DEPLOY", app="x", at=at))
    async with sessions() as session:
        entry = (await session.execute(select(AuditEntry))).scalar_one()
    assert entry.at == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert entry.at.utcoffset() == timedelta(0)


async def test_naive_datetimes_are_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(StatementError, match="naive datetimes"):
        async with sessions.begin() as session:
            session.add(
                AuditEntry(username="a", operation="X", app="x", at=datetime(2026, 1, 1))  # noqa: DTZ001
            )


async def test_status_accepts_only_known_values(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(StatementError):
        async with sessions.begin() as session:
            session.add(App(name="bad", status="exploded"))
