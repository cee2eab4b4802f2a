"""An in-memory Scheduler for resolver tests: instances run the moment they are asked to."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from backends.errors import (
    JobNotFound,
    SchedulerConflict,
    SchedulerRejected,
    SchedulerUnavailable,
)
from backends.feed import EventFeed
from backends.logs import (
    LogFanout,
    LogItem,
    LogLine,
    LogPosition,
    LogStream,
)
from backends.types import (
    BackendHealth,
    CanaryState,
    EventKind,
    InstanceAction,
    InstanceState,
    InstanceStatus,
    ProcJob,
    ProcState,
    RolloutStatus,
    SchedulerEvent,
)


@dataclass
class FakeScheduler:
    """Switches: `down` makes every call fail as unreachable; `fail_jobs` refuses `apply` of
    those job ids; `rolling` reports those job ids' rollouts as running; `calls` records
    every mutating call in order. An `apply` with canaries that changes a job's spec leaves
    its rollout running, the canaries healthy, until `promote`; `canary_deploys` False
    makes this a scheduler without canaries, refusing them."""

    canary_deploys: bool = True
    down: bool = False
    fail_jobs: set[str] = field(default_factory=set)
    rolling: set[str] = field(default_factory=set)
    jobs: dict[str, ProcJob] = field(default_factory=dict)
    stopped: dict[str, set[int]] = field(default_factory=dict)
    restarts: dict[tuple[str, int], int] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    feed: EventFeed = field(default_factory=EventFeed)
    printed: dict[str, list[LogLine]] = field(default_factory=dict)
    log_fanout: LogFanout = field(default_factory=LogFanout)
    canaries: dict[str, CanaryState] = field(default_factory=dict)  # awaiting a promotion

    def print_lines(self, job_id: str, instance: int, stream: LogStream, *texts: str) -> None:
        """Lines as if instance `instance` of the job had printed them now."""
        kept = self.printed.setdefault(job_id, [])
        seq = 1 + max(
            (line.seq for line in kept if line.source == (instance, str(stream), "")),
            default=0,
        )
        now = datetime.now(UTC)
        lines = [
            LogLine(job_id, instance, stream, now, text, seq + n) for n, text in enumerate(texts)
        ]
        kept.extend(lines)
        self.log_fanout.publish(job_id, lines)

    async def log_tail(
        self,
        job_id: str,
        *,
        instance: int | None = None,
        lines: int = 100,
        stream: LogStream | None = None,
    ) -> list[LogLine]:
        self._check()
        found = [
            line
            for line in self.printed.get(job_id, [])
            if instance in (None, line.instance) and stream in (None, line.stream)
        ]
        return found[-lines:] if lines > 0 else []

    def log_follow(
        self,
        job_id: str,
        *,
        instance: int | None = None,
        tail: int = 0,
        after: LogPosition | None = None,
    ) -> AsyncIterator[list[LogItem]]:
        self._check()

        def read_tail(count: int) -> Awaitable[list[LogLine]]:
            return self.log_tail(job_id, instance=instance, lines=count)

        return self.log_fanout.follow(job_id, instance, read_tail, tail=tail, after=after)

    async def __aenter__(self) -> FakeScheduler:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.feed.close()
        self.log_fanout.close()

    def _check(self) -> None:
        if self.down:
            raise SchedulerUnavailable("fake scheduler: connection refused")

    def _job(self, job_id: str) -> ProcJob:
        self._check()
        if job_id not in self.jobs:
            raise JobNotFound(job_id)
        return self.jobs[job_id]

    def _publish(self, job_id: str) -> None:
        self.feed.publish(EventKind.PROC, job_id, proc=self._state(job_id))

    async def apply(self, job: ProcJob) -> None:
        self._check()
        self.calls.append(("apply", job.job_id))
        if job.job_id in self.fail_jobs:
            raise SchedulerRejected(f"fake scheduler refuses {job.job_id}")
        if job.canary is not None and not self.canary_deploys:
            raise SchedulerRejected(f"{job.job_id}: fake scheduler has no canaries")
        before = self.jobs.get(job.job_id)
        self.jobs[job.job_id] = job
        if job.canary is not None and before is not None and before.spec_hash() != job.spec_hash():
            count = job.canary.instances
            auto = job.canary.auto_promote_after is not None
            self.canaries[job.job_id] = CanaryState(count, count, count, False, auto)
            self.rolling.add(job.job_id)
        self._publish(job.job_id)

    async def promote(self, job_id: str) -> None:
        self._job(job_id)
        self.calls.append(("promote", job_id))
        if not self.canary_deploys:
            raise SchedulerRejected(f"{job_id}: fake scheduler has no canaries")
        if self.canaries.pop(job_id, None) is None:
            raise SchedulerConflict(f"{job_id} has no rollout with canaries; nothing to promote")
        self.rolling.discard(job_id)
        self._publish(job_id)

    async def scale(self, job_id: str, num_instances: int) -> None:
        job = self._job(job_id)
        self.calls.append(("scale", job_id, str(num_instances)))
        self.jobs[job_id] = job.with_count(num_instances)
        self._publish(job_id)

    async def resize(self, job_id: str, *, cpu: int, memory_bytes: int) -> None:
        job = self._job(job_id)
        self.calls.append(("resize", job_id, str(cpu), str(memory_bytes)))
        self.jobs[job_id] = job.with_resources(cpu=cpu, memory_bytes=memory_bytes)
        self._publish(job_id)

    async def remove(self, job_id: str) -> None:
        self._check()
        self.calls.append(("remove", job_id))
        if self.jobs.pop(job_id, None) is not None:
            self.feed.publish(EventKind.PROC_REMOVED, job_id)

    async def control(
        self, job_id: str, action: InstanceAction, instance: int | None = None
    ) -> None:
        job = self._job(job_id)
        self.calls.append(("control", job_id, str(action), str(instance)))
        numbers = range(1, job.num_instances + 1) if instance is None else [instance]
        stopped = self.stopped.setdefault(job_id, set())
        for number in numbers:
            if action is InstanceAction.STOP:
                stopped.add(number)
            else:
                stopped.discard(number)
                if action is InstanceAction.RESTART:
                    key = (job_id, number)
                    self.restarts[key] = self.restarts.get(key, 0) + 1
            self.feed.publish(
                EventKind.INSTANCE, job_id, instance=self._instance(job_id, job, number)
            )

    def _instance(self, job_id: str, job: ProcJob, number: int) -> InstanceState:
        stopped = number in self.stopped.get(job_id, set())
        return InstanceState(
            job_id=job_id,
            number=number,
            status=InstanceStatus.EXITED if stopped else InstanceStatus.RUNNING,
            healthy=None,
            instance_id=f"{job_id}-{number}",
            ip="127.0.0.1",
            port=job.port,
            node="fake",
            restarts=self.restarts.get((job_id, number), 0),
        )

    def _state(self, job_id: str) -> ProcState:
        job = self.jobs.get(job_id)
        if job is None:
            return ProcState.missing(job_id)
        instances = tuple(self._instance(job_id, job, n) for n in range(1, job.num_instances + 1))
        return ProcState(
            job_id=job_id,
            exists=True,
            num_instances=job.num_instances,
            cpu=job.cpu,
            memory_bytes=job.memory_bytes,
            image=job.image,
            meta_version=job.meta_version,
            spec_hash=job.spec_hash(),
            instances=instances,
            rollout=RolloutStatus.RUNNING if job_id in self.rolling else RolloutStatus.NONE,
            canary=self.canaries.get(job_id),
        )

    async def state(self, job_id: str) -> ProcState:
        self._check()
        return self._state(job_id)

    async def states(self, job_ids: Sequence[str]) -> dict[str, ProcState]:
        self._check()
        self.calls.append(("states", *job_ids))
        return {job_id: self._state(job_id) for job_id in job_ids}

    async def health(self) -> BackendHealth:
        if self.down:
            return BackendHealth(ok=False, detail="fake scheduler: connection refused")
        return BackendHealth(ok=True)

    @property
    def state_version(self) -> int | None:
        # Every change made through the methods is published; while `down`, reads fail.
        # Tests that edit `jobs` or `stopped` directly publish, or bump `feed`, themselves.
        return None if self.down else self.feed.cursor

    def events(self, after: int | None = None) -> AsyncIterator[SchedulerEvent]:
        return self.feed.subscribe(after)
