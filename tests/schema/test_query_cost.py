"""A nested query costs a constant number of SQL statements and one scheduler read."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from sqlalchemy.engine import Engine

from resolvers.core.events import EventBus
from server.app import create_app
from server.settings import load_settings
from tests.fakes.scheduler import FakeScheduler
from tests.releases import V1, two_proc_yaml
from tests.schema.conftest import GraphQLClient
from tests.schema.test_mutations import DEPLOY, PUBLISH, REGISTER

NESTED = "{ apps(first: 100) { nodes { name procs { name instances { number status } } } } }"


@contextmanager
def count_statements() -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        # The event log's writer and tail run beside requests; their statements are theirs.
        if "event_log" not in args[2]:
            statements.append(args[2])

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", record)


@pytest.fixture
async def gql_and_scheduler(
    database_url: str, data_dir: Path, engine: object
) -> AsyncIterator[tuple[GraphQLClient, FakeScheduler, EventBus]]:
    scheduler = FakeScheduler()
    # The cost of executing the query: the read cache (off here) would answer repeats.
    settings = replace(
        load_settings({}), data_dir=data_dir, database_url=database_url, read_cache_bytes=0
    )
    app = create_app(settings, scheduler=scheduler)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app), base_url="http://test"
        ) as http,
    ):
        bus = manager._state["lain"].services.bus
        yield GraphQLClient(http), scheduler, bus


async def _deploy_apps(gql: GraphQLClient, names: list[str]) -> None:
    for name in names:
        await gql(REGISTER, name=name)
        await gql(PUBLISH, app=name, v=V1, yaml=two_proc_yaml(name))
        assert (await gql(DEPLOY, name=name))["data"]["deployApp"]["errors"] == []


async def _cost(
    gql: GraphQLClient, scheduler: FakeScheduler, bus: EventBus
) -> tuple[int, int, int]:
    await bus.drain()  # the deploys' events are persisted (and their snapshots read) first
    scheduler.calls.clear()
    with count_statements() as statements:
        result = await gql(NESTED)
    assert "errors" not in result
    reads = [c for c in scheduler.calls if c[0] == "states"]
    return len(result["data"]["apps"]["nodes"]), len(statements), len(reads)


async def test_nested_apps_query_cost_does_not_grow_with_the_number_of_apps(
    gql_and_scheduler: tuple[GraphQLClient, FakeScheduler, EventBus],
) -> None:
    gql, scheduler, bus = gql_and_scheduler
    await _deploy_apps(gql, ["app0"])
    one = await _cost(gql, scheduler, bus)
    await _deploy_apps(gql, [f"app{i}" for i in range(1, 50)])
    fifty = await _cost(gql, scheduler, bus)
    assert one[0] == 1
    assert fifty[0] == 50
    assert fifty[1] == one[1], f"SQL statements: {one[1]} for 1 app, {fifty[1]} for 50"
    assert one[1] <= 2  # the page of apps; their procs with their releases (one join)
    assert (one[2], fifty[2]) == (1, 1)  # one batched scheduler read, whatever the count
