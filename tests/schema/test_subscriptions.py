from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from server.app import create_app
from server.settings import load_settings
from tests.fakes.scheduler import FakeScheduler
from tests.live import GraphQLHttp, register_hello, serve, subscribe

APP_EVENTS = """subscription($name: String!, $after: String) {
  appEvents(name: $name, after: $after) {
    cursor kind app { name status } proc { name numInstances instances { number status } }
    instance { number status restarts }
  }
}"""


@pytest.fixture
async def live(
    database_url: str, data_dir: Path, engine: object
) -> AsyncIterator[tuple[str, GraphQLHttp, FakeScheduler]]:
    scheduler = FakeScheduler()
    settings = replace(load_settings({}), data_dir=data_dir, database_url=database_url)
    async with (
        serve(create_app(settings, scheduler=scheduler)) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        gql = GraphQLHttp(client)
        await register_hello(gql)
        yield base_url, gql, scheduler


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_app_events_deliver_snapshots_in_cursor_order(
    live: tuple[str, GraphQLHttp, FakeScheduler], protocol: str
) -> None:
    base_url, gql, _ = live
    async with subscribe(base_url, APP_EVENTS, {"name": "hello"}, protocol=protocol) as sub:
        await gql('mutation { deployApp(input: {name: "hello"}) { errors { code } } }')
        events = [await sub.next_event() for _ in range(4)]
    kinds = [e["appEvents"]["kind"] for e in events]
    assert kinds == ["APP", "PROC", "PROC", "APP"]
    cursors = [int(e["appEvents"]["cursor"]) for e in events]
    assert cursors == sorted(set(cursors))
    assert events[0]["appEvents"]["app"]["status"] == "DEPLOYING"
    assert events[3]["appEvents"]["app"]["status"] == "DEPLOYED"
    jobs = events[2]["appEvents"]["proc"]
    assert jobs["name"] == "jobs"
    assert [i["status"] for i in jobs["instances"]] == ["RUNNING", "RUNNING"]


async def test_after_replays_what_the_client_missed(
    live: tuple[str, GraphQLHttp, FakeScheduler],
) -> None:
    base_url, gql, _ = live
    async with subscribe(base_url, APP_EVENTS, {"name": "hello"}) as sub:
        await gql('mutation { deployApp(input: {name: "hello"}) { errors { code } } }')
        first = await sub.next_event()
    resume_from = first["appEvents"]["cursor"]
    await gql(
        'mutation { restartProc(input: {app: "hello", proc: "jobs", instance: 2})'
        " { errors { code } } }"
    )
    async with subscribe(base_url, APP_EVENTS, {"name": "hello", "after": resume_from}) as sub:
        replayed = [await sub.next_event() for _ in range(4)]
    kinds = [e["appEvents"]["kind"] for e in replayed]
    assert kinds == ["PROC", "PROC", "APP", "INSTANCE"]
    assert int(replayed[0]["appEvents"]["cursor"]) == int(resume_from) + 1
    restarted = replayed[3]["appEvents"]["instance"]
    assert restarted == {"number": 2, "status": "RUNNING", "restarts": 1}


async def test_proc_events_only_carry_that_proc(
    live: tuple[str, GraphQLHttp, FakeScheduler],
) -> None:
    base_url, gql, _ = live
    await gql('mutation { deployApp(input: {name: "hello"}) { errors { code } } }')
    query = """subscription { procEvents(app: "hello", proc: "web") {
        kind proc { name numInstances } } }"""
    async with subscribe(base_url, query) as sub:
        await gql(
            'mutation { scaleProc(input: {app: "hello", proc: "jobs", numInstances: 3})'
            " { errors { code } } }"
        )
        await gql(
            'mutation { scaleProc(input: {app: "hello", proc: "web", numInstances: 2})'
            " { errors { code } } }"
        )
        event = await sub.next_event()
    assert event["procEvents"] == {"kind": "PROC", "proc": {"name": "web", "numInstances": 2}}


async def test_subscribing_to_an_unknown_app_is_an_error(
    live: tuple[str, GraphQLHttp, FakeScheduler],
) -> None:
    base_url, _, _ = live
    async with subscribe(base_url, APP_EVENTS, {"name": "ghost"}) as sub:
        message = await sub.receive()
    assert message["type"] in ("next", "error")
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
