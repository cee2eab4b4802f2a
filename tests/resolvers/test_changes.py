"""The instance history recorder behind LAIN's `…/instance/<n>/histories/`."""

from __future__ import annotations

from backends.types import (
    EventKind,
    InstanceState,
    InstanceStatus,
    ProcState,
    SchedulerEvent,
)
from resolvers.core.instance_changes import InstanceHistory, StatusChange

JOB = "hello.web.web"
IMAGE = "registry.lain.local/hello:release-1"


def _instance(
    number: int,
    status: InstanceStatus = InstanceStatus.RUNNING,
    *,
    restarts: int = 0,
    healthy: bool | None = None,
) -> InstanceState:
    return InstanceState(
        job_id=JOB, number=number, status=status, restarts=restarts, healthy=healthy, node="n1"
    )


def _proc(*instances: InstanceState) -> ProcState:
    return ProcState(job_id=JOB, exists=True, image=IMAGE, instances=instances)


class _Feed:
    def __init__(self) -> None:
        self.now = 1000
        self.history = InstanceHistory(clock=lambda: self.now, length=3, max_instances=2)
        self.cursor = 0

    def proc(self, *instances: InstanceState) -> None:
        state = _proc(*instances)
        self._send(SchedulerEvent(self._next(), EventKind.PROC, JOB, proc=state), state)

    def instance(self, instance: InstanceState) -> None:
        event = SchedulerEvent(self._next(), EventKind.INSTANCE, JOB, instance=instance)
        self._send(event, _proc(instance))

    def removed(self) -> None:
        self._send(SchedulerEvent(self._next(), EventKind.PROC_REMOVED, JOB), None)

    def statuses(self, number: int) -> list[str]:
        return [change.status for change in self.history.of(JOB, number)]

    def _next(self) -> int:
        self.cursor += 1
        self.now += 1
        return self.cursor

    def _send(self, event: SchedulerEvent, state: ProcState | None) -> None:
        self.history.record(event, state)


def test_changes_are_recorded_newest_first_with_image_and_node() -> None:
    feed = _Feed()
    feed.proc(_instance(1))
    feed.instance(_instance(1, InstanceStatus.EXITED))
    assert feed.history.of(JOB, 1) == (
        StatusChange(status="stop", time=1002, image="hello:release-1", node="n1"),
        StatusChange(status="start", time=1001, image="hello:release-1", node="n1"),
    )


def test_only_changes_count_and_restarts_and_health_are_changes() -> None:
    feed = _Feed()
    feed.proc(_instance(1))
    feed.proc(_instance(1))  # the same state again: nothing new
    feed.instance(_instance(1, restarts=1))
    feed.instance(_instance(1, restarts=1, healthy=False))
    assert feed.statuses(1) == ["health_status: unhealthy", "restart", "start"]


def test_each_instance_keeps_only_the_last_entries() -> None:
    feed = _Feed()
    for status in (InstanceStatus.PENDING, InstanceStatus.RUNNING, InstanceStatus.FAILED):
        feed.instance(_instance(1, status))
    feed.instance(_instance(1))
    assert feed.statuses(1) == ["start", "die", "start"]


def test_scale_down_and_removal_destroy() -> None:
    feed = _Feed()
    feed.proc(_instance(1), _instance(2))
    feed.proc(_instance(1))
    assert feed.statuses(2) == ["destroy", "start"]
    feed.removed()
    assert feed.statuses(1) == ["destroy", "start"]
    assert feed.statuses(2) == ["destroy", "start"]  # removed once only


def test_the_least_recently_changed_instances_are_forgotten() -> None:
    feed = _Feed()
    feed.proc(_instance(1), _instance(2))
    feed.instance(_instance(3))
    assert feed.statuses(1) == []
    assert feed.statuses(3) == ["start"]
