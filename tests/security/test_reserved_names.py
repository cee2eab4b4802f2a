"""Squatting a resource instance: registering `resource.<r>.<client>` before the console does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolvers.core import audit
from resolvers.core.context import Principal
from store.models import App, Maintainer, MaintainerRole, Release
from tests.releases import V1
from tests.security.tenants import (
    CLIENT_YAML,
    DEPLOY,
    PUBLISH,
    REGISTER,
    RESOURCE_YAML,
    SERVICE_YAML,
    Tenants,
    serve_tenants,
    tenant_settings,
)


@pytest.fixture
async def tenants(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Tenants]:
    settings = tenant_settings(database_url, data_dir)
    async with serve_tenants(settings, sessions, apps=False) as tenants:
        for name, yaml in (("s2", SERVICE_YAML), ("redis", RESOURCE_YAML)):
            await tenants.mutate("alice", REGISTER, n=name)
            await tenants.mutate("alice", PUBLISH, a=name, v=V1, y=yaml)
            await tenants.mutate("alice", DEPLOY, n=name)
        yield tenants


@pytest.mark.parametrize(
    "name", ["resource.redis.b1", "resource.nothing-yet.someone", "resource.a.b"]
)
async def test_graphql_refuses_registering_an_instance_name(tenants: Tenants, name: str) -> None:
    body = await tenants.graphql("mallory", REGISTER, n=name)
    (error,) = body["data"]["registerRepo"]["errors"]
    assert error["code"] == "INVALID"
    assert "resource.<resource>.<client>" in error["message"]
    assert "reserved" in error["message"]
    async with tenants.sessions() as session:
        assert (await session.execute(select(App).where(App.name == name))).first() is None


async def test_rest_refuses_registering_an_instance_name(tenants: Tenants) -> None:
    response = await tenants.rest(
        "mallory", "POST", "/api/v1/repos/", json={"appname": "resource.redis.b1"}
    )
    assert response.status_code == 400, response.text
    assert "resource.<resource>.<client> are created by the console" in response.json()["msg"]


async def test_a_squatted_instance_is_not_adopted(tenants: Tenants) -> None:
    """A name registered before the rule existed (written as the old code path did) must
    not become bob's instance: mallory would read bob's redis password from it."""
    # What register_repo wrote before names of this form were reserved: the app, its
    # registering admin and the REPOSIT entry, all under mallory's name.
    mallory = Principal(name="mallory")
    async with tenants.sessions.begin() as session:
        app = App(name="resource.redis.b1")
        session.add(app)
        await session.flush()
        session.add(Maintainer(app_id=app.id, username="mallory", role=MaintainerRole.ADMIN))
        audit.record(session, mallory, "REPOSIT", "resource.redis.b1")
    await tenants.mutate("bob", REGISTER, n="b1")
    await tenants.mutate("bob", PUBLISH, a="b1", v=V1, y=CLIENT_YAML)
    body = await tenants.graphql("bob", DEPLOY, n="b1")
    (error,) = body["data"]["deployApp"]["errors"]
    assert error["code"] == "CONFLICT"
    assert "resource.redis.b1 was registered by a user" in error["message"]
    assert "resource.redis.b1.worker.redis" not in tenants.scheduler.jobs
    async with tenants.sessions() as session:
        squatted = (
            await session.execute(select(App).where(App.name == "resource.redis.b1"))
        ).scalar_one()
        assert squatted.meta_version is None
        releases = await session.execute(select(Release).where(Release.app_id == squatted.id))
        assert releases.first() is None  # bob's password never landed there


@pytest.mark.parametrize("name", ["s2.portal.portal-echo_b1", "b1.worker.worker", "resource.a"])
async def test_other_derived_names_break_the_name_rule(tenants: Tenants, name: str) -> None:
    body = await tenants.graphql("mallory", REGISTER, n=name)
    (error,) = body["data"]["registerRepo"]["errors"]
    assert error["code"] == "INVALID"
    assert "must start with a letter" in error["message"]


async def test_auth_off_registers_and_adopts_as_lain_did(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """No tenants without auth: a copy of an old console's repos (which lists its
    resource.<r>.<c> records) registers, and the client's deploy adopts the record."""
    settings = tenant_settings(database_url, data_dir, auth=False)
    async with serve_tenants(settings, sessions, apps=False) as open_console:
        await open_console.mutate("alice", REGISTER, n="resource.redis.b1")
        for name, yaml in (("s2", SERVICE_YAML), ("redis", RESOURCE_YAML), ("b1", CLIENT_YAML)):
            await open_console.mutate("alice", REGISTER, n=name)
            await open_console.mutate("alice", PUBLISH, a=name, v=V1, y=yaml)
            await open_console.mutate("alice", DEPLOY, n=name)
        assert "resource.redis.b1.worker.redis" in open_console.scheduler.jobs
