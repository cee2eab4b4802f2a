"""The running state every benchmarked server reads: the FakeScheduler, loaded with the
jobs the seeding deploys left, so its instances are RUNNING without any process."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from backends.feed import EventFeed
from backends.types import InstanceAction, ProcJob, ProcState, SchedulerEvent
from tests.fakes.scheduler import FakeScheduler

__all__ = ["LoadedScheduler", "TimedFeed"]


class TimedFeed(EventFeed):
    """An EventFeed that notes when each event was published (CLOCK_MONOTONIC, which every
    process on the machine shares), so a client in another process can measure how long the
    event took to reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.published_ns: dict[int, int] = {}

    def append(self, make: Callable[[int], SchedulerEvent]) -> SchedulerEvent:
        stamp = time.monotonic_ns()
        event = super().append(make)
        self.published_ns[event.cursor] = stamp
        return event


class LoadedScheduler(FakeScheduler):
    """A FakeScheduler holding `jobs` from the start, with two changes for benchmarking.

    - Each job's `ProcState` is built once and kept until the job changes. The fake builds
      it on every read, hashing the whole job spec each time (~0.2 ms a job: 0.5 s a
      request at N=1000), which no real backend does: the local and Nomad backends keep
      tracked state. Both the product and the baseline read through this same scheduler.
    - `states` does not append to `calls` (the fake records every call for tests; at
      N=1000 each list request would add 3,000 ids to that list).
    """

    def __init__(self, jobs: dict[str, ProcJob]) -> None:
        super().__init__(jobs=dict(jobs), feed=TimedFeed())
        self._known: dict[str, ProcState] = {}

    @property
    def timed_feed(self) -> TimedFeed:
        assert isinstance(self.feed, TimedFeed)
        return self.feed

    def _state(self, job_id: str) -> ProcState:
        known = self._known.get(job_id)
        if known is None:
            known = self._known[job_id] = super()._state(job_id)
        return known

    async def states(self, job_ids: Sequence[str]) -> dict[str, ProcState]:
        self._check()
        return {job_id: self._state(job_id) for job_id in job_ids}

    # Every change forgets the kept state before the fake publishes the new one.

    async def apply(self, job: ProcJob) -> None:
        self._known.pop(job.job_id, None)
        await super().apply(job)

    async def scale(self, job_id: str, num_instances: int) -> None:
        self._known.pop(job_id, None)
        await super().scale(job_id, num_instances)

    async def resize(self, job_id: str, *, cpu: int, memory_bytes: int) -> None:
        self._known.pop(job_id, None)
        await super().resize(job_id, cpu=cpu, memory_bytes=memory_bytes)

    async def remove(self, job_id: str) -> None:
        self._known.pop(job_id, None)
        await super().remove(job_id)

    async def control(
        self, job_id: str, action: InstanceAction, instance: int | None = None
    ) -> None:
        self._known.pop(job_id, None)
        await super().control(job_id, action, instance)
        self._known.pop(job_id, None)
