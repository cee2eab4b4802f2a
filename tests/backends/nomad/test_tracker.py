"""The tracker on hand-made Nomad payloads: what it publishes, and what it refuses to
publish twice or out of order."""

from __future__ import annotations

from typing import Any

import pytest

from backends.feed import EventFeed
from backends.nomad.allocs import JobView
from backends.nomad.jobs import render_job
from backends.nomad.reads import JobRead
from backends.nomad.tracker import Tracker
from backends.types import EventKind, InstanceStatus, RolloutStatus, SchedulerEvent
from tests.backends.nomad.helpers import make_job

JOB_ID = "hello.web.web"


def _job(*, count: int = 1, modify: int = 20, create: int = 10, **changes: Any) -> dict[str, Any]:
    job = render_job(make_job(num_instances=count), namespace="default")
    job.update({"Version": 0, "CreateIndex": create, "ModifyIndex": modify, **changes})
    return job


def _alloc(
    index: int, *, modify: int, client: str = "running", desired: str = "run"
) -> dict[str, Any]:
    return {
        "ID": f"alloc-{index}",
        "Name": f"{JOB_ID}.web[{index}]",
        "JobID": JOB_ID,
        "TaskGroup": "web",
        "ClientStatus": client,
        "DesiredStatus": desired,
        "CreateIndex": 15,
        "ModifyIndex": modify,
    }


@pytest.fixture
def feed() -> EventFeed:
    return EventFeed()


@pytest.fixture
def tracker(feed: EventFeed) -> Tracker:
    return Tracker(feed)


async def _published(feed: EventFeed) -> list[SchedulerEvent]:
    """Everything published so far (the feed is closed to end the read)."""
    feed.close()
    return [event async for event in feed.subscribe(0)]


async def _kinds(feed: EventFeed) -> list[EventKind]:
    return [event.kind for event in await _published(feed)]


async def test_unmanaged_jobs_are_ignored(tracker: Tracker, feed: EventFeed) -> None:
    job = _job()
    job["Meta"] = {"owner": "someone else"}
    tracker.job_changed(job)
    assert not tracker.tracks(JOB_ID)
    assert feed.cursor == 0


async def test_a_job_event_publishes_once_and_old_ones_are_dropped(
    tracker: Tracker, feed: EventFeed
) -> None:
    tracker.job_changed(_job(modify=20))
    tracker.job_changed(_job(modify=20))
    tracker.job_changed(_job(modify=18, TaskGroups=[]))
    assert await _kinds(feed) == [EventKind.PROC]


async def test_alloc_events_publish_changes_only_in_modify_index_order(
    tracker: Tracker, feed: EventFeed
) -> None:
    tracker.job_changed(_job())
    tracker.alloc_changed(_alloc(0, modify=21, client="pending"))
    tracker.alloc_changed(_alloc(0, modify=23, client="running"))
    tracker.alloc_changed(_alloc(0, modify=22, client="pending"))  # late replay
    tracker.alloc_changed(_alloc(0, modify=23, client="running"))  # duplicate
    statuses = [e.instance.status for e in await _published(feed) if e.instance is not None]
    assert statuses == [InstanceStatus.PENDING, InstanceStatus.RUNNING]


async def test_allocs_of_unknown_jobs_are_ignored(tracker: Tracker, feed: EventFeed) -> None:
    tracker.alloc_changed(_alloc(0, modify=21))
    assert feed.cursor == 0


async def test_scaled_away_instance_is_said_to_exit_once(tracker: Tracker, feed: EventFeed) -> None:
    tracker.job_changed(_job(count=2))
    tracker.alloc_changed(_alloc(0, modify=21))
    tracker.alloc_changed(_alloc(1, modify=22))
    tracker.job_changed(_job(count=1, modify=30))
    tracker.alloc_changed(_alloc(1, modify=31, desired="stop"))
    tracker.alloc_changed(_alloc(1, modify=32, client="complete", desired="stop"))
    second = [e.instance for e in await _published(feed) if e.instance and e.instance.number == 2]
    assert [i.status for i in second] == [InstanceStatus.RUNNING, InstanceStatus.EXITED]


async def test_a_job_of_an_earlier_incarnation_is_ignored(
    tracker: Tracker, feed: EventFeed
) -> None:
    tracker.job_changed(_job(create=50, modify=50))
    tracker.job_changed(_job(create=10, modify=60, TaskGroups=[]))
    assert await _kinds(feed) == [EventKind.PROC]


async def test_removal_is_published_once(tracker: Tracker, feed: EventFeed) -> None:
    tracker.job_changed(_job())
    tracker.job_removed(JOB_ID)
    tracker.job_removed(JOB_ID)
    assert await _kinds(feed) == [EventKind.PROC, EventKind.PROC_REMOVED]


async def test_reset_removes_jobs_that_are_gone_and_keeps_what_is_unchanged(
    tracker: Tracker, feed: EventFeed
) -> None:
    tracker.job_changed(_job())
    tracker.alloc_changed(_alloc(0, modify=21))
    other = _job()
    other["ID"] = "other.web.web"
    tracker.job_changed(other)
    before = feed.cursor
    read = JobRead(
        job=_job(), view=JobView.from_job(_job()), allocs=(_alloc(0, modify=21),), deployments=()
    )
    tracker.reset({JOB_ID: read})
    assert [(e.kind, e.job_id) for e in await _published(feed) if e.cursor > before] == [
        (EventKind.PROC_REMOVED, "other.web.web")
    ]


async def test_a_failed_deployment_becomes_the_procs_last_error(
    tracker: Tracker, feed: EventFeed
) -> None:
    tracker.job_changed(_job())
    deployment = {
        "ID": "d1",
        "JobID": JOB_ID,
        "JobCreateIndex": 10,
        "JobVersion": 0,
        "Status": "running",
        "CreateIndex": 21,
        "ModifyIndex": 21,
    }
    tracker.deployment_changed(deployment)
    tracker.deployment_changed({**deployment, "Status": "failed", "ModifyIndex": 25})
    procs = [e.proc for e in await _published(feed) if e.kind is EventKind.PROC and e.proc]
    # The deployment under way is a rollout; once failed, it stopped and says why.
    assert [(p.rollout, p.last_error) for p in procs] == [
        (RolloutStatus.NONE, ""),
        (RolloutStatus.RUNNING, ""),
        (RolloutStatus.STOPPED, "Nomad deployment d1 failed: no reason given"),
    ]


async def test_instances_of_an_older_version_keep_its_release(
    tracker: Tracker, feed: EventFeed
) -> None:
    first = _job(count=2)
    tracker.job_changed(first)
    tracker.alloc_changed({**_alloc(0, modify=16), "JobVersion": 0})
    tracker.alloc_changed({**_alloc(1, modify=16), "JobVersion": 0})
    newer = render_job(
        make_job(num_instances=2, meta_version="1528900000-" + "1" * 40), namespace="default"
    )
    newer.update({"Version": 1, "CreateIndex": 10, "ModifyIndex": 30})
    tracker.job_changed(newer)
    # A rolling update replaced instance 1 only; instance 2 still runs version 0.
    tracker.alloc_changed({**_alloc(0, modify=31), "ID": "alloc-0-new", "CreateIndex": 31})

    latest: dict[int, str] = {}
    for event in await _published(feed):
        if event.kind is EventKind.INSTANCE and event.instance is not None:
            latest[event.instance.number] = event.instance.release
    old_release = first["Meta"]["lain-meta-version"]
    assert latest == {1: "1528900000-" + "1" * 40, 2: old_release}
    assert tracker.releases(JOB_ID) == {0: old_release, 1: "1528900000-" + "1" * 40}
