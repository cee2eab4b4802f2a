"""The recorder of instance state changes behind LAIN's `…/instance/<n>/histories/`.

deployd kept the last 20 docker events of every instance. We keep the same from the scheduler
events the event bus receives: every change of an instance's status (and of its health, and
each restart) becomes one entry named like the docker event it stands for.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from backends.types import EventKind, InstanceState, InstanceStatus, ProcState, SchedulerEvent

__all__ = ["HISTORY_LENGTH", "InstanceHistory", "StatusChange"]

HISTORY_LENGTH = 20  # deployd's ring buffer per instance
MAX_INSTANCES = 10_000  # instances remembered at all; the least recently changed go first

# Our statuses as the docker events deployd recorded for them.
_EVENT_OF = {
    InstanceStatus.PENDING: "create",
    InstanceStatus.RUNNING: "start",
    InstanceStatus.FAILED: "die",
    InstanceStatus.EXITED: "stop",
    InstanceStatus.COMPLETE: "die",
}
_DESTROY = "destroy"


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: str  # the docker event: create, start, restart, die, stop, destroy, health_status: …
    time: int  # unix seconds
    image: str  # "<repo>:<tag>", the image without its registry host
    node: str


@dataclass(frozen=True, slots=True)
class _Seen:
    status: str
    healthy: bool | None
    restarts: int


class InstanceHistory:
    """A bounded history per (job, instance number), fed with every scheduler event.

    Not thread-safe and needs no lock: the event bus calls `record` from the event loop.
    """

    def __init__(
        self,
        *,
        length: int = HISTORY_LENGTH,
        max_instances: int = MAX_INSTANCES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._length = length
        self._max = max_instances
        self._clock = clock
        self._changes: OrderedDict[tuple[str, int], deque[StatusChange]] = OrderedDict()
        self._seen: dict[tuple[str, int], _Seen] = {}
        self._images: dict[str, str] = {}

    def record(self, event: SchedulerEvent, state: ProcState | None = None) -> None:
        """Note what `event` changed; `state` is the proc's whole state after it, if known."""
        if state is not None and state.image:
            self._images[event.job_id] = _without_registry(state.image)
        if event.kind is EventKind.PROC_REMOVED:
            for key in self._alive(event.job_id):
                self._add(key, _DESTROY, None)
            return
        if event.instance is not None:
            self._observe(event.instance)
        if event.kind is EventKind.PROC and event.proc is not None:
            numbers = {instance.number for instance in event.proc.instances}
            for instance in event.proc.instances:
                self._observe(instance)
            # A scale-down drops the highest instances from the snapshot.
            for key in self._alive(event.job_id):
                if key[1] not in numbers:
                    self._add(key, _DESTROY, None)

    def of(self, job_id: str, number: int) -> tuple[StatusChange, ...]:
        """The instance's recorded changes, newest first."""
        return tuple(reversed(self._changes.get((job_id, number), ())))

    def _alive(self, job_id: str) -> list[tuple[str, int]]:
        return [
            key for key, seen in self._seen.items() if key[0] == job_id and seen.status != _DESTROY
        ]

    def _observe(self, instance: InstanceState) -> None:
        key = (instance.job_id, instance.number)
        status = _EVENT_OF[instance.status]
        before = self._seen.get(key)
        if before is None or before.status != status:
            self._add(key, status, instance.node)
        elif status == "start" and instance.restarts > before.restarts:
            self._add(key, "restart", instance.node)
        if instance.healthy is not None and (before is None or before.healthy != instance.healthy):
            health = "healthy" if instance.healthy else "unhealthy"
            self._add(key, f"health_status: {health}", instance.node)
        self._seen[key] = _Seen(status, instance.healthy, instance.restarts)

    def _add(self, key: tuple[str, int], status: str, node: str | None) -> None:
        entries = self._changes.get(key)
        if entries is None:
            entries = self._changes[key] = deque(maxlen=self._length)
        if not node and entries:
            node = entries[-1].node  # a removal event names no node: it is where it ran
        entries.append(
            StatusChange(
                status=status,
                time=int(self._clock()),
                image=self._images.get(key[0], ""),
                node=node or "",
            )
        )
        self._changes.move_to_end(key)
        if status == _DESTROY:
            self._seen[key] = _Seen(_DESTROY, None, 0)
        while len(self._changes) > self._max:
            old, _ = self._changes.popitem(last=False)
            self._seen.pop(old, None)


def _without_registry(image: str) -> str:
    # deployd reported `<registry>/<repo>:<tag>`; LAIN showed the part after the first "/".
    _, slash, rest = image.partition("/")
    return rest if slash else image
