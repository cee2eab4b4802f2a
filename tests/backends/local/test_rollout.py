"""Rolling replacement when a job's spec changes."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from backends.errors import SchedulerConflict
from backends.local import LocalScheduler
from backends.types import InstanceAction, InstanceStatus, ProcJob, ProcState, RolloutStatus
from tests.backends.local.helpers import (
    EventLog,
    all_up,
    is_alive,
    make_job,
    marked_pids,
    pid_of,
    rolled_out,
    scheduler,
    script,
    wait_for_instances,
    wait_until,
    web_job,
)

V2 = "1528900000-0123456789abcdef0123456789abcdef01234567"
# Execs fine, then dies: what a resize below what the runtime needs looks like.
DIES_SOON = "import time; time.sleep(0.3); raise SystemExit(3)"


async def test_new_release_replaces_instances_one_at_a_time_new_before_old(
    sched: LocalScheduler, marker: str, event_log: EventLog
) -> None:
    v1 = web_job(marker, num_instances=2)
    await sched.apply(v1)
    old = await wait_for_instances(sched, v1.job_id, all_up)
    v2 = replace(v1, meta_version=V2)

    await sched.apply(v2)

    assert (await sched.state(v2.job_id)).rollout is RolloutStatus.RUNNING
    state = await rolled_out(sched, v2.job_id)
    assert state.rollout is RolloutStatus.NONE
    assert state.spec_hash == v2.spec_hash() != v1.spec_hash()
    assert state.meta_version == v2.meta_version
    new = state.instances
    assert all_up(new)
    assert {i.instance_id for i in new}.isdisjoint(i.instance_id for i in old)
    assert all(f"LAIN_APP_RELEASE_VERSION={v2.meta_version}" in i.env for i in new)
    assert {i.release for i in old} == {v1.meta_version}
    assert {i.release for i in new} == {v2.meta_version}
    assert not any(is_alive(pid_of(i)) for i in old)
    await wait_until(
        lambda: event_log.instances(v2.job_id)[-1].instance_id == new[1].instance_id,
        what="the last replacement's events",
    )

    history = event_log.instances(v2.job_id)

    def first(pid: str, status: InstanceStatus, healthy: bool | None = None) -> int:
        return next(
            index
            for index, state in enumerate(history)
            if state.instance_id == pid
            and state.status is status
            and (healthy is None or state.healthy is healthy)
        )

    for slot in (0, 1):
        old_pid, new_pid = old[slot].instance_id, new[slot].instance_id
        assert first(new_pid, InstanceStatus.RUNNING, True) < first(old_pid, InstanceStatus.EXITED)
    # One at a time: instance 2's replacement starts only once instance 1's old one is gone.
    second_new_started = next(
        index for index, state in enumerate(history) if state.instance_id == new[1].instance_id
    )
    assert first(old[0].instance_id, InstanceStatus.EXITED) < second_new_started
    # Each slot's latest event describes the process that now runs there.
    for slot in (0, 1):
        latest = [s for s in history if s.number == slot + 1][-1]
        assert latest.instance_id == new[slot].instance_id
        assert latest.status is InstanceStatus.RUNNING


async def _stopped_rollout(data_dir: Path, v1: ProcJob, new: ProcJob, **options: Any) -> ProcState:
    """Roll `v1`'s instances to `new`, which is never ready: the rollout stops with the old
    instances untouched and still running. Returns the state then."""
    async with scheduler(data_dir, **options) as sched:
        await sched.apply(v1)
        old = await wait_for_instances(sched, v1.job_id, all_up)

        await sched.apply(new)

        state = await rolled_out(sched, v1.job_id)
        assert state.rollout is RolloutStatus.STOPPED
        assert [i.instance_id for i in state.instances] == [i.instance_id for i in old]
        assert all(is_alive(pid_of(i)) for i in old)
        assert all(i.status is InstanceStatus.RUNNING for i in state.instances)
        assert state.spec_hash == new.spec_hash()  # desired; applying again retries
        return state


async def test_rolling_update_stops_when_new_instance_never_gets_healthy(
    data_dir: Path, marker: str, caplog: pytest.LogCaptureFixture
) -> None:
    v1 = web_job(marker, num_instances=2)
    broken = replace(v1, healthcheck="/missing")  # answers 404
    with caplog.at_level(logging.WARNING, logger="backends.local.scheduler"):
        state = await _stopped_rollout(data_dir, v1, broken, rollout_timeout=1.0)
    assert "rolling update stopped at instance 1" in state.last_error
    assert "GET /missing: HTTP 404" in state.last_error
    # The operator's log says it once, on one line, naming the job.
    [record] = [
        r
        for r in caplog.records
        if r.name == "backends.local.scheduler" and "rolling update" in r.getMessage()
    ]
    assert record.getMessage() == f"{v1.job_id}: {state.last_error}"


async def test_apply_answers_before_the_rollout_and_keeps_old_instances_meanwhile(
    data_dir: Path, marker: str
) -> None:
    v1 = web_job(marker, num_instances=2)
    async with scheduler(data_dir, min_healthy_time=1.0) as sched:
        await sched.apply(v1)
        old = await wait_for_instances(sched, v1.job_id, all_up)

        await sched.apply(replace(v1, meta_version=V2))

        state = await sched.state(v1.job_id)
        assert state.rollout is RolloutStatus.RUNNING
        assert state.meta_version == V2
        # Nothing replaced yet: a new instance must first stay up for a second.
        assert [i.instance_id for i in state.instances] == [i.instance_id for i in old]
        assert {i.release for i in state.instances} == {v1.meta_version}
        assert all(is_alive(pid_of(i)) for i in old)
        state = await rolled_out(sched, v1.job_id)
        assert {i.release for i in state.instances} == {V2}


async def test_new_instance_that_execs_then_dies_does_not_replace_a_healthy_one(
    data_dir: Path, marker: str
) -> None:
    """No health check, setup_time 0: a successful exec is not readiness."""
    v1 = make_job(marker, num_instances=2)
    dies = replace(v1, cmd=script(DIES_SOON), meta_version=V2)
    state = await _stopped_rollout(data_dir, v1, dies, min_healthy_time=1.0)
    assert "rolling update stopped at instance 1: the new one did not stay up" in (state.last_error)
    assert "code 3" in state.last_error


async def test_operations_during_a_rollout_are_refused_and_remove_cancels_it(
    data_dir: Path, marker: str
) -> None:
    v1 = web_job(marker)
    never_ready = replace(v1, healthcheck="/missing")
    async with scheduler(data_dir, rollout_timeout=30.0) as sched:
        await sched.apply(v1)
        await wait_for_instances(sched, v1.job_id, all_up)
        await sched.apply(never_ready)
        await sched.apply(never_ready)  # the same job again: already on its way, no error

        with pytest.raises(SchedulerConflict, match="rolling out"):
            await sched.scale(v1.job_id, 2)
        with pytest.raises(SchedulerConflict):
            await sched.resize(v1.job_id, cpu=1, memory_bytes=v1.memory_bytes)
        with pytest.raises(SchedulerConflict):
            await sched.apply(v1)
        with pytest.raises(SchedulerConflict):
            await sched.control(v1.job_id, InstanceAction.RESTART)

        loop = asyncio.get_running_loop()
        started = loop.time()
        await sched.remove(v1.job_id)
        assert loop.time() - started < 10  # not the 30 s the rollout would still wait
        assert not (await sched.state(v1.job_id)).exists
        assert marked_pids(marker) == []


async def test_restart_of_all_instances_rolls_in_the_background(
    data_dir: Path, marker: str
) -> None:
    job = web_job(marker, num_instances=2)
    async with scheduler(data_dir, min_healthy_time=0.5) as sched:
        await sched.apply(job)
        old = await wait_for_instances(sched, job.job_id, all_up)

        await sched.control(job.job_id, InstanceAction.RESTART)

        assert (await sched.state(job.job_id)).rollout is RolloutStatus.RUNNING
        state = await rolled_out(sched, job.job_id)
        assert state.rollout is RolloutStatus.NONE
        await wait_for_instances(sched, job.job_id, all_up)
        state = await sched.state(job.job_id)
        new_pids = {i.instance_id for i in state.instances}
        assert new_pids.isdisjoint(i.instance_id for i in old)
        assert [i.restarts for i in state.instances] == [1, 1]


async def test_leaving_during_a_rollout_leaves_no_incoming_process_and_the_next_resumes(
    data_dir: Path, marker: str
) -> None:
    v1 = web_job(marker, num_instances=2)
    v2 = replace(v1, meta_version=V2)
    async with scheduler(data_dir, stop_on_exit=False, min_healthy_time=30.0) as first:
        await first.apply(v1)
        old = await wait_for_instances(first, v1.job_id, all_up)
        await first.apply(v2)
        # The incoming instance runs beside the old ones while it proves itself.
        await wait_until(lambda: len(marked_pids(marker)) == 3, what="the incoming process")
    # The rollout task ended with the scheduler: its incoming process is gone, the old
    # instances were left running for the next console.
    assert sorted(marked_pids(marker)) == sorted(pid_of(i) for i in old)

    async with scheduler(data_dir, min_healthy_time=0.3) as second:
        state = await rolled_out(second, v1.job_id)
        assert state.rollout is RolloutStatus.NONE
        assert {i.release for i in state.instances} == {V2}
        assert not any(is_alive(pid_of(i)) for i in old)
