"""Reaching another tenant's app through one's own: every nested path, both doors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schema.types import global_id
from tests.releases import V1
from tests.security.tenants import SECRET, Tenants, serve_tenants, tenant_settings

REDIS_PASSWORD = "bobs-redis-password"


@pytest.fixture
async def tenants(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Tenants]:
    async with serve_tenants(tenant_settings(database_url, data_dir), sessions) as tenants:
        yield tenants


def _refused_at(body: dict[str, Any], *path: str | int) -> None:
    codes = {tuple(e["path"]): e["extensions"]["code"] for e in body.get("errors", [])}
    assert codes.get(path) == "FORBIDDEN", body


async def test_the_service_itself_is_forbidden(tenants: Tenants) -> None:
    body = await tenants.graphql("bob", '{ app(name: "s2") { name } }')
    _refused_at(body, "app")


async def test_uses_services_does_not_open_the_service(tenants: Tenants) -> None:
    query = """{ app(name: "b1") { usesServices { app service {
        name procs { env } portals { env } release { lainYaml } } } } }"""
    body = await tenants.graphql("bob", query)
    assert body["data"]["app"]["usesServices"] == [{"app": "s2", "service": None}]
    _refused_at(body, "app", "usesServices", 0, "service")
    assert "hunter2" not in str(body)
    # The service's owner still reads it through the same path.
    body = await tenants.graphql("root", query)
    assert SECRET in body["data"]["app"]["usesServices"][0]["service"]["procs"][0]["env"]


async def test_uses_resources_opens_only_a_readable_instance(tenants: Tenants) -> None:
    query = '{ app(name: "b1") { usesResources { instance { name release { lainYaml } } } } }'
    # bob deployed b1, so the console made him a maintainer of its instance.
    body = await tenants.graphql("bob", query)
    (use,) = body["data"]["app"]["usesResources"]
    assert use["instance"]["name"] == "resource.redis.b1"
    # carol maintains b1 but was never given the instance.
    body = await tenants.graphql("carol", query)
    assert body["data"]["app"]["usesResources"] == [{"instance": None}]
    _refused_at(body, "app", "usesResources", 0, "instance")
    assert REDIS_PASSWORD not in str(body)


async def test_resource_instances_are_each_checked(tenants: Tenants) -> None:
    query = '{ app(name: "redis") { resourceInstances { name procs { cmd } } } }'
    body = await tenants.graphql("alice", query)
    assert [i["name"] for i in body["data"]["app"]["resourceInstances"]] == ["resource.redis.b1"]
    # dave became a maintainer of redis after the instance existed: not of the instance.
    body = await tenants.graphql("dave", query)
    assert body["data"]["app"]["resourceInstances"] == [None]
    _refused_at(body, "app", "resourceInstances", 0)
    assert REDIS_PASSWORD not in str(body)


@pytest.mark.parametrize("service", ["s2", "redis"])
async def test_clients_are_each_checked(tenants: Tenants, service: str) -> None:
    query = f'{{ app(name: "{service}") {{ clients {{ name procs {{ env }} }} }} }}'
    body = await tenants.graphql("alice", query)
    assert body["data"]["app"]["clients"] == [None]
    _refused_at(body, "app", "clients", 0)
    body = await tenants.graphql("root", query)
    assert [c["name"] for c in body["data"]["app"]["clients"]] == ["b1"]


@pytest.mark.parametrize(
    ("kind", "key"),
    [("App", "s2"), ("Release", f"s2/{V1}"), ("Proc", "s2/echo"), ("Repo", "s2")],
)
async def test_node_is_checked(tenants: Tenants, kind: str, key: str) -> None:
    query = "query($id: ID!) { node(id: $id) { id ... on Proc { env } } }"
    body = await tenants.graphql("bob", query, id=global_id(kind, key))
    assert body["data"]["node"] is None
    _refused_at(body, "node")
    assert (await tenants.graphql("root", query, id=global_id(kind, key)))["data"]["node"]


async def test_rest_client_object_embeds_no_unreadable_service(tenants: Tenants) -> None:
    response = await tenants.rest("bob", "GET", "/api/v1/apps/b1/")
    assert response.status_code == 200, response.text
    (use,) = response.json()["app"]["useservices"]
    assert use["servicename"] == "s2"
    assert use["service"] == {}
    assert "hunter2" not in response.text
    listed = await tenants.rest("bob", "GET", "/api/v1/apps/")
    assert "hunter2" not in listed.text
    # The owner's view of the same client embeds it in full.
    root = await tenants.rest("root", "GET", "/api/v1/apps/b1/")
    assert root.json()["app"]["useservices"][0]["service"]["appname"] == "s2"


async def test_rest_client_object_embeds_no_unreadable_instance(tenants: Tenants) -> None:
    response = await tenants.rest("carol", "GET", "/api/v1/apps/b1/")
    assert response.status_code == 200, response.text
    assert response.json()["app"]["useresources"][0]["resourceinstance"] == {}
    bob = await tenants.rest("bob", "GET", "/api/v1/apps/b1/")
    instance = bob.json()["app"]["useresources"][0]["resourceinstance"]
    assert instance["appname"] == "resource.redis.b1"


async def test_rest_resource_lists_only_readable_instances(tenants: Tenants) -> None:
    for path, key in (
        ("/api/v1/apps/redis/", "app"),
        ("/api/v1/resources/redis/instances/", "instances"),
    ):
        response = await tenants.rest("dave", "GET", path)
        assert response.status_code == 200, response.text
        body = response.json()[key]
        instances = body["resourceinstances"] if key == "app" else body
        assert instances == [], path
        assert REDIS_PASSWORD not in response.text
        alice = (await tenants.rest("alice", "GET", path)).json()[key]
        names = alice["resourceinstances"] if key == "app" else alice
        assert [i["appname"] for i in names] == ["resource.redis.b1"]
