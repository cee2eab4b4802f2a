"""REST logs with the Nomad backend as the server wires it: fs/logs from the fake Nomad, and
the console's archive answering after Nomad has garbage-collected a replaced allocation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import create_app
from server.settings import Settings
from store.models import LogArchiveEntry
from tests.fakes.nomad_logs import collect_garbage, output_of
from tests.fakes.nomad_server import FakeNomadServer
from tests.live import serve
from tests.rest_compat.helpers import HELLO_YAML, V2, Rest, deployed_hello, publish, until

JOB_ID = "hello.web.web"
LOGS = "/api/v1/apps/hello/procs/web/logs/"


@dataclass
class NomadWorld:
    rest: Rest
    server: FakeNomadServer


@pytest.fixture
async def world(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[NomadWorld]:
    server = FakeNomadServer(heartbeat=0.1, auto_settle=0.02).start()
    try:
        # The scheduler the settings make, with the archive the server gives it.
        monkeypatch.setenv("NOMAD_ADDR", server.url)
        # hello keeps /data: on Nomad that needs a host directory to bind it from.
        monkeypatch.setenv("LAIN_CONSOLE_NOMAD_VOLUMES_ROOT", "/srv/lain")
        app = create_app(replace(settings, backend="nomad"))
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield NomadWorld(Rest(client), server)
    finally:
        server.stop()


def _live_alloc(server: FakeNomadServer) -> str | None:
    allocs = server.fake.allocations_of(JOB_ID)
    running = [a for a in allocs if a["ClientStatus"] == "running" and a["DesiredStatus"] == "run"]
    return str(running[-1]["ID"]) if running else None


async def test_tail_then_archive_after_gc(
    world: NomadWorld, sessions: async_sessionmaker[AsyncSession]
) -> None:
    rest, server = world.rest, world.server
    await deployed_hello(rest)

    async def first_alloc_settled() -> str | None:
        # The next release goes out over a finished rollout only (one under way is refused
        # with LAIN's 406); Nomad's deployment ends a moment after the allocation runs.
        query = '{ app(name: "hello") { procs { rollout } } }'
        data = (await rest.client.post("/graphql", json={"query": query})).json()["data"]
        if any(proc["rollout"] == "RUNNING" for proc in data["app"]["procs"]):
            return None
        return _live_alloc(server)

    old = await until(first_alloc_settled)
    output_of(server.fake).write(old, "stdout", b"hello from v1\n")
    response = await rest.request("GET", LOGS)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    # Nomad keeps no time per line: "-" where the time goes.
    assert response.text == "- web.1 stdout hello from v1\n"

    await publish(rest, "hello", V2, HELLO_YAML)
    updated = await rest.request("PUT", "/api/v1/apps/hello/", {"meta_version": V2})
    assert updated.status_code == 202, updated.text

    async def replaced() -> str | None:
        found = _live_alloc(server)
        return found if found not in (None, old) else None

    new = await until(replaced)

    async def archived() -> bool:
        async with sessions() as session:
            rows = (await session.execute(select(LogArchiveEntry.origin))).scalars().all()
        return old in rows

    await until(archived)
    collect_garbage(server.fake, old)
    output_of(server.fake).write(new, "stdout", b"hello from v2\n")
    text = (await rest.request("GET", LOGS + "?instance=1")).text
    assert text == "- web.1 stdout hello from v1\n- web.1 stdout hello from v2\n"
