"""Reads answered from the read cache are never stale: after writes of every kind (through
either door, with or without an event) and after backend events, on the FakeScheduler;
ETags and 304; one caller's answers never go to another."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backends.types import InstanceAction
from resolvers import users
from resolvers.core.context import SYSTEM, OpContext, Services
from resolvers.core.events import EventBus
from resolvers.core.readversion import ReadVersion
from server.app import create_app
from server.readcache import CachedAnswer, ReadCache
from server.settings import load_settings
from store.eventlog import event_bounds
from tests.fakes.scheduler import FakeScheduler
from tests.rest_compat.helpers import HELLO_YAML, V1, V2, Rest, deployed_hello, publish, until

PROC = "/api/v1/apps/hello/procs/web/"
VERSIONS = "/api/v1/repos/hello/versions/"
APP_QUERY = """query App {
  app(name: "hello") { metaVersion procs { name numInstances instances { number status } } }
  repo(name: "hello") { releases { nodes { metaVersion } } }
}"""
SCALE = """mutation($n: Int!) {
  scaleProc(input: {app: "hello", proc: "web", numInstances: $n}) { errors { code } }
}"""
_HITS = re.compile(r'^lain_console_read_cache_requests_total\{outcome="hit"\} (\S+)$', re.M)


@dataclass
class Console:
    http: httpx.AsyncClient
    scheduler: FakeScheduler
    services: Services
    metrics_headers: dict[str, str] = field(default_factory=dict)  # with auth on: an admin's

    async def settled(self) -> None:
        """Every event published so far is in the log and taken in by the bus: nothing in
        the background moves the version any more."""
        bus = self.services.bus
        published = self.scheduler.feed.cursor

        async def pumped() -> bool:
            return bus.pumped >= published  # the bus has what the scheduler published

        await until(pumped)
        await bus.drain()
        async with self.services.sessions() as session:
            newest = (await event_bounds(session)).newest or 0

        async def caught_up() -> bool:
            return bus.cursor >= newest

        await until(caught_up)

    async def hits(self) -> int:
        metrics = await self.http.get("/metrics", headers=self.metrics_headers)
        assert metrics.status_code == 200, metrics.text
        found = _HITS.search(metrics.text)
        return int(float(found.group(1))) if found else 0

    async def rest(self, path: str, **headers: str) -> httpx.Response:
        response = await self.http.get(path, headers=headers)
        assert response.status_code in (200, 304), response.text
        return response

    async def graphql(
        self, query: str, headers: dict[str, str] | None = None, **variables: Any
    ) -> Any:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers or {}
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def graphql_get(self, query: str, **headers: str) -> httpx.Response:
        return await self.http.get("/graphql", params={"query": query}, headers=headers)

    async def reads(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The proc over REST, the releases over REST, the app over GraphQL; each read twice,
        and the second time answered from the cache."""
        await self.settled()
        before = await self.hits()
        answers = []
        for _ in range(2):
            answers = [
                (await self.rest(PROC)).json()["proc"],
                (await self.rest(VERSIONS)).json(),
                await self.graphql(APP_QUERY),
            ]
        assert await self.hits() == before + 3, "the repeated reads came from the cache"
        proc, versions, app = answers
        return proc, versions, app["data"]


@pytest.fixture
async def console(database_url: str, data_dir: Path, engine: object) -> AsyncIterator[Console]:
    scheduler = FakeScheduler()
    settings = replace(
        load_settings({}), data_dir=data_dir, database_url=database_url, reconcile_interval=0
    )
    app = create_app(settings, scheduler=scheduler)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app), base_url="http://test"
        ) as http,
    ):
        yield Console(http, scheduler, manager._state["lain"].services)


def _counts(proc: dict[str, Any], app: dict[str, Any]) -> tuple[int, int]:
    (web,) = [p for p in app["app"]["procs"] if p["name"] == "web"]
    return proc["numinstances"], web["numInstances"]


async def test_reads_are_fresh_after_writes_through_either_door(console: Console) -> None:
    await deployed_hello(Rest(console.http))
    proc, _, app = await console.reads()
    assert _counts(proc, app) == (1, 1)

    response = await console.http.patch(PROC, json={"num_instances": 2})
    assert response.status_code == 202, response.text
    proc, _, app = await console.reads()
    assert _counts(proc, app) == (2, 2)

    scaled = await console.graphql(SCALE, n=3)
    assert scaled["data"]["scaleProc"]["errors"] == []
    proc, _, app = await console.reads()
    assert _counts(proc, app) == (3, 3)


async def test_reads_are_fresh_after_a_write_without_an_event(console: Console) -> None:
    """Publishing a release changes no running state and publishes no event."""
    await deployed_hello(Rest(console.http))
    _, versions, app = await console.reads()
    assert [n["metaVersion"] for n in app["repo"]["releases"]["nodes"]] == [V1]
    cursor = console.scheduler.feed.cursor

    await publish(Rest(console.http), "hello", V2, HELLO_YAML)
    assert console.scheduler.feed.cursor == cursor
    _, versions_after, app = await console.reads()
    assert versions_after != versions
    assert V2 in str(versions_after)
    assert sorted(n["metaVersion"] for n in app["repo"]["releases"]["nodes"]) == [V1, V2]


async def test_reads_are_fresh_right_after_a_backend_event(console: Console) -> None:
    """The scheduler stops an instance on its own (no request): the very next reads, before
    the event can have reached the database, show it."""
    await deployed_hello(Rest(console.http))
    proc, _, app = await console.reads()
    assert [pod["status"] for pod in proc["pods"]] == ["True"]

    await console.scheduler.control("hello.web.web", InstanceAction.STOP, 1)
    proc = (await console.rest(PROC)).json()["proc"]
    app = (await console.graphql(APP_QUERY))["data"]
    assert [pod["status"] for pod in proc["pods"]] == ["False"]
    (web,) = [p for p in app["app"]["procs"] if p["name"] == "web"]
    assert web["instances"] == [{"number": 1, "status": "EXITED"}]


async def test_nothing_is_cached_while_the_scheduler_cannot_vouch(console: Console) -> None:
    await deployed_hello(Rest(console.http))
    await console.reads()
    before = await console.hits()
    console.scheduler.down = True
    for _ in range(2):
        await console.http.get(PROC)
    assert await console.hits() == before


async def test_etag_answers_304_until_the_state_changes(console: Console) -> None:
    await deployed_hello(Rest(console.http))
    first = await console.rest(PROC)
    etag = first.headers["etag"]
    again = await console.rest(PROC, **{"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["access-control-allow-origin"] == "*"  # LAIN's headers stay
    listed = await console.rest(PROC, **{"if-none-match": f'"other", W/{etag}'})
    assert listed.status_code == 304

    response = await console.http.patch(PROC, json={"num_instances": 2})
    assert response.status_code == 202
    changed = await console.rest(PROC, **{"if-none-match": etag})
    assert changed.status_code == 200
    assert changed.json()["proc"]["numinstances"] == 2
    assert changed.headers["etag"] != etag


async def test_graphql_queries_over_get_have_etags_and_posts_do_not(console: Console) -> None:
    await deployed_hello(Rest(console.http))
    first = await console.graphql_get(APP_QUERY)
    assert first.status_code == 200, first.text
    assert first.json()["data"]["app"]["metaVersion"] == V1
    etag = first.headers["etag"]
    assert (await console.graphql_get(APP_QUERY, **{"if-none-match": etag})).status_code == 304
    posted = await console.http.post("/graphql", json={"query": APP_QUERY})
    assert "etag" not in posted.headers
    assert posted.json() == first.json()

    assert (await console.graphql(SCALE, n=2))["data"]["scaleProc"]["errors"] == []
    changed = await console.graphql_get(APP_QUERY, **{"if-none-match": etag})
    assert changed.status_code == 200
    (web,) = [p for p in changed.json()["data"]["app"]["procs"] if p["name"] == "web"]
    assert web["numInstances"] == 2


async def test_mutations_and_log_reads_are_never_cached(console: Console) -> None:
    await deployed_hello(Rest(console.http))
    over_get = await console.graphql_get(
        'mutation { registerRepo(input: {name: "other"}) { errors { code } } }'
    )
    assert over_get.status_code in (400, 405), over_get.text  # Strawberry refuses it
    logs = '{ app(name: "hello") { procs { instances { logs { text } } } } }'
    before = await console.hits()
    console.scheduler.print_lines("hello.web.web", 1, "stdout", "one")  # type: ignore[arg-type]
    first = await console.graphql(logs)
    console.scheduler.print_lines("hello.web.web", 1, "stdout", "two")  # type: ignore[arg-type]
    second = await console.graphql(logs)
    assert first != second
    rest_logs = "/api/v1/apps/hello/procs/web/logs/"
    assert (await console.http.get(rest_logs)).text != ""
    await console.http.get(rest_logs)
    assert await console.hits() == before


# -- access scopes --------------------------------------------------------------------------


@pytest.fixture
async def secured(
    database_url: str,
    data_dir: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[tuple[Console, dict[str, str]]]:
    """Auth on; hello deployed by `owner`; `outsider` is no maintainer; `boss` is admin."""
    services = Services(
        sessions=sessions, scheduler=FakeScheduler(), bus=EventBus(), auth_enabled=True
    )
    system = OpContext(services=services, principal=SYSTEM)
    tokens = {}
    for name in ("owner", "outsider", "boss"):
        await users.add_user(system, name=name, is_admin=name == "boss")
        _, tokens[name] = await users.create_token(system, user=name)
    scheduler = FakeScheduler()
    settings = replace(
        load_settings({}),
        data_dir=data_dir,
        database_url=database_url,
        reconcile_interval=0,
        auth=True,
    )
    async with (
        LifespanManager(create_app(settings, scheduler=scheduler)) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app),
            base_url="http://test",
            headers={"access-token": tokens["owner"]},
        ) as http,
    ):
        await deployed_hello(Rest(http))
        console = Console(
            http,
            scheduler,
            manager._state["lain"].services,
            metrics_headers={"access-token": tokens["boss"]},
        )
        await console.settled()
        yield console, tokens


async def test_one_callers_cached_answer_never_goes_to_another(
    secured: tuple[Console, dict[str, str]],
) -> None:
    console, tokens = secured
    owner, outsider, boss = (
        {"access-token": tokens[name]} for name in ("owner", "outsider", "boss")
    )
    apps = "{ apps { nodes { name } } viewer { name isAdmin } }"
    for _ in range(2):  # cached for the owner
        assert (await console.rest(PROC)).json()["proc"]["procname"] == "web"
        seen = await console.graphql(apps, owner)
        assert seen["data"]["apps"]["nodes"] == [{"name": "hello"}]
        assert seen["data"]["viewer"] == {"name": "owner", "isAdmin": False}

    for _ in range(2):
        refused = await console.http.get(PROC, headers=outsider)
        assert refused.status_code == 403, refused.text
        assert (await console.graphql(apps, outsider))["data"] == {
            "apps": {"nodes": []},
            "viewer": {"name": "outsider", "isAdmin": False},
        }
        anonymous = await console.http.get(PROC, headers={"access-token": ""})
        assert anonymous.status_code == 401
        admin = await console.graphql(apps, boss)
        assert admin["data"]["viewer"] == {"name": "boss", "isAdmin": True}
        assert admin["data"]["apps"]["nodes"] == [{"name": "hello"}]

    # A membership is state: once the outsider maintains hello, they see it at once.
    added = await console.http.post(
        "/api/v1/repos/hello/maintainers/", json={"username": "outsider", "role": "normal"}
    )
    assert added.status_code in (200, 201), added.text
    assert (await console.http.get(PROC, headers=outsider)).status_code == 200
    seen = await console.graphql(apps, outsider)
    assert seen["data"]["apps"]["nodes"] == [{"name": "hello"}]


async def test_a_revoked_token_gets_no_cached_answer(
    secured: tuple[Console, dict[str, str]], sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Revoked as `lain-console admin` does it: another process, writing to the database."""
    console, _ = secured
    before = await console.hits()
    for _ in range(2):
        assert (await console.rest(PROC)).status_code == 200
    assert await console.hits() == before + 1
    admin = OpContext(
        services=Services(sessions=sessions, scheduler=FakeScheduler(), bus=EventBus()),
        principal=SYSTEM,
    )
    for token in await users.list_tokens(admin, user="owner"):
        await users.revoke_token(admin, token_id=token.id)
    refused = await console.http.get(PROC)
    assert refused.status_code == 401, refused.text


# -- the cache's own bound -----------------------------------------------------------------


def _answer(version: ReadVersion, body: bytes) -> CachedAnswer:
    return CachedAnswer(
        version=version,
        status=200,
        headers=(),
        body=body,
        etag=b'"x"',
        route=None,
        size=len(body),
    )


def test_cache_keeps_its_byte_bound_dropping_the_least_recently_used() -> None:
    cache = ReadCache(max_bytes=1000)
    v1, v2 = ReadVersion(1, 0, 0), ReadVersion(2, 0, 0)
    for key in "abcd":
        cache.put(key, _answer(v1, b"x" * 240))
    assert cache.get("a", v1) is not None  # now the most recently used
    cache.put("e", _answer(v1, b"x" * 240))
    assert cache.bytes <= 1000
    assert cache.get("b", v1) is None  # the least recently used went
    assert cache.get("a", v1) is not None
    assert cache.get("a", v2) is None  # another version: dropped, never served
    assert cache.get("a", v1) is None
    cache.put("big", _answer(v1, b"x" * 300))  # over a quarter of the bound: not kept
    assert cache.get("big", v1) is None
