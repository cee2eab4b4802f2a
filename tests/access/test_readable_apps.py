"""'The apps the caller may read' is one rule (access.readable_deployed_apps) behind every
list: GraphQL `apps`, `viewer.apps`, REST `GET /api/v1/apps/`, and the resolvers under them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from resolvers import apps
from resolvers.core.context import OpContext, Principal, Services
from resolvers.core.events import EventBus
from resolvers.lain import overview
from store.models import App, Maintainer
from tests.access.conftest import PRINCIPALS, World
from tests.releases import V1, two_proc_yaml


async def _deploy_other(world: World) -> None:
    """`other`, deployed, with no maintainer among the callers but the global admin."""
    creator = "global-admin" if world.auth else "anonymous"  # type: ignore[attr-defined]
    register = 'mutation { registerRepo(input: {name: "other"}) { errors { code } } }'
    assert (await world.graphql(creator, register))["data"]["registerRepo"]["errors"] == []
    publish = (
        'mutation($y: String!) { publishRelease(input: {app: "other", '
        f'metaVersion: "{V1}", lainYaml: $y}}) {{ errors {{ code }} }} }}'
    )
    response = await world.http.post(
        "/graphql",
        json={"query": publish, "variables": {"y": two_proc_yaml("other")}},
        headers=world.headers(creator),
    )
    assert response.json()["data"]["publishRelease"]["errors"] == []
    deploy = 'mutation { deployApp(input: {name: "other"}) { errors { code } } }'
    assert (await world.graphql(creator, deploy))["data"]["deployApp"]["errors"] == []
    async with world.sessions.begin() as session:
        other = (await session.execute(select(App).where(App.name == "other"))).scalar_one()
        for row in (
            await session.execute(select(Maintainer).where(Maintainer.app_id == other.id))
        ).scalars():
            if row.username != "global-admin":
                await session.delete(row)


def _expected(who: str, auth: bool) -> list[str] | None:
    """The names the caller may list; None: it is refused (UNAUTHENTICATED, LAIN's 401)."""
    if not auth:
        return ["hello", "other"]
    if who in ("anonymous", "bad-token"):
        return None
    return {"global-admin": ["hello", "other"], "admin": ["hello"], "normal": ["hello"]}.get(
        who, []
    )


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_every_list_of_apps_shows_what_the_caller_may_read(world: World, who: str) -> None:
    auth: bool = world.auth  # type: ignore[attr-defined]
    await _deploy_other(world)
    expected = _expected(who, auth)

    listed = await world.graphql(who, "{ apps { nodes { name procs { name } } } }")
    viewer = await world.graphql(who, "{ viewer { apps { nodes { name } } } }")
    rest = await world.http.get("/api/v1/apps/", headers=world.headers(who))
    if expected is None:
        assert listed["data"] is None or listed["data"]["apps"] is None
        assert listed["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert viewer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert rest.status_code == 401
        return
    assert [a["name"] for a in listed["data"]["apps"]["nodes"]] == expected
    assert [a["name"] for a in viewer["data"]["viewer"]["apps"]["nodes"]] == expected
    assert rest.status_code == 200
    assert [a["appname"] for a in rest.json()["apps"]] == expected
    # The procs of a listed app come with the page, and only for apps the caller may read.
    for node in listed["data"]["apps"]["nodes"]:
        assert [p["name"] for p in node["procs"]] == ["web", "jobs"]


@pytest.mark.parametrize("who", ["outsider", "normal", "global-admin"])
async def test_resolvers_list_the_same_apps_for_both_doors(world: World, who: str) -> None:
    auth: bool = world.auth  # type: ignore[attr-defined]
    await _deploy_other(world)
    principal = Principal(name=who, is_admin=who == "global-admin")
    ctx = OpContext(
        services=Services(
            sessions=world.sessions, scheduler=world.scheduler, bus=EventBus(), auth_enabled=auth
        ),
        principal=principal,
    )
    expected = _expected(who, auth)
    graphql_door = [v.name for v in (await apps.list_apps(ctx)).items]
    page = [o.app.name for o in (await overview.app_page(ctx)).page.items]
    rest_door = [o.app.name for o in (await overview.app_overviews(ctx)).items]
    assert graphql_door == page == rest_door == expected
