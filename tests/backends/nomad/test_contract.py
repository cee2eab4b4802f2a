"""The same behaviour asked of the fake Nomad and of a real one, so the fake cannot drift
from Nomad unnoticed.

Covered: register with check-and-set (and how Nomad refuses), scale, resize, stop and
start, restart (one and all), stop versus purge, raw_exec on every version, the event
stream, a canary rollout and its promotion. The real half runs when NOMAD_ADDR is set
(with the other NOMAD_* variables, as the `nomad` CLI reads them), e.g. against
`nomad agent -dev`, which enables the raw_exec driver these jobs use. Otherwise it is
skipped, saying why. Only waits on observed state: against a real cluster every step
takes seconds.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from backends.errors import SchedulerConflict, SchedulerRejected
from backends.nomad import NomadScheduler, NomadSettings
from backends.nomad.client import NomadClient
from backends.nomad.jobs import render_job
from backends.types import (
    Canary,
    EventKind,
    InstanceAction,
    InstanceStatus,
    ProcJob,
    ProcState,
)
from tests.backends.nomad.helpers import (
    HEARTBEAT_TIMEOUT,
    MIB,
    EventLog,
    open_scheduler,
    wait_until,
)
from tests.fakes.nomad_server import FakeNomadServer

RUNNING = InstanceStatus.RUNNING


@dataclass(frozen=True)
class Target:
    name: str
    settings: NomadSettings
    within: float  # how long a change may take to show
    options: dict[str, Any]


@pytest.fixture(
    params=["fake", pytest.param("real", marks=pytest.mark.nomad_real)],
)
def target(request: pytest.FixtureRequest, served_nomad: FakeNomadServer) -> Target:
    if request.param == "fake":
        server = served_nomad.reset()
        server.auto_settle = 0.02  # a cluster that moves by itself, as a real one does
        options = {"timeout": 2.0, "heartbeat_timeout": HEARTBEAT_TIMEOUT}
        return Target("fake", NomadSettings(address=server.url), 10.0, options)
    if not os.environ.get("NOMAD_ADDR"):
        pytest.skip("NOMAD_ADDR is not set: no real Nomad to run the contract tests against")
    settings = NomadSettings.from_environ(os.environ)
    # Nomad sends a heartbeat every 30 s: wait longer than that before reconnecting.
    options = {"timeout": 15.0, "heartbeat_timeout": 45.0, "reconnect_backoff": (0.5, 5.0)}
    return Target("real", settings, 180.0, options)


@pytest.fixture
async def scheduler(target: Target) -> AsyncIterator[NomadScheduler]:
    async with open_scheduler(target.settings, **target.options) as opened:
        yield opened


@pytest.fixture
async def job(scheduler: NomadScheduler) -> AsyncIterator[ProcJob]:
    """A worker with a unique name that sleeps; removed afterwards whatever happened."""
    proc_job = ProcJob(
        app=f"lainct{secrets.token_hex(3)}",
        proc="sleeper",
        proc_type="worker",
        meta_version="1700000000-0123456789abcdef0123456789abcdef01234567",
        image="",
        num_instances=1,
        cpu=1,
        memory_bytes=32 * MIB,
        entrypoint=("/bin/sh",),
        cmd=("-c", "sleep 3600"),
        setup_time=1,
        driver="raw_exec",
    )
    try:
        yield proc_job
    finally:
        await scheduler.remove(proc_job.job_id)


async def _state_where(
    scheduler: NomadScheduler,
    target: Target,
    job_id: str,
    condition: Callable[[ProcState], bool],
    message: str,
) -> ProcState:
    seen: list[ProcState] = []

    async def check() -> bool:
        seen[:] = [await scheduler.state(job_id)]
        return condition(seen[0])

    await wait_until(check, within=target.within, message=message)
    return seen[0]


def _all_running(count: int) -> Callable[[ProcState], bool]:
    def check(state: ProcState) -> bool:
        return len(state.instances) == count and all(i.status is RUNNING for i in state.instances)

    return check


async def _retry_conflicts(call: Callable[[], Awaitable[None]], target: Target) -> None:
    """Nomad refuses a scale while a deployment runs; a caller retries later."""

    async def attempt() -> bool:
        try:
            await call()
        except SchedulerConflict:
            return False
        return True

    await wait_until(attempt, within=target.within, message="Nomad to accept the change")


async def test_contract_apply_runs_the_instances(
    scheduler: NomadScheduler, target: Target, job: ProcJob
) -> None:
    await scheduler.apply(job.with_count(2))
    state = await _state_where(scheduler, target, job.job_id, _all_running(2), "2 running")
    assert state.exists
    assert (state.num_instances, state.cpu, state.memory_bytes) == (2, 1, 32 * MIB)
    assert state.meta_version == job.meta_version
    assert state.spec_hash == job.spec_hash()
    assert [i.number for i in state.instances] == [1, 2]
    assert all(i.node and i.instance_id for i in state.instances)


async def test_contract_scale_up_and_down(
    scheduler: NomadScheduler, target: Target, job: ProcJob
) -> None:
    await scheduler.apply(job)
    await _state_where(scheduler, target, job.job_id, _all_running(1), "1 running")
    await _retry_conflicts(lambda: scheduler.scale(job.job_id, 3), target)
    await _state_where(scheduler, target, job.job_id, _all_running(3), "3 running")
    await _retry_conflicts(lambda: scheduler.scale(job.job_id, 1), target)
    await _state_where(scheduler, target, job.job_id, _all_running(1), "back to 1")


async def test_contract_resize_replaces_the_instances(
    scheduler: NomadScheduler, target: Target, job: ProcJob
) -> None:
    await scheduler.apply(job)
    before = await _state_where(scheduler, target, job.job_id, _all_running(1), "1 running")
    await scheduler.resize(job.job_id, cpu=2, memory_bytes=48 * MIB)
    after = await _state_where(
        scheduler,
        target,
        job.job_id,
        lambda s: (
            _all_running(1)(s) and s.instances[0].instance_id != before.instances[0].instance_id
        ),
        "a resized instance",
    )
    assert (after.cpu, after.memory_bytes) == (2, 48 * MIB)
    assert after.spec_hash == job.with_resources(cpu=2, memory_bytes=48 * MIB).spec_hash()


async def test_contract_stop_and_start_all(
    scheduler: NomadScheduler, target: Target, job: ProcJob
) -> None:
    await scheduler.apply(job.with_count(2))
    await _state_where(scheduler, target, job.job_id, _all_running(2), "2 running")
    await scheduler.control(job.job_id, InstanceAction.STOP)
    stopped = await _state_where(
        scheduler,
        target,
        job.job_id,
        lambda s: bool(s.instances) and all(i.status is InstanceStatus.EXITED for i in s.instances),
        "every instance exited",
    )
    assert stopped.num_instances == 2
    await scheduler.control(job.job_id, InstanceAction.START)
    await _state_where(scheduler, target, job.job_id, _all_running(2), "2 running again")


async def test_contract_restart_one_instance(
    scheduler: NomadScheduler, target: Target, job: ProcJob
) -> None:
    await scheduler.apply(job)
    await _state_where(scheduler, target, job.job_id, _all_running(1), "1 running")
    await scheduler.control(job.job_id, InstanceAction.RESTART, 1)
    await _state_where(
        scheduler,
        target,
        job.job_id,
        lambda s: _all_running(1)(s) and s.instances[0].restarts >= 1,
        "a restart",
    )


async def test_contract_remove(scheduler: NomadScheduler, target: Target, job: ProcJob) -> None:
    await scheduler.apply(job)
    await scheduler.remove(job.job_id)
    assert (await scheduler.state(job.job_id)).exists is False


async def test_contract_events_follow_the_job(
    scheduler: NomadScheduler, target: Target, job: ProcJob
) -> None:
    stream = scheduler.event_stream
    assert stream is not None
    await wait_until(lambda: stream.connected and stream.reconciles > 0, within=target.within)
    log = EventLog(scheduler)
    try:
        mark = log.last_cursor
        await scheduler.apply(job)
        await log.wait_for(
            lambda e: (
                e.job_id == job.job_id and e.instance is not None and e.instance.status is RUNNING
            ),
            after=mark,
            within=target.within,
        )
        await scheduler.remove(job.job_id)
        await log.wait_for(
            lambda e: e.job_id == job.job_id and e.kind is EventKind.PROC_REMOVED,
            after=mark,
            within=target.within,
        )
        cursors = [e.cursor for e in log.events]
        assert cursors == sorted(set(cursors))
    finally:
        await log.close()


async def test_contract_health(scheduler: NomadScheduler) -> None:
    health = await scheduler.health()
    assert health.ok, health.detail


async def test_contract_register_is_checked_and_set(
    scheduler: NomadScheduler, target: Target, job: ProcJob
) -> None:
    # Nomad answers a stale EnforceIndex and a job failing validation with 500
    # (command/agent/http.go): both must come out as the refusals they are.
    client = NomadClient(target.settings, timeout=float(target.options["timeout"]))
    try:
        rendered = render_job(job, namespace=target.settings.namespace)
        reply = await client.register(rendered, enforce_index=0)
        with pytest.raises(SchedulerConflict, match="Enforcing job modify index 0"):
            await client.register(rendered, enforce_index=0)
        stale = int(reply["JobModifyIndex"]) - 1
        with pytest.raises(SchedulerConflict, match="the job changed meanwhile"):
            await client.register(rendered, enforce_index=stale)
        invalid = {**rendered, "Priority": 1000}
        with pytest.raises(SchedulerRejected, match="Nomad rejected register job"):
            await client.register(invalid)
        versions = await client.job_versions(job.job_id)
        assert [v["Meta"]["lain-spec-hash"] for v in versions] == [job.spec_hash()]
    finally:
        client.close()


async def test_contract_restart_all_one_after_the_other(target: Target, job: ProcJob) -> None:
    async with open_scheduler(target.settings, restart_poll=0.1, **target.options) as scheduler:
        try:
            await scheduler.apply(job.with_count(2))
            await _state_where(scheduler, target, job.job_id, _all_running(2), "2 running")
            await scheduler.control(job.job_id, InstanceAction.RESTART)
            await _state_where(
                scheduler,
                target,
                job.job_id,
                lambda s: _all_running(2)(s) and all(i.restarts >= 1 for i in s.instances),
                "both restarted",
            )
        finally:
            await scheduler.remove(job.job_id)


async def test_contract_raw_exec_working_dir_runs_on_every_version(
    scheduler: NomadScheduler, target: Target, job: ProcJob
) -> None:
    # raw_exec has work_dir only from Nomad 1.9: the job must run on 1.6-1.8 as well.
    await scheduler.apply(dataclasses.replace(job, working_dir="/tmp"))
    state = await _state_where(scheduler, target, job.job_id, _all_running(1), "1 running")
    assert state.instances[0].last_error == ""


async def test_contract_purge_forgets_the_job_and_stop_keeps_it(
    scheduler: NomadScheduler, target: Target, job: ProcJob
) -> None:
    client = NomadClient(target.settings, timeout=float(target.options["timeout"]))
    try:
        await scheduler.apply(job)
        await client.stop(job.job_id, purge=False)
        kept = await client.read_job(job.job_id)
        assert kept is not None
        assert kept["Stop"] is True
        await client.stop(job.job_id, purge=True)
        assert await client.read_job(job.job_id) is None
    finally:
        client.close()


async def test_contract_canary_waits_for_its_promotion(
    scheduler: NomadScheduler, target: Target, job: ProcJob
) -> None:
    await scheduler.apply(job.with_count(2))
    await _state_where(scheduler, target, job.job_id, _all_running(2), "2 running")
    release = "1700000001-0123456789abcdef0123456789abcdef01234567"
    new = dataclasses.replace(
        job.with_count(2), meta_version=release, cmd=("-c", "sleep 3601"), canary=Canary(1)
    )

    await scheduler.apply(new)
    waiting = await _state_where(
        scheduler,
        target,
        job.job_id,
        lambda s: s.canary is not None and s.canary.awaiting_promotion,
        "a healthy canary awaiting its promotion",
    )
    assert waiting.canary is not None
    assert (waiting.canary.desired, waiting.canary.placed) == (1, 1)
    assert {i.release for i in waiting.instances} == {job.meta_version, release}

    await scheduler.promote(job.job_id)
    done = await _state_where(
        scheduler,
        target,
        job.job_id,
        lambda s: (
            _all_running(2)(s)
            and s.canary is None
            and {i.release for i in s.instances} == {release}
        ),
        "every instance replaced after the promotion",
    )
    assert done.spec_hash == new.spec_hash()
    with pytest.raises(SchedulerConflict, match="no rollout with canaries under way"):
        await scheduler.promote(job.job_id)
