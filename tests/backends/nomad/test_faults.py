"""Every fault switch of the fake against every kind of operation: the caller gets a
SchedulerUnavailable that names Nomad and the failure (never a python-nomad, requests or
httpx exception), Nomad's job is left as it was, and the same call succeeds once the
fault is gone."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from backends.errors import SchedulerConflict, SchedulerUnavailable
from backends.nomad import NomadScheduler, NomadSettings
from backends.types import InstanceAction, InstanceStatus
from tests.backends.nomad.helpers import MIB, make_job
from tests.fakes.nomad import FakeNomad
from tests.fakes.nomad_server import FakeNomadServer

JOB_ID = "hello.web.web"
FAULT_TIMEOUT = 0.3


@dataclass(frozen=True)
class Operation:
    name: str
    call: Callable[[NomadScheduler], Awaitable[object]]
    done: Callable[[FakeNomad], bool]  # the effect, checked after the retry


def _spec(fake: FakeNomad) -> dict[str, Any] | None:
    job = fake.jobs.get(("default", JOB_ID))
    return copy.deepcopy(job.spec) if job else None


def _task(fake: FakeNomad) -> dict[str, Any]:
    return fake.job("default", JOB_ID).spec["TaskGroups"][0]["Tasks"][0]


def _restarts(fake: FakeNomad) -> list[int]:
    return [
        state["Restarts"]
        for alloc in fake.allocations_of(JOB_ID)
        for state in (alloc["TaskStates"] or {}).values()
    ]


NEW_IMAGE = "registry.lain.local/hello:release-2"
OPERATIONS = [
    Operation(
        "apply",
        lambda s: s.apply(make_job(image=NEW_IMAGE)),
        lambda f: _task(f)["Config"]["image"] == NEW_IMAGE,
    ),
    Operation(
        "scale",
        lambda s: s.scale(JOB_ID, 3),
        lambda f: f.job("default", JOB_ID).spec["TaskGroups"][0]["Count"] == 3,
    ),
    Operation(
        "resize",
        lambda s: s.resize(JOB_ID, cpu=4, memory_bytes=128 * MIB),
        lambda f: _task(f)["Resources"] == {"CPU": 1000, "MemoryMB": 128},
    ),
    Operation("remove", lambda s: s.remove(JOB_ID), lambda f: ("default", JOB_ID) not in f.jobs),
    Operation(
        "stop",
        lambda s: s.control(JOB_ID, InstanceAction.STOP),
        lambda f: f.job("default", JOB_ID).stopped,
    ),
    Operation(
        "restart",
        lambda s: s.control(JOB_ID, InstanceAction.RESTART, 1),
        lambda f: sorted(_restarts(f)) == [0, 1],
    ),
    Operation("state", lambda s: s.state(JOB_ID), lambda f: True),
    Operation("states", lambda s: s.states([JOB_ID, "other.web.web"]), lambda f: True),
]


@pytest.fixture
async def deployed(settings: NomadSettings, fake: FakeNomad) -> NomadScheduler:
    """A job running on the fake, and a scheduler with a short timeout. It is not
    entered, so no event stream adds its own requests to the fault."""
    scheduler = NomadScheduler(settings, timeout=FAULT_TIMEOUT)
    await scheduler.apply(make_job())
    fake.settle()
    return scheduler


def _switch_on(server: FakeNomadServer, fault: str) -> str:
    """Turn a fault on; the words the error must contain."""
    if fault == "http_500":
        server.faults.http_500 = True
        return f"Nomad at {server.url} answered 500 to "
    if fault == "hang":
        server.faults.hang = True
        return f"did not answer .* within {FAULT_TIMEOUT:g}s"
    server.faults.refuse_connections()
    return rf"Nomad at {server.url} is unreachable \(.*\): \[Errno 111\] Connection refused"


def _switch_off(server: FakeNomadServer, fault: str) -> None:
    server.faults.http_500 = server.faults.hang = False
    if fault == "refused":
        server.faults.accept_connections()


@pytest.mark.parametrize("fault", ["http_500", "hang", "refused"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.name for op in OPERATIONS])
async def test_fault_is_unavailable_keeps_the_job_and_the_retry_works(
    deployed: NomadScheduler,
    fake: FakeNomad,
    nomad_server: FakeNomadServer,
    operation: Operation,
    fault: str,
) -> None:
    before = _spec(fake)
    expected = _switch_on(nomad_server, fault)
    with pytest.raises(SchedulerUnavailable, match=expected) as caught:
        await operation.call(deployed)
    assert type(caught.value) is SchedulerUnavailable
    assert caught.value.__cause__ is not None
    assert _spec(fake) == before

    _switch_off(nomad_server, fault)
    await operation.call(deployed)
    assert operation.done(fake)


@pytest.mark.parametrize("passing", [0, 1], ids=["read-fails", "write-fails"])
async def test_resize_failing_between_its_read_and_its_write_changes_nothing(
    deployed: NomadScheduler, fake: FakeNomad, nomad_server: FakeNomadServer, passing: int
) -> None:
    before = _spec(fake)
    nomad_server.faults.fail_next(1, after=passing)
    with pytest.raises(SchedulerUnavailable, match="answered 500"):
        await deployed.resize(JOB_ID, cpu=2, memory_bytes=64 * MIB)
    assert _spec(fake) == before
    await deployed.resize(JOB_ID, cpu=2, memory_bytes=64 * MIB)
    assert _task(fake)["Resources"]["CPU"] == 500


async def test_transient_server_error_then_the_retry_works(
    deployed: NomadScheduler, fake: FakeNomad, nomad_server: FakeNomadServer
) -> None:
    nomad_server.faults.fail_next(1)
    with pytest.raises(SchedulerUnavailable):
        await deployed.scale(JOB_ID, 4)
    await deployed.scale(JOB_ID, 4)
    assert fake.job("default", JOB_ID).spec["TaskGroups"][0]["Count"] == 4


async def test_deployment_running_switch_makes_scale_a_conflict(
    deployed: NomadScheduler, fake: FakeNomad, nomad_server: FakeNomadServer
) -> None:
    nomad_server.faults.deployment_running = True
    with pytest.raises(SchedulerConflict, match="job scaling blocked due to active deployment"):
        await deployed.scale(JOB_ID, 4)
    assert fake.job("default", JOB_ID).spec["TaskGroups"][0]["Count"] == 2
    nomad_server.faults.deployment_running = False
    await deployed.scale(JOB_ID, 4)


async def test_crash_switch_fails_instances_with_the_exit_code(
    deployed: NomadScheduler, fake: FakeNomad, nomad_server: FakeNomadServer
) -> None:
    job = make_job(proc="foo", proc_type="worker", num_instances=1, image="broken:1")
    nomad_server.faults.crash_image("broken:1")
    await deployed.apply(job)
    fake.settle()
    [instance] = (await deployed.state(job.job_id)).instances
    assert instance.status is InstanceStatus.FAILED
    assert (instance.exit_code, instance.restarts) == (1, 3)


async def test_health_under_every_fault_is_not_ok_and_names_it(
    deployed: NomadScheduler, nomad_server: FakeNomadServer
) -> None:
    for fault in ("http_500", "hang", "refused"):
        _switch_on(nomad_server, fault)
        health = await deployed.health()
        assert not health.ok
        assert health.detail.startswith(f"Nomad at {nomad_server.url}")
        _switch_off(nomad_server, fault)
    assert (await deployed.health()).ok
