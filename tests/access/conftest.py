"""An app with one maintainer of each role, users and tokens, served with auth on or off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolvers import users
from resolvers.core.context import SYSTEM, OpContext, Services
from resolvers.core.events import EventBus
from server.app import create_app
from server.settings import load_settings
from store.models import App, AuditEntry, Maintainer, MaintainerRole, Proc
from tests.fakes.scheduler import FakeScheduler
from tests.releases import V1, V2, two_proc_yaml

PRINCIPALS = ("anonymous", "bad-token", "outsider", "normal", "admin", "global-admin")


@dataclass
class World:
    http: httpx.AsyncClient
    tokens: dict[str, str | None]
    sessions: async_sessionmaker[AsyncSession]
    scheduler: FakeScheduler

    def headers(self, who: str) -> dict[str, str]:
        token = self.tokens[who]
        return {} if token is None else {"access-token": token}

    async def graphql(self, who: str, query: str) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query}, headers=self.headers(who)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def snapshot(self) -> tuple[object, ...]:
        async with self.sessions() as session:
            apps = [
                (a.name, a.meta_version, a.status)
                for a in (await session.execute(select(App).order_by(App.name))).scalars()
            ]
            procs = [
                (p.name, p.num_instances, p.cpu, p.memory, p.deployed)
                for p in (await session.execute(select(Proc).order_by(Proc.id))).scalars()
            ]
            maintainers = [
                (m.username, m.role)
                for m in (
                    await session.execute(select(Maintainer).order_by(Maintainer.username))
                ).scalars()
            ]
            audit = len((await session.execute(select(AuditEntry))).all())
        return tuple(apps), tuple(procs), tuple(maintainers), audit, dict(self.scheduler.jobs)


async def _seed(sessions: async_sessionmaker[AsyncSession], auth: bool) -> dict[str, str | None]:
    services = Services(
        sessions=sessions, scheduler=FakeScheduler(), bus=EventBus(), auth_enabled=auth
    )
    system = OpContext(services=services, principal=SYSTEM)
    tokens: dict[str, str | None] = {"anonymous": None, "bad-token": "lct_not-a-real-token"}
    for name in ("outsider", "normal", "admin", "global-admin"):
        await users.add_user(system, name=name, is_admin=name == "global-admin")
        _, tokens[name] = await users.create_token(system, user=name)
    return tokens


async def _prepare_app(world: World, auth: bool) -> None:
    """hello, deployed, with `admin` and `normal` maintainers (written directly: the seed must
    not depend on the rules under test)."""
    creator = "admin" if auth else "anonymous"
    query = 'mutation { registerRepo(input: {name: "hello"}) { errors { code } } }'
    assert (await world.graphql(creator, query))["data"]["registerRepo"]["errors"] == []
    async with world.sessions.begin() as session:
        app = (await session.execute(select(App).where(App.name == "hello"))).scalar_one()
        if not auth:
            session.add(Maintainer(app_id=app.id, username="admin", role=MaintainerRole.ADMIN))
        session.add(Maintainer(app_id=app.id, username="normal", role=MaintainerRole.NORMAL))
    for version in (V1, V2):
        publish = (
            'mutation($y: String!) { publishRelease(input: {app: "hello", '
            f'metaVersion: "{version}", lainYaml: $y}}) {{ errors {{ code }} }} }}'
        )
        response = await world.http.post(
            "/graphql",
            json={"query": publish, "variables": {"y": two_proc_yaml()}},
            headers=world.headers(creator),
        )
        assert response.json()["data"]["publishRelease"]["errors"] == []
    deploy = (
        f'mutation {{ deployApp(input: {{name: "hello", metaVersion: "{V1}"}}) '
        "{ errors { code } } }"
    )
    assert (await world.graphql(creator, deploy))["data"]["deployApp"]["errors"] == []


@pytest.fixture(params=[True, False], ids=["auth-on", "auth-off"])
async def world(
    request: pytest.FixtureRequest,
    database_url: str,
    data_dir: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[World]:
    auth: bool = request.param
    tokens = await _seed(sessions, auth)
    scheduler = FakeScheduler()
    settings = replace(load_settings({}), data_dir=data_dir, database_url=database_url, auth=auth)
    app = create_app(settings, scheduler=scheduler)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app), base_url="http://test"
        ) as http,
    ):
        world = World(http=http, tokens=tokens, sessions=sessions, scheduler=scheduler)
        await _prepare_app(world, auth)
        world.auth = auth  # type: ignore[attr-defined]
        yield world
