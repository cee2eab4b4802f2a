"""Scaling, removing and per-instance start/stop/restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from backends.local import LocalScheduler
from backends.types import EventKind, InstanceAction, InstanceStatus
from tests.backends.local.helpers import (
    IGNORES_SIGTERM,
    EventLog,
    all_up,
    is_alive,
    make_job,
    marked_pids,
    pid_of,
    script,
    wait_for_instances,
    wait_until,
    web_job,
)


async def test_scale_changes_exactly_the_difference(
    sched: LocalScheduler, marker: str, event_log: EventLog
) -> None:
    job = make_job(marker)
    await sched.apply(job)
    (first,) = await wait_for_instances(sched, job.job_id, all_up)

    await sched.scale(job.job_id, 3)
    grown = await wait_for_instances(sched, job.job_id, lambda i: len(i) == 3 and all_up(i))
    assert grown[0].instance_id == first.instance_id
    assert (await sched.state(job.job_id)).num_instances == 3

    await sched.scale(job.job_id, 1)
    (kept,) = (await sched.state(job.job_id)).instances
    assert kept.instance_id == first.instance_id
    # Scale answers once the count is stored; the dropped processes end right after.
    await wait_until(
        lambda: not is_alive(pid_of(grown[1])) and not is_alive(pid_of(grown[2])),
        what="the dropped instances to end",
    )
    assert marked_pids(marker) == [pid_of(first)]

    def counts() -> list[int]:
        return [e.proc.num_instances for e in event_log.events if e.proc is not None]

    await wait_until(lambda: counts() == [1, 3, 1], what="a proc event per change")
    # The highest number stops first, as in LAIN.
    exits = [
        state.number
        for state in event_log.instances(job.job_id)
        if state.status is InstanceStatus.EXITED
    ]
    assert exits == [3, 2]


async def test_remove_stops_everything_and_forgets_the_job(
    sched: LocalScheduler, marker: str, data_dir: Path, event_log: EventLog
) -> None:
    # A shell with a child of its own: the whole process group must go.
    family = ("sh", "-c", "sleep 300 & sleep 300 & wait")
    web = web_job(marker, num_instances=2)
    worker = make_job(marker, cmd=family, num_instances=2)
    await sched.apply(web)
    await sched.apply(worker)
    instances = [
        *await wait_for_instances(sched, web.job_id, all_up),
        *await wait_for_instances(sched, worker.job_id, all_up),
    ]
    # Both sleeps of each shell carry the marker too.
    assert len(marked_pids(marker)) >= 6

    await sched.remove(web.job_id)
    await sched.remove(worker.job_id)

    assert not any(is_alive(pid_of(i)) for i in instances)
    # The shells' children were killed with their group; a loaded machine may take a moment
    # to tear a killed process down and reparent it.
    await wait_until(lambda: marked_pids(marker) == [], what="the shells' children to go")
    assert not (await sched.state(web.job_id)).exists
    assert list((data_dir / "local" / "jobs").iterdir()) == []
    assert list((data_dir / "local" / "run").iterdir()) == []

    def removed() -> list[str]:
        return [e.job_id for e in event_log.events if e.kind is EventKind.PROC_REMOVED]

    await wait_until(lambda: removed() == [web.job_id, worker.job_id], what="removal events")


async def test_restart_one_instance_leaves_the_others_alone(
    sched: LocalScheduler, marker: str
) -> None:
    job = web_job(marker, num_instances=3)
    await sched.apply(job)
    before = await wait_for_instances(sched, job.job_id, all_up)

    await sched.control(job.job_id, InstanceAction.RESTART, 2)
    after = await wait_for_instances(sched, job.job_id, all_up)

    assert after[1].instance_id != before[1].instance_id
    assert after[1].restarts == 1
    assert after[1].port == before[1].port  # the slot keeps its address
    assert not is_alive(pid_of(before[1]))
    for index in (0, 2):
        assert after[index].instance_id == before[index].instance_id
        assert after[index].restarts == 0


async def test_stop_keeps_instance_stopped_until_started(
    sched: LocalScheduler, marker: str, data_dir: Path
) -> None:
    job = make_job(marker, num_instances=2)
    await sched.apply(job)
    before = await wait_for_instances(sched, job.job_id, all_up)

    await sched.control(job.job_id, InstanceAction.STOP, 1)
    stopped = (await sched.state(job.job_id)).instances
    assert stopped[0].status is InstanceStatus.EXITED
    assert not is_alive(pid_of(before[0]))
    # A crash would be restarted after backoff_initial (0.05 s); a stop must not be.
    await asyncio.sleep(0.5)
    still = (await sched.state(job.job_id)).instances
    assert still[0].status is InstanceStatus.EXITED
    assert still[0].restarts == 0
    assert still[1].instance_id == before[1].instance_id
    assert marked_pids(marker) == [pid_of(before[1])]

    await sched.control(job.job_id, InstanceAction.START, 1)
    started = await wait_for_instances(sched, job.job_id, all_up)
    assert started[0].instance_id not in ("", before[0].instance_id)
    assert started[0].restarts == 0  # a start on request is not a restart


async def test_stop_all_then_start_all(sched: LocalScheduler, marker: str) -> None:
    job = make_job(marker, num_instances=2)
    await sched.apply(job)
    await wait_for_instances(sched, job.job_id, all_up)

    await sched.control(job.job_id, InstanceAction.STOP)
    assert all(i.status is InstanceStatus.EXITED for i in (await sched.state(job.job_id)).instances)
    assert marked_pids(marker) == []
    await sched.control(job.job_id, InstanceAction.START)
    await wait_for_instances(sched, job.job_id, all_up)


async def test_scale_down_does_not_wait_for_the_processes_to_end(
    sched: LocalScheduler, marker: str, event_log: EventLog
) -> None:
    # The process ignores SIGTERM: ending it takes the whole kill_timeout.
    job = make_job(marker, cmd=script(IGNORES_SIGTERM), kill_timeout=6, num_instances=2)
    await sched.apply(job)
    _, second = await wait_for_instances(sched, job.job_id, all_up)
    await wait_until(
        lambda: any(line.text == "ignoring SIGTERM" for line in sched.logs(job.job_id, 2)),
        what="SIGTERM to be ignored",
    )

    started = time.monotonic()
    await sched.scale(job.job_id, 1)
    answered = time.monotonic() - started

    state = await sched.state(job.job_id)
    assert (state.num_instances, [i.number for i in state.instances]) == (1, [1])
    if time.monotonic() - started < 6:  # a very slow machine may have passed it already
        assert is_alive(pid_of(second)), "still in its kill_timeout"
    assert answered < 6, f"scale waited {answered:.1f}s, as long as the kill_timeout"
    await wait_until(
        lambda: not is_alive(pid_of(second)), within=20, what="SIGKILL after kill_timeout"
    )


async def test_scale_down_publishes_the_proc_once_the_dropped_instances_ended(
    sched: LocalScheduler, marker: str, event_log: EventLog
) -> None:
    job = make_job(marker, num_instances=2)
    await sched.apply(job)
    await wait_for_instances(sched, job.job_id, all_up)

    await sched.scale(job.job_id, 1)

    def proc_events() -> list[int]:
        return [e.proc.num_instances for e in event_log.events if e.proc is not None]

    await wait_until(lambda: proc_events() == [2, 1], what="the scaled-down proc's event")
    events = event_log.events
    scaled = next(
        i for i, e in enumerate(events) if e.proc is not None and e.proc.num_instances == 1
    )
    exited = next(
        i
        for i, e in enumerate(events)
        if e.instance is not None
        and e.instance.number == 2
        and e.instance.status is InstanceStatus.EXITED
    )
    assert exited < scaled, "the proc's snapshot comes after its dropped instance ended"
    assert [i.number for i in events[scaled].proc.instances] == [1]  # type: ignore[union-attr]


async def test_stop_escalates_to_sigkill_after_kill_timeout(
    sched: LocalScheduler, marker: str
) -> None:
    job = make_job(marker, cmd=script(IGNORES_SIGTERM), kill_timeout=1)
    await sched.apply(job)
    await wait_for_instances(sched, job.job_id, all_up)
    # It prints once SIGTERM is ignored; stopping earlier would not test the escalation.
    await wait_until(
        lambda: any(line.text == "ignoring SIGTERM" for line in sched.logs(job.job_id, 1)),
        what="SIGTERM to be ignored",
    )
    started = time.monotonic()

    await sched.control(job.job_id, InstanceAction.STOP, 1)

    elapsed = time.monotonic() - started
    (instance,) = (await sched.state(job.job_id)).instances
    assert instance.status is InstanceStatus.EXITED
    assert instance.exit_code == 128 + 9  # SIGKILL, after SIGTERM was ignored
    assert elapsed >= 1.0


async def test_remove_right_after_apply_ends_the_process_being_started(
    sched: LocalScheduler, marker: str
) -> None:
    # The remove arrives while the first process is still being spawned in a worker thread.
    job = make_job(marker)
    await sched.apply(job)
    await sched.remove(job.job_id)
    assert not (await sched.state(job.job_id)).exists
    assert marked_pids(marker) == []
