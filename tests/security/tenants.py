"""Tenants that do not trust each other, on a console served over real HTTP with auth on.

alice owns the service `s2` (its env holds a secret) and the resource `redis`; bob owns `b1`,
a client of both, so deploying it creates `resource.redis.b1`. carol was made a maintainer of
b1 and dave one of redis after that instance existed; mallory owns nothing; root is a global
admin. Everything is set up through the public API, as each user would.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolvers import users
from resolvers.core.context import SYSTEM, OpContext, Services
from resolvers.core.events import EventBus
from server.app import create_app
from server.settings import Settings, load_settings
from tests.fakes.scheduler import FakeScheduler
from tests.live import serve
from tests.releases import V1

USERS = ("alice", "bob", "carol", "dave", "mallory", "root")
SECRET = "S2_PASSWORD=hunter2"

SERVICE_YAML = f"""\
appname: s2
service.echo:
  cmd: ./echo
  port: 1234
  env:
    - {SECRET}
  portal:
    cmd: ./proxy
    port: 10000
"""

RESOURCE_YAML = """\
appname: redis
apptype: resource
service.redis:
  cmd: redis-server --requirepass {{ password|default('none') }}
  port: 3333
  portal:
    cmd: ./proxy
"""

CLIENT_YAML = """\
appname: b1
worker:
  cmd: ./b1
use_services:
  s2:
    - echo
use_resources:
  redis:
    password: bobs-redis-password
    services:
      - redis
"""

REGISTER = "mutation($n: String!) { registerRepo(input: {name: $n}) { errors { code message } } }"
PUBLISH = """mutation($a: String!, $v: String!, $y: String!) {
  publishRelease(input: {app: $a, metaVersion: $v, lainYaml: $y}) { errors { code message } }
}"""
DEPLOY = "mutation($n: String!) { deployApp(input: {name: $n}) { errors { code message } } }"
ADD_MAINTAINER = """mutation($a: String!, $u: String!) {
  addMaintainer(input: {app: $a, username: $u}) { errors { code message } }
}"""


@dataclass
class Tenants:
    url: str
    http: httpx.AsyncClient
    tokens: dict[str, str]
    token_ids: dict[str, int]
    sessions: async_sessionmaker[AsyncSession]
    scheduler: FakeScheduler
    services: Services

    def headers(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"access-token": self.tokens[who]}

    async def graphql(self, who: str | None, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self.headers(who)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def mutate(self, who: str, query: str, **variables: Any) -> None:
        body = await self.graphql(who, query, **variables)
        assert "errors" not in body, body
        (payload,) = body["data"].values()
        assert payload["errors"] == [], payload

    async def rest(self, who: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, path, headers=self.headers(who), **kwargs)

    @property
    def system(self) -> OpContext:
        return OpContext(services=self.services, principal=SYSTEM)


async def _seed_users(services: Services) -> tuple[dict[str, str], dict[str, int]]:
    system = OpContext(services=services, principal=SYSTEM)
    tokens: dict[str, str] = {}
    ids: dict[str, int] = {}
    for name in USERS:
        await users.add_user(system, name=name, is_admin=name == "root")
        view, tokens[name] = await users.create_token(system, user=name)
        ids[name] = view.id
    return tokens, ids


def tenant_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Auth on, no reconciler rounds (what a test sees is what its requests did)."""
    base = replace(
        load_settings({}),
        data_dir=data_dir,
        database_url=database_url,
        auth=True,
        reconcile_interval=0,
    )
    return replace(base, **overrides)


@contextlib.asynccontextmanager
async def serve_tenants(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    apps: bool = True,
    **uvicorn_options: Any,
) -> AsyncIterator[Tenants]:
    """The console with the users seeded, and (with `apps`) the apps deployed."""
    scheduler = FakeScheduler()
    services = Services(
        sessions=sessions, scheduler=scheduler, bus=EventBus(), auth_enabled=settings.auth
    )
    tokens, ids = await _seed_users(services)
    async with (
        serve(create_app(settings, scheduler=scheduler), **uvicorn_options) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        tenants = Tenants(url, http, tokens, ids, sessions, scheduler, services)
        if apps:
            await _deploy_apps(tenants)
        yield tenants


async def _deploy(tenants: Tenants, who: str, name: str, yaml: str) -> None:
    await tenants.mutate(who, REGISTER, n=name)
    await tenants.mutate(who, PUBLISH, a=name, v=V1, y=yaml)
    await tenants.mutate(who, DEPLOY, n=name)


async def _deploy_apps(tenants: Tenants) -> None:
    await _deploy(tenants, "alice", "s2", SERVICE_YAML)
    await _deploy(tenants, "alice", "redis", RESOURCE_YAML)
    await _deploy(tenants, "bob", "b1", CLIENT_YAML)
    if not tenants.services.auth_enabled:
        return  # no maintainers without auth, as in LAIN
    await tenants.mutate("bob", ADD_MAINTAINER, a="b1", u="carol")
    await tenants.mutate("alice", ADD_MAINTAINER, a="redis", u="dave")
