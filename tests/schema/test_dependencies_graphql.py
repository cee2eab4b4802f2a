from __future__ import annotations

from tests.releases import V1
from tests.resolvers.test_dependencies import REDIS, SERVICE, USES_ECHO, client_yaml, uses_redis
from tests.schema.conftest import GraphQLClient
from tests.schema.test_mutations import DEPLOY, PUBLISH, REGISTER


async def _deploy(gql: GraphQLClient, name: str, yaml: str) -> None:
    await gql(REGISTER, name=name)
    await gql(PUBLISH, app=name, v=V1, yaml=yaml)
    assert (await gql(DEPLOY, name=name))["data"]["deployApp"]["errors"] == []


async def test_links_between_apps(gql: GraphQLClient) -> None:
    await _deploy(gql, "echo-server", SERVICE)
    await _deploy(gql, "redis", REDIS)
    await _deploy(gql, "good", client_yaml("good", services=USES_ECHO, resources=uses_redis(1)))
    good = await gql(
        '{ app(name: "good") { usesServices { app services service { apptype } } '
        "usesResources { resource services instance { name apptype status } } } }"
    )
    assert good["data"]["app"] == {
        "usesServices": [
            {"app": "echo-server", "services": ["echo"], "service": {"apptype": "SERVICE"}}
        ],
        "usesResources": [
            {
                "resource": "redis",
                "services": ["redis"],
                "instance": {
                    "name": "resource.redis.good",
                    "apptype": "RESOURCE_INSTANCE",
                    "status": "DEPLOYED",
                },
            }
        ],
    }
    others = await gql(
        '{ redis: app(name: "redis") { resourceInstances { name } clients { name } } '
        'echo: app(name: "echo-server") { clients { name } portals { name } } }'
    )
    assert others["data"] == {
        "redis": {
            "resourceInstances": [{"name": "resource.redis.good"}],
            "clients": [{"name": "good"}],
        },
        "echo": {"clients": [{"name": "good"}], "portals": [{"name": "portal-echo"}]},
    }
