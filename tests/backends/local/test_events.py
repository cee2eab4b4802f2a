"""The event feed: ordered, strictly increasing cursors, resumable."""

from __future__ import annotations

import asyncio

from backends.local import LocalScheduler
from backends.types import EventKind, InstanceStatus, SchedulerEvent
from tests.backends.local.helpers import (
    EventLog,
    all_up,
    make_job,
    wait_for_instances,
    wait_until,
    web_job,
)


async def test_events_arrive_in_order_with_increasing_cursors(
    sched: LocalScheduler, marker: str, event_log: EventLog
) -> None:
    web = web_job(marker, num_instances=2)
    worker = make_job(marker)
    await sched.apply(web)
    await sched.apply(worker)
    await wait_for_instances(sched, web.job_id, all_up)
    await sched.remove(worker.job_id)
    await wait_until(
        lambda: any(e.kind is EventKind.PROC_REMOVED for e in event_log.events),
        what="the removal event",
    )

    cursors = [event.cursor for event in event_log.events]
    assert cursors == list(range(1, len(cursors) + 1))
    for number in (1, 2):
        statuses = [state.status for state in event_log.instances(web.job_id, number)]
        assert statuses[0] is InstanceStatus.PENDING
        assert statuses[-1] is InstanceStatus.RUNNING
        healthy = [state.healthy for state in event_log.instances(web.job_id, number)]
        assert healthy[-1] is True
    proc = next(e for e in event_log.events if e.kind is EventKind.PROC)
    assert proc.job_id == web.job_id
    assert proc.proc is not None
    assert proc.proc.spec_hash == web.spec_hash()
    kinds = [e.kind for e in event_log.events if e.job_id == worker.job_id]
    assert kinds[-1] is EventKind.PROC_REMOVED
    assert event_log.instances(worker.job_id)[-1].status is InstanceStatus.EXITED


async def test_events_resume_after_a_cursor(sched: LocalScheduler, marker: str) -> None:
    job = make_job(marker, num_instances=2)
    await sched.apply(job)
    await wait_for_instances(sched, job.job_id, all_up)

    async def take(after: int | None, count: int) -> list[SchedulerEvent]:
        taken: list[SchedulerEvent] = []
        async for event in sched.events(after):
            taken.append(event)
            if len(taken) == count:
                break
        return taken

    history = await asyncio.wait_for(take(0, 4), 5)
    resumed = await asyncio.wait_for(take(history[1].cursor, 2), 5)
    assert resumed == history[2:4]
