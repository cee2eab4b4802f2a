"""Two real consoles on one PostgreSQL database: a write on one is in the very next read on
the other, though that read was answered from the other's cache just before.

Runs where LAIN_CONSOLE_TEST_DATABASE_URL is a PostgreSQL URL (CI does).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.replicas import (
    PUBLISH,
    Console,
    Consoles,
    call,
    deploy,
    needs_postgresql,
    nomad_consoles,
    registered,
    scale,
    settled,
    wait_for,
)
from tests.fakes.nomad_server import FakeNomadServer
from tests.releases import V1, V2, two_proc_yaml

pytestmark = needs_postgresql

_HITS = re.compile(r'^lain_console_read_cache_requests_total\{outcome="hit"\} (\S+)$', re.M)
READ = """{
  app(name: "hello") { procs { name numInstances } }
  repo(name: "hello") { releases { nodes { metaVersion } } }
}"""


@pytest.fixture
def group(tmp_path: Path, database: str, nomad: FakeNomadServer) -> Iterator[Consoles]:
    with nomad_consoles(tmp_path / "consoles", database, nomad, RECONCILE_INTERVAL="0") as started:
        yield started


async def _hits(http: httpx.AsyncClient, console: Console) -> int:
    found = _HITS.search((await http.get(console.url + "/metrics")).text)
    return int(float(found.group(1))) if found else 0


async def _cached_read(http: httpx.AsyncClient, console: Console) -> dict[str, Any]:
    """READ on `console`, once a repeat of it came from its cache (background work such
    as a rollout may move the version at first)."""
    answers: list[dict[str, Any]] = []

    async def hit() -> bool:
        before = await _hits(http, console)
        answers.append(await call(http, console, READ))
        return await _hits(http, console) > before

    await wait_for(hit)
    return answers[-1]


def _releases(data: dict[str, Any]) -> list[str]:
    return sorted(node["metaVersion"] for node in data["repo"]["releases"]["nodes"])


def _web(data: dict[str, Any]) -> int:
    (web,) = [proc["numInstances"] for proc in data["app"]["procs"] if proc["name"] == "web"]
    return int(web)


async def test_a_write_on_one_console_is_in_the_next_read_on_another(
    group: Consoles, http: httpx.AsyncClient
) -> None:
    a = await group.start("a")
    b = await group.start("b")
    await registered(http, a)
    assert await deploy(http, a) == []

    # A write that publishes no event: only the stored version tells B.
    read = await _cached_read(http, b)
    assert _releases(read) == [V1]
    published = await call(http, a, PUBLISH, y=two_proc_yaml(), v=V2)
    assert published["publishRelease"]["errors"] == []
    assert _releases(await call(http, b, READ)) == sorted([V1, V2])
    rest = await http.get(b.url + "/api/v1/repos/hello/versions/")
    assert V2 in rest.text

    # A write with events: B's answer changes before any event could have reached it.
    await wait_for(lambda: settled(http, a))
    read = await _cached_read(http, b)
    assert _web(read) == 1
    assert await scale(http, a, "web", 2) == []
    assert _web(await call(http, b, READ)) == 2
