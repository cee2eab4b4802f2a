"""The read cache on the real backends: a state change the backend makes on its own (a
process that dies; an allocation an operator restarts in Nomad) is in the very next read,
though the same read was answered from the cache just before."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from backends.base import Scheduler
from backends.nomad import JobOptions, NomadScheduler, NomadSettings
from backends.types import InstanceState, InstanceStatus
from server.app import create_app
from server.scheduler import make_scheduler
from server.settings import Settings, load_settings
from tests.fakes.nomad_server import FakeNomadServer
from tests.live import serve
from tests.rest_compat.helpers import (
    V1,
    Rest,
    deploy,
    deployed_hello,
    local_yaml,
    publish,
    register,
    until,
)

_HITS = re.compile(r'^lain_console_read_cache_requests_total\{outcome="hit"\} (\S+)$', re.M)
INSTANCES = '{ app(name: "hello") { procs { name instances { number status restarts } } } }'


@pytest.fixture
def settings(database_url: str, data_dir: Path, engine: object) -> Settings:
    return replace(
        load_settings({}), data_dir=data_dir, database_url=database_url, reconcile_interval=0
    )


async def _hits(client: httpx.AsyncClient) -> int:
    found = _HITS.search((await client.get("/metrics")).text)
    return int(float(found.group(1))) if found else 0


async def _cached(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    """`path` read until a repeat comes from the cache (background writes may move the
    version in between at first); the answer it gave."""

    async def hit() -> dict[str, Any] | None:
        before = await _hits(client)
        answer: dict[str, Any] = (await client.get(path)).json()
        return answer if await _hits(client) > before else None

    found: dict[str, Any] = await until(hit)
    return found


def _published(
    scheduler: Scheduler, matches: Callable[[InstanceState], bool]
) -> asyncio.Task[None]:
    """A task that ends as the scheduler publishes an instance change that `matches` (the
    moment the console's event pump hears of it too, before it can reach the database)."""
    after = scheduler.state_version
    assert after is not None, "the scheduler tracks its state (Nomad: in step)"
    return asyncio.create_task(_first(scheduler, after, matches))


async def _first(
    scheduler: Scheduler, after: int, matches: Callable[[InstanceState], bool]
) -> None:
    async with asyncio.timeout(30):
        async for event in scheduler.events(after):
            if event.instance is not None and matches(event.instance):
                return


async def _instances(client: httpx.AsyncClient, proc: str) -> list[dict[str, Any]]:
    response = await client.get("/graphql", params={"query": INSTANCES})
    body = response.json()
    assert "errors" not in body, body
    (found,) = [p for p in body["data"]["app"]["procs"] if p["name"] == proc]
    instances: list[dict[str, Any]] = found["instances"]
    return instances


# -- local backend: real processes ---------------------------------------------------------


@pytest.fixture
async def local(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Scheduler]]:
    scheduler = make_scheduler(settings)
    async with (
        serve(create_app(settings, scheduler=scheduler)) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        try:
            yield client, scheduler
        finally:
            await client.delete("/api/v1/apps/hello/")  # processes outlive the server


async def test_local_reads_are_fresh_after_a_process_dies(
    local: tuple[httpx.AsyncClient, Scheduler],
) -> None:
    client, scheduler = local
    rest = Rest(client)
    await register(rest)
    await publish(rest, "hello", V1, local_yaml())
    await deploy(rest)
    foo = "/api/v1/apps/hello/procs/foo/"

    async def running() -> str | None:
        pods = (await client.get(foo)).json()["proc"]["pods"]
        return pods[0]["containerid"] if pods and pods[0]["status"] == "True" else None

    pid: str = await until(running)
    proc = (await _cached(client, foo))["proc"]
    assert [(p["containerid"], p["status"]) for p in proc["pods"]] == [(pid, "True")]
    assert [i["status"] for i in await _instances(client, "foo")] == ["RUNNING"]
    assert [i["status"] for i in await _instances(client, "foo")] == ["RUNNING"]

    def died(instance: InstanceState) -> bool:
        return instance.job_id == "hello.worker.foo" and (
            instance.instance_id != pid or instance.status is not InstanceStatus.RUNNING
        )

    watching = _published(scheduler, died)
    os.kill(int(pid), signal.SIGKILL)
    await watching
    # The database has not necessarily heard of it yet; the reads must have.
    proc = (await client.get(foo)).json()["proc"]
    assert (pid, "True") not in [(p["containerid"], p["status"]) for p in proc["pods"]]
    (instance,) = await _instances(client, "foo")
    assert instance["status"] != "RUNNING" or instance["restarts"] >= 1


# -- Nomad backend: the fake Nomad ---------------------------------------------------------


@pytest.fixture
async def nomad(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, NomadScheduler, FakeNomadServer]]:
    server = FakeNomadServer(heartbeat=0.1, auto_settle=0.05).start()
    try:
        scheduler = NomadScheduler(
            NomadSettings(address=server.url),
            timeout=5.0,
            options=JobOptions(volumes_root="/srv/lain"),  # hello keeps /data
        )
        app = create_app(replace(settings, backend="nomad"), scheduler=scheduler)
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield client, scheduler, server
    finally:
        server.stop()


async def test_nomad_reads_are_fresh_after_an_operator_restarts_an_allocation(
    nomad: tuple[httpx.AsyncClient, NomadScheduler, FakeNomadServer],
) -> None:
    client, scheduler, server = nomad
    await deployed_hello(Rest(client))
    web = "/api/v1/apps/hello/procs/web/"

    async def web_running() -> bool:
        pods = (await client.get(web)).json()["proc"]["pods"]
        return [p["status"] for p in pods] == ["True"]

    await until(web_running)
    await _cached(client, web)
    query = f"/graphql?{httpx.QueryParams({'query': INSTANCES})}"
    before = await _cached(client, query)
    (web_proc,) = [p for p in before["data"]["app"]["procs"] if p["name"] == "web"]
    assert web_proc["instances"] == [{"number": 1, "status": "RUNNING", "restarts": 0}]

    # `nomad alloc restart`, as an operator would: not through the console.
    (alloc,) = [
        a for a in server.fake.allocations_of("hello.web.web") if a["ClientStatus"] == "running"
    ]

    def restarted(instance: InstanceState) -> bool:
        return instance.job_id == "hello.web.web" and instance.restarts >= 1

    watching = _published(scheduler, restarted)
    await anyio.to_thread.run_sync(server.fake.restart_allocation, alloc["ID"], {})
    await watching
    after = (await client.get(query)).json()
    (web_proc,) = [p for p in after["data"]["app"]["procs"] if p["name"] == "web"]
    assert web_proc["instances"][0]["restarts"] >= 1
