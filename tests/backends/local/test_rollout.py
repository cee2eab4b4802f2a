"""Rolling replacement when a job's spec changes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from backends.local import LocalScheduler
from backends.types import InstanceStatus
from tests.backends.local.helpers import (
    EventLog,
    all_up,
    is_alive,
    pid_of,
    scheduler,
    wait_for_instances,
    wait_until,
    web_job,
)


async def test_new_release_replaces_instances_one_at_a_time_new_before_old(
    sched: LocalScheduler, marker: str, event_log: EventLog
) -> None:
    v1 = web_job(marker, num_instances=2)
    await sched.apply(v1)
    old = await wait_for_instances(sched, v1.job_id, all_up)
    v2 = replace(v1, meta_version="1528900000-0123456789abcdef0123456789abcdef01234567")

    await sched.apply(v2)

    state = await sched.state(v2.job_id)
    assert state.spec_hash == v2.spec_hash() != v1.spec_hash()
    assert state.meta_version == v2.meta_version
    new = state.instances
    assert all_up(new)
    assert {i.instance_id for i in new}.isdisjoint(i.instance_id for i in old)
    assert all(f"LAIN_APP_RELEASE_VERSION={v2.meta_version}" in i.env for i in new)
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


async def test_rolling_update_stops_when_new_instance_never_gets_healthy(
    data_dir: Path, marker: str
) -> None:
    v1 = web_job(marker, num_instances=2)
    broken = replace(v1, healthcheck="/missing")  # answers 404
    async with scheduler(data_dir, rollout_timeout=1.0) as sched:
        await sched.apply(v1)
        old = await wait_for_instances(sched, v1.job_id, all_up)

        await sched.apply(broken)

        state = await sched.state(v1.job_id)
        assert [i.instance_id for i in state.instances] == [i.instance_id for i in old]
        assert all(is_alive(pid_of(i)) for i in old)
        assert "rolling update stopped at instance 1" in state.last_error
        assert "GET /missing: HTTP 404" in state.last_error
        assert state.spec_hash == broken.spec_hash()  # desired; applying again retries
