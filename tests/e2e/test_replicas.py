"""Several real consoles on one PostgreSQL database, driving one (fake) Nomad, behave as one.

Runs where LAIN_CONSOLE_TEST_DATABASE_URL is a PostgreSQL URL (CI); each test gets a
database of its own on that server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.replicas import (
    LEADS,
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
from tests.live import subscribe

pytestmark = needs_postgresql

TAKEOVER_SECONDS = 4
RECONCILE_SECONDS = 3

EVENTS = """subscription($after: String) {
  appEvents(name: "hello", after: $after) {
    cursor kind app { name status } proc { name numInstances } instance { number status }
  }
}"""


@pytest.fixture
def group(tmp_path: Path, database: str, nomad: FakeNomadServer) -> Iterator[Consoles]:
    with nomad_consoles(
        tmp_path / "consoles",
        database,
        nomad,
        LEADER_TAKEOVER_SECONDS=str(TAKEOVER_SECONDS),
        RECONCILE_INTERVAL=str(RECONCILE_SECONDS),
    ) as started:
        yield started


async def status(http: httpx.AsyncClient, console: Console) -> str:
    data = await call(http, console, '{ app(name: "hello") { status } }')
    return str(data["app"]["status"])


async def events(console: Console, after: str, count: int) -> list[dict[str, Any]]:
    async with subscribe(console.url, EVENTS, {"after": after}) as sub:
        return [(await sub.next_event())["appEvents"] for _ in range(count)]


async def test_a_change_made_on_one_console_reaches_subscribers_on_the_others(
    group: Consoles, http: httpx.AsyncClient
) -> None:
    a, b = await group.start("a"), await group.start("b")
    await registered(http, a)
    async with subscribe(b.url, EVENTS, {"after": "0"}) as on_b:
        started = time.monotonic()
        assert await deploy(http, a) == []
        seen_on_b = [(await on_b.next_event())["appEvents"]]
        took = time.monotonic() - started
        while seen_on_b[-1]["app"]["status"] != "DEPLOYED":
            seen_on_b.append((await on_b.next_event())["appEvents"])
    assert seen_on_b[0]["kind"] == "APP"
    assert seen_on_b[0]["app"]["status"] == "DEPLOYING"
    # Nomad's own events for the jobs arrive as they come, before or after the status.
    assert any(e["kind"] in ("PROC", "INSTANCE") for e in seen_on_b), seen_on_b
    assert took < 5  # woken by NOTIFY, not found by the fallback poll much later
    # The same cursors and snapshots on the console that made the change.
    assert await events(a, "0", len(seen_on_b)) == seen_on_b


async def test_overlapping_operations_on_two_consoles_conflict(
    group: Consoles, http: httpx.AsyncClient, nomad: FakeNomadServer
) -> None:
    a, b = await group.start("a"), await group.start("b")
    await registered(http, a)
    assert await deploy(http, a) == []
    await wait_for(lambda: _is(status(http, b), "DEPLOYED"))
    await wait_for(lambda: settled(http, a))
    await wait_for(lambda: settled(http, b))
    nomad.faults.hang_writes = True  # a's scale stays in flight at Nomad
    writes = _writes(nomad)
    on_a = asyncio.create_task(scale(http, a, "web", 2))
    try:
        await wait_for(lambda: _in_flight(nomad, writes + 1, on_a))
        same_proc = await scale(http, b, "web", 3)
        assert [e["code"] for e in same_proc] == ["CONFLICT"]
        assert "busy with an operation on another console" in same_proc[0]["message"]
        whole_app = await call(
            http, b, 'mutation { undeployApp(input: {name: "hello"}) { errors { code } } }'
        )
        assert whole_app["undeployApp"]["errors"] == [{"code": "CONFLICT"}]
        other_proc = asyncio.create_task(scale(http, b, "jobs", 1))  # not in the way
        await wait_for(lambda: _in_flight(nomad, writes + 2, other_proc))
    finally:
        nomad.faults.hang_writes = False
    # The hung writes end in a timeout at Nomad: neither is a conflict.
    assert all(e["code"] != "CONFLICT" for e in await on_a)
    assert all(e["code"] != "CONFLICT" for e in await other_proc)
    # Once a's operation is over, b may scale the proc.
    assert await scale(http, b, "web", 3) == []


async def test_another_console_leads_and_finishes_a_deploy_when_the_leader_is_killed(
    group: Consoles, http: httpx.AsyncClient, nomad: FakeNomadServer
) -> None:
    started = [await group.start(name) for name in ("a", "b", "c")]
    leaders = [c for c in started if c.leads()]
    assert len(leaders) == 1, [c.output for c in started]
    leader = leaders[0]
    others = [c for c in started if c is not leader]
    await registered(http, leader)
    nomad.faults.hang_writes = True  # the deploy is under way when its console dies
    deploying = asyncio.create_task(deploy(http, leader))
    await wait_for(lambda: _is(status(http, others[0]), "DEPLOYING"))
    leader.kill()
    deploying.cancel()
    killed_at = time.monotonic()
    nomad.faults.hang_writes = False
    took_over = await wait_for(
        lambda: _one_leads(others), seconds=TAKEOVER_SECONDS + 10, every=0.05
    )
    assert took_over <= TAKEOVER_SECONDS + 1, took_over
    await wait_for(lambda: _is(status(http, others[1]), "DEPLOYED"), seconds=30)
    finished = time.monotonic() - killed_at
    assert finished <= TAKEOVER_SECONDS + RECONCILE_SECONDS + 5, finished
    assert sorted(job_id for _, job_id in nomad.fake.jobs) == ["hello.web.web", "hello.worker.jobs"]
    assert sum(c.output.count(LEADS) for c in others) == 1


async def test_no_event_is_lost_or_repeated_when_every_console_restarts(
    group: Consoles, http: httpx.AsyncClient
) -> None:
    a, b = await group.start("a"), await group.start("b")
    await registered(http, a)
    assert await deploy(http, b) == []
    await wait_for(lambda: _is(status(http, a), "DEPLOYED"))
    before = await events(a, "0", 4)
    a.stop()
    b.stop()
    a, b = await group.start("a"), await group.start("b")
    async with subscribe(b.url, EVENTS, {"after": "0"}) as on_b:
        # Everything since the start, then what happens after the restart.
        everything = [(await on_b.next_event())["appEvents"] for _ in range(4)]
        assert everything == before
        await wait_for(lambda: settled(http, a))
        assert await scale(http, a, "web", 2) == []
        while (everything[-1]["proc"] or {}).get("numInstances") != 2:
            everything.append((await on_b.next_event())["appEvents"])
    # Resuming in the middle gives exactly what followed, in order, on either console.
    middle = before[1]["cursor"]
    assert await events(a, middle, len(everything) - 2) == everything[2:]
    cursors = [int(e["cursor"]) for e in everything]
    assert cursors == sorted(set(cursors))


async def test_a_retry_sent_to_another_console_gets_the_first_answer(
    group: Consoles, http: httpx.AsyncClient
) -> None:
    a, b = await group.start("a"), await group.start("b")
    register = (
        'mutation { registerRepo(input: {name: "hello", idempotencyKey: "k-1"}) '
        "{ repo { name createdAt } errors { code } } }"
    )
    first = await call(http, a, register)
    retried = await call(http, b, register)
    assert first["registerRepo"]["errors"] == []
    assert retried == first  # not "already exists": the operation ran once
    again = await call(
        http, b, 'mutation { registerRepo(input: {name: "hello"}) { errors { code } } }'
    )
    assert again["registerRepo"]["errors"] == [{"code": "CONFLICT"}]


async def test_a_second_console_with_the_local_backend_is_refused(
    group: Consoles, tmp_path: Path
) -> None:
    await group.start("a", LAIN_CONSOLE_BACKEND="local")
    with pytest.raises(RuntimeError, match="exited") as refused:
        await group.start("b", LAIN_CONSOLE_BACKEND="local")
    assert "allows one console only" in str(refused.value)
    assert "Traceback" not in str(refused.value)


async def _is(value: Any, expected: str) -> bool:
    return bool(await value == expected)


def _writes(nomad: FakeNomadServer) -> int:
    return sum(1 for seen in list(nomad.seen) if seen.method in ("PUT", "POST", "DELETE"))


async def _in_flight(nomad: FakeNomadServer, writes: int, mutation: asyncio.Task[Any]) -> bool:
    """Whether Nomad has received `writes` writes; fails if the mutation ended first."""
    if mutation.done():
        raise AssertionError(f"the mutation ended before reaching Nomad: {mutation.result()}")
    return _writes(nomad) >= writes


async def _one_leads(candidates: list[Console]) -> bool:
    return any(c.leads() for c in candidates)
