"""One scenario driven through REST, then through GraphQL: the same state both times."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.app import create_app
from server.settings import Settings
from store.models import App, AuditEntry, Base, Maintainer, PortalBinding, Proc, Release
from tests.fakes.scheduler import FakeScheduler
from tests.live import GraphQLHttp, serve
from tests.rest_compat.helpers import HELLO_YAML, V1, V2, Rest

WEB = "/api/v1/apps/hello/procs/web/"
FOO = "/api/v1/apps/hello/procs/foo/"


async def _rest_scenario(rest: Rest) -> None:
    steps: list[tuple[str, str, Any, int]] = [
        ("POST", "/api/v1/repos/", {"appname": "hello"}, 201),
        (
            "POST",
            "/api/v1/repos/hello/versions/",
            {"meta_version": V1, "lain_yaml": HELLO_YAML},
            201,
        ),
        (
            "POST",
            "/api/v1/repos/hello/versions/",
            {"meta_version": V2, "lain_yaml": HELLO_YAML},
            201,
        ),
        ("POST", "/api/v1/apps/", {"appname": "hello"}, 202),
        ("PATCH", WEB, {"num_instances": 3}, 202),
        ("PATCH", FOO, {"cpu": 1, "memory": "128m"}, 202),
        ("PATCH", WEB, {"operation": "stop", "instance": 2}, 202),
        ("PATCH", FOO, {"operation": "restart"}, 202),
        ("DELETE", FOO, None, 202),
        ("POST", "/api/v1/apps/hello/procs/", {"procname": "foo"}, 201),
        ("PUT", "/api/v1/apps/hello/", {"meta_version": V1}, 202),
    ]
    for method, path, body, status in steps:
        response = await rest.request(method, path, body)
        assert response.status_code == status, (method, path, response.text)


async def _graphql_scenario(gql: GraphQLHttp) -> None:
    mutations = [
        'registerRepo(input: {name: "hello"})',
        f'publishRelease(input: {{app: "hello", metaVersion: "{V1}", lainYaml: $yaml}})',
        f'publishRelease(input: {{app: "hello", metaVersion: "{V2}", lainYaml: $yaml}})',
        'deployApp(input: {name: "hello"})',
        'scaleProc(input: {app: "hello", proc: "web", numInstances: 3})',
        'resizeProc(input: {app: "hello", proc: "foo", cpu: 1, memory: "128m"})',
        'stopProc(input: {app: "hello", proc: "web", instance: 2})',
        'restartProc(input: {app: "hello", proc: "foo"})',
        'undeployProc(input: {app: "hello", proc: "foo"})',
        'deployProc(input: {app: "hello", proc: "foo"})',
        f'updateApp(input: {{name: "hello", metaVersion: "{V1}"}})',
    ]
    for mutation in mutations:
        uses_yaml = "$yaml" in mutation
        header = "mutation($yaml: String!)" if uses_yaml else "mutation"
        variables = {"yaml": HELLO_YAML} if uses_yaml else {}
        data = await gql(
            f"{header} {{ m: {mutation} {{ errors {{ code message }} }} }}", **variables
        )
        assert data["m"]["errors"] == [], mutation


async def _state(
    sessions: async_sessionmaker[AsyncSession], scheduler: FakeScheduler
) -> dict[str, Any]:
    async with sessions() as session:

        async def rows(model: type[Base], *columns: str) -> list[tuple[Any, ...]]:
            found = (await session.execute(select(model).order_by(model.id))).scalars()  # type: ignore[attr-defined]
            return [tuple(getattr(row, column) for column in columns) for row in found]

        state = {
            "apps": await rows(App, "name", "apptype", "meta_version", "status", "last_error"),
            "releases": await rows(Release, "meta_version", "lain_yaml", "image"),
            "procs": await rows(
                Proc,
                "name",
                "proc_type",
                "meta_version",
                "num_instances",
                "cpu",
                "memory",
                "deployed",
                "last_error",
            ),
            "maintainers": await rows(Maintainer, "username", "role"),
            "bindings": await rows(PortalBinding, "portal", "deployed"),
            "audit": await rows(
                AuditEntry, "username", "operation", "app", "meta_version", "message"
            ),
        }
    # Reads differ between the doors (REST shows running state more often); changes may not.
    state["scheduler"] = {
        "jobs": dict(scheduler.jobs),
        "stopped": dict(scheduler.stopped),
        "restarts": dict(scheduler.restarts),
        "calls": [call for call in scheduler.calls if call[0] != "states"],
    }
    return state


async def _empty(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "state_version":  # one row a migration made, always there
                await connection.execute(delete(table))


async def _run(
    settings: Settings, scenario: Callable[[httpx.AsyncClient], Awaitable[None]]
) -> FakeScheduler:
    scheduler = FakeScheduler()
    async with (
        serve(create_app(settings, scheduler=scheduler)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        await scenario(client)
    return scheduler


async def test_rest_and_graphql_leave_the_same_state(
    settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async def by_rest(client: httpx.AsyncClient) -> None:
        await _rest_scenario(Rest(client))

    async def by_graphql(client: httpx.AsyncClient) -> None:
        await _graphql_scenario(GraphQLHttp(client))

    through_rest = await _state(sessions, await _run(settings, by_rest))
    await _empty(engine)
    through_graphql = await _state(sessions, await _run(settings, by_graphql))
    assert through_rest == through_graphql
    # The scenario did change things: a scale, a stopped instance, an update (which keeps
    # the running count, cpu and memory, as LAIN's did). foo's resize went with its deletion:
    # it was deployed again from the lain.yaml (COMPAT 4.7).
    assert through_rest["procs"] == [
        ("web", "web", V1, 3, 0, "64m", True, ""),
        ("foo", "worker", V1, 2, 0, "32m", True, ""),
    ]
    stopped = {
        job: numbers for job, numbers in through_rest["scheduler"]["stopped"].items() if numbers
    }
    assert stopped == {"hello.web.web": {2}}
