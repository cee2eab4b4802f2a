"""One Scheduler contract, run against every implementation the console drives or tests with.

The resolvers rely on `backends.base.Scheduler` and nothing else, so the local backend (real
processes), the Nomad backend (over HTTP to the fake Nomad, tests/fakes/nomad_server.py)
and the in-memory scheduler of the resolver tests and the benchmarks
(tests/fakes/scheduler.py) must answer these the same way, or a test that passes on the
fake says nothing about a real backend. Each backend's own folder tests what is particular
to it (rollouts, restarts with kill timeouts, Nomad's status codes).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.base import Scheduler
from backends.errors import JobNotFound, SchedulerConflict, SchedulerRejected
from backends.types import (
    Canary,
    EventKind,
    InstanceAction,
    InstanceState,
    InstanceStatus,
    ProcJob,
    ProcState,
    RolloutStatus,
    SchedulerEvent,
)
from tests.backends.local import helpers as local
from tests.backends.nomad import helpers as nomad
from tests.fakes.nomad_server import FakeNomadServer
from tests.fakes.scheduler import FakeScheduler
from tests.processes import kill_processes_in

WITHIN = 20.0  # seconds: real processes start in well under one; CI machines are busy


@dataclass
class Backend:
    scheduler: Scheduler
    make_job: Callable[..., ProcJob]  # keyword changes -> a worker job this backend can run
    # Nomad runs a job's count and nothing less: it refuses to keep one instance stopped
    # (SchedulerRejected, saying to scale down instead); the others can.
    stops_one_instance: bool = True


@contextlib.asynccontextmanager
async def _local(tmp_path: Path) -> AsyncIterator[Backend]:
    marker = uuid.uuid4().hex
    data_dir = tmp_path / "data"
    try:
        async with local.scheduler(data_dir) as opened:
            yield Backend(opened, lambda **changes: local.make_job(marker, **changes))
    finally:
        kill_processes_in(data_dir)
        for pid in local.marked_pids(marker):
            local.kill_and_reap(pid)


@contextlib.asynccontextmanager
async def _nomad(served: FakeNomadServer) -> AsyncIterator[Backend]:
    from backends.nomad import NomadSettings

    served.reset().auto_settle = 0.05  # the cluster steps on a timer, as a real one moves
    async with nomad.open_scheduler(NomadSettings(address=served.url)) as opened:
        stream = opened.event_stream
        assert stream is not None
        await nomad.wait_until(
            lambda: stream.connected and stream.reconciles > 0,
            message="the event stream to connect",
        )

        def make_job(**changes: object) -> ProcJob:
            return nomad.make_job(**{"proc": "worker", "proc_type": "worker", **changes})

        yield Backend(opened, make_job, stops_one_instance=False)


@contextlib.asynccontextmanager
async def _memory() -> AsyncIterator[Backend]:
    async with FakeScheduler() as opened:

        def make_job(**changes: object) -> ProcJob:
            return nomad.make_job(**{"proc": "worker", "proc_type": "worker", **changes})

        yield Backend(opened, make_job)


@pytest.fixture(params=["local", "nomad", "memory"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, served_nomad: FakeNomadServer
) -> AsyncIterator[Backend]:
    opened = {
        "local": lambda: _local(tmp_path),
        "nomad": lambda: _nomad(served_nomad),
        "memory": _memory,
    }[request.param]()
    async with opened as ready:
        yield ready


async def _until(
    read: Callable[[], Awaitable[ProcState]], holds: Callable[[ProcState], bool], what: str
) -> ProcState:
    """Poll `read` until `holds`; the timeout's traceback names `what` in the call."""
    async with asyncio.timeout(WITHIN):
        while True:
            if holds(state := await read()):
                return state
            await asyncio.sleep(0.02)


def _running(count: int) -> Callable[[ProcState], bool]:
    def holds(state: ProcState) -> bool:
        numbers = [i.number for i in state.instances if i.status is InstanceStatus.RUNNING]
        settled = state.rollout is not RolloutStatus.RUNNING  # changes may wait for it
        return state.exists and settled and sorted(numbers) == list(range(1, count + 1))

    return holds


def _instance(state: ProcState, number: int) -> InstanceState:
    return next(i for i in state.instances if i.number == number)


async def test_an_unknown_job_reads_missing_removes_quietly_and_has_no_output(
    backend: Backend,
) -> None:
    job_id = "ghost.worker.worker"
    scheduler = backend.scheduler

    assert (await scheduler.state(job_id)).exists is False
    states = await scheduler.states([job_id])
    assert list(states) == [job_id]
    assert states[job_id].exists is False
    await scheduler.remove(job_id)  # no error
    assert await scheduler.log_tail(job_id) == []
    assert (await scheduler.health()).ok


async def test_changing_an_unknown_job_raises_job_not_found(backend: Backend) -> None:
    with pytest.raises(JobNotFound):
        await backend.scheduler.scale("ghost.worker.worker", 2)
    with pytest.raises(JobNotFound):
        await backend.scheduler.control("ghost.worker.worker", InstanceAction.RESTART)
    with pytest.raises(JobNotFound):
        await backend.scheduler.promote("ghost.worker.worker")


async def test_promote_without_canaries_waiting_is_refused_saying_why(backend: Backend) -> None:
    scheduler = backend.scheduler
    job = backend.make_job(num_instances=1)
    await scheduler.apply(job)
    await _until(lambda: scheduler.state(job.job_id), _running(1), "one running")

    # Nothing waits for a promotion: a conflict where canaries exist, else a refusal.
    refusal = SchedulerConflict if scheduler.canary_deploys else SchedulerRejected
    with pytest.raises(refusal, match="nothing to promote"):
        await scheduler.promote(job.job_id)
    if not scheduler.canary_deploys:
        # Never dropped silently: a job asking for canaries is refused.
        with pytest.raises(SchedulerRejected, match="canar"):
            await scheduler.apply(dataclasses.replace(job, canary=Canary(1)))


async def test_apply_runs_the_count_numbered_from_one_and_scale_changes_exactly_it(
    backend: Backend,
) -> None:
    scheduler = backend.scheduler
    job = backend.make_job(num_instances=2)

    await scheduler.apply(job)
    state = await _until(lambda: scheduler.state(job.job_id), _running(2), "two running")
    assert (state.num_instances, state.meta_version) == (2, job.meta_version)
    assert state.spec_hash == job.spec_hash()
    first = _instance(state, 1).instance_id

    await scheduler.scale(job.job_id, 3)
    state = await _until(lambda: scheduler.state(job.job_id), _running(3), "three running")
    assert _instance(state, 1).instance_id == first  # scaling up leaves the others alone

    await scheduler.scale(job.job_id, 1)
    state = await _until(lambda: scheduler.state(job.job_id), _running(1), "one running")
    assert state.num_instances == 1
    assert _instance(state, 1).instance_id == first  # scaling down stops the highest numbers
    batched = await scheduler.states([job.job_id, "ghost.worker.worker"])
    assert batched[job.job_id].num_instances == 1
    assert batched["ghost.worker.worker"].exists is False


async def test_apply_again_with_the_same_job_changes_nothing(backend: Backend) -> None:
    scheduler = backend.scheduler
    job = backend.make_job(num_instances=1)
    await scheduler.apply(job)
    state = await _until(lambda: scheduler.state(job.job_id), _running(1), "one running")
    first = _instance(state, 1).instance_id

    await scheduler.apply(job)  # idempotent: nothing is replaced

    state = await scheduler.state(job.job_id)
    assert _instance(state, 1).instance_id == first
    assert _instance(state, 1).status is InstanceStatus.RUNNING


async def test_stop_and_start_every_instance(backend: Backend) -> None:
    scheduler = backend.scheduler
    job = backend.make_job(num_instances=2)
    await scheduler.apply(job)
    await _until(lambda: scheduler.state(job.job_id), _running(2), "two running")

    await scheduler.control(job.job_id, InstanceAction.STOP)
    state = await _until(
        lambda: scheduler.state(job.job_id),
        lambda s: not any(i.status is InstanceStatus.RUNNING for i in s.instances),
        "every instance stopped",
    )
    assert state.exists  # a stop is not a removal

    await scheduler.control(job.job_id, InstanceAction.START)
    await _until(lambda: scheduler.state(job.job_id), _running(2), "two running again")


async def test_stop_one_instance_stops_only_it_or_is_refused(backend: Backend) -> None:
    scheduler = backend.scheduler
    job = backend.make_job(num_instances=2)
    await scheduler.apply(job)
    await _until(lambda: scheduler.state(job.job_id), _running(2), "two running")

    if not backend.stops_one_instance:
        with pytest.raises(SchedulerRejected, match="scale it down instead"):
            await scheduler.control(job.job_id, InstanceAction.STOP, 2)
        assert _running(2)(await scheduler.state(job.job_id))
        return
    await scheduler.control(job.job_id, InstanceAction.STOP, 2)
    state = await _until(
        lambda: scheduler.state(job.job_id),
        lambda s: _instance(s, 2).status is not InstanceStatus.RUNNING,
        "instance 2 stopped",
    )
    assert _instance(state, 1).status is InstanceStatus.RUNNING
    assert state.num_instances == 2  # a stop is not a scale
    await scheduler.control(job.job_id, InstanceAction.START, 2)
    await _until(lambda: scheduler.state(job.job_id), _running(2), "two running again")


async def test_events_follow_the_jobs_changes_in_cursor_order_and_resume_after_a_cursor(
    backend: Backend,
) -> None:
    scheduler = backend.scheduler
    job = backend.make_job(num_instances=1)
    seen: list[SchedulerEvent] = []
    arrived = asyncio.Event()

    async def follow(after: int | None) -> None:
        async for event in scheduler.events(after):
            if event.job_id == job.job_id:
                seen.append(event)
                arrived.set()

    async def wait_for(holds: Callable[[list[SchedulerEvent]], bool]) -> None:
        async with asyncio.timeout(WITHIN):
            while not holds(seen):
                arrived.clear()
                await arrived.wait()

    def running(events: list[SchedulerEvent]) -> bool:
        return any(_shows_running(e, 1) for e in events)

    # From the start of the history kept: `None` means "what comes after the moment the
    # iteration starts", which a task created just before the change may reach too late.
    follower = asyncio.create_task(follow(0))
    try:
        await scheduler.apply(job)
        await wait_for(running)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    cursors = [e.cursor for e in seen]
    assert cursors == sorted(set(cursors))  # strictly increasing
    resume_after = cursors[-1]

    seen.clear()
    follower = asyncio.create_task(follow(resume_after))
    try:
        await scheduler.remove(job.job_id)
        await wait_for(lambda events: any(e.kind is EventKind.PROC_REMOVED for e in events))
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    assert all(e.cursor > resume_after for e in seen)  # nothing from before the cursor
    assert (await scheduler.state(job.job_id)).exists is False


def _shows_running(event: SchedulerEvent, number: int) -> bool:
    if event.instance is not None:
        return event.instance.number == number and event.instance.status is InstanceStatus.RUNNING
    if event.proc is not None:
        return any(
            i.number == number and i.status is InstanceStatus.RUNNING for i in event.proc.instances
        )
    return False


async def test_restart_one_instance_leaves_the_others_running(backend: Backend) -> None:
    scheduler = backend.scheduler
    job = backend.make_job(num_instances=2)
    await scheduler.apply(job)
    before = await _until(lambda: scheduler.state(job.job_id), _running(2), "two running")

    await scheduler.control(job.job_id, InstanceAction.RESTART, 1)

    def restarted(state: ProcState) -> bool:
        old, new = _instance(before, 1), _instance(state, 1)
        again = new.restarts > old.restarts or new.instance_id != old.instance_id
        return again and _running(2)(state)

    state = await _until(lambda: scheduler.state(job.job_id), restarted, "instance 1 restarted")
    assert _instance(state, 2) == _instance(before, 2)  # untouched


async def test_state_version_moves_with_every_change_the_state_shows(backend: Backend) -> None:
    """Read caches key on `state_version`: two reads at one version must show one state.

    Sampled along a job's start, a restart, a scale up and down, and its removal: when the
    version is the same before and after a `state` read, the read is filed under it, and
    every read filed under one version must be the same state. None (the scheduler cannot
    vouch) files nothing."""
    scheduler = backend.scheduler
    job = backend.make_job(num_instances=1)
    seen: dict[int, set[ProcState]] = {}
    filed = {"missing": asyncio.Event(), "running": asyncio.Event()}

    async def sample() -> None:
        while True:
            before = scheduler.state_version
            state = await scheduler.state(job.job_id)
            if before is not None and scheduler.state_version == before:
                seen.setdefault(before, set()).add(state)
                filed["running" if _running(1)(state) else "missing"].set()
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    try:
        async with asyncio.timeout(WITHIN):
            await filed["missing"].wait()
            await scheduler.apply(job)
            await filed["running"].wait()
        await scheduler.control(job.job_id, InstanceAction.RESTART, 1)
        await _until(
            lambda: scheduler.state(job.job_id),
            lambda s: _running(1)(s) and _instance(s, 1).restarts >= 1,
            "restarted",
        )
        for count in (2, 1):
            await scheduler.scale(job.job_id, count)
            await _until(lambda: scheduler.state(job.job_id), _running(count), f"{count} running")
        await scheduler.remove(job.job_id)
        await _until(lambda: scheduler.state(job.job_id), lambda s: not s.exists, "removed")
        await asyncio.sleep(0.05)  # a few samples of the final state, after the last event
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    changed = {version: _differences(states) for version, states in seen.items() if len(states) > 1}
    assert changed == {}, "the state changed while the version stayed the same"
    assert len(seen) >= 2, "the samples saw the version move"  # running, then removed


def _differences(states: set[ProcState]) -> dict[str, list[object]]:
    """The fields in which `states` differ (instances field by field), with their values."""
    found: dict[str, list[object]] = {}
    for name in ProcState.__dataclass_fields__:
        values = {repr(getattr(state, name)) for state in states}
        if len(values) > 1:
            found[name] = sorted(values)
    return found
