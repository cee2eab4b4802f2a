"""The scheduler contract the resolvers drive. Structural: a backend needs no base class."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from backends.logs import LogItem, LogLine, LogPosition, LogStream
from backends.types import BackendHealth, InstanceAction, ProcJob, ProcState, SchedulerEvent

__all__ = ["Scheduler"]


class Scheduler(Protocol):
    """Runs procs. Every method may raise a `backends.errors.SchedulerError`.

    A scheduler is an async context manager: entering starts its background work (process
    supervision, the event stream), leaving stops it.
    """

    @property
    def canary_deploys(self) -> bool:
        """Whether `apply` honours `ProcJob.canary` (a scheduler without refuses such a job)."""
        ...

    async def apply(self, job: ProcJob) -> None:
        """Create the job or bring it to `job` (idempotent); count, cpu and memory included.

        Returns once the scheduler holds the desired state: replacing running instances
        (a rollout) goes on in the background, reported as `ProcState.rollout`. While one
        runs, other changes may be refused with SchedulerConflict.
        """
        ...

    async def promote(self, job_id: str) -> None:
        """Let a canary rollout of the job go on: its canaries stay, the other instances
        are replaced. Raises JobNotFound; SchedulerConflict when no rollout of the job
        waits for a promotion or its canaries are not all healthy yet; SchedulerRejected
        from a scheduler without canary deploys."""
        ...

    async def scale(self, job_id: str, num_instances: int) -> None:
        """Start or stop exactly the difference. Raises JobNotFound, SchedulerConflict."""
        ...

    async def resize(self, job_id: str, *, cpu: int, memory_bytes: int) -> None:
        """Change the resources of every instance (a rollout, in the background as `apply`)."""
        ...

    async def remove(self, job_id: str) -> None:
        """Stop every instance and forget the job; no error when it does not exist."""
        ...

    async def control(
        self, job_id: str, action: InstanceAction, instance: int | None = None
    ) -> None:
        """Start, stop or restart one instance (numbered from 1) or, with None, all of them."""
        ...

    async def state(self, job_id: str) -> ProcState:
        """The job's state; `ProcState.exists` is False when there is no such job."""
        ...

    async def states(self, job_ids: Sequence[str]) -> dict[str, ProcState]:
        """Many jobs' states in one batched read, keyed by job id (every id present)."""
        ...

    async def health(self) -> BackendHealth:
        """Whether the scheduler can take work now; never raises."""
        ...

    @property
    def state_version(self) -> int | None:
        """A number that grows whenever what `state`/`states` answer changes, by the time
        they answer it (the cursor of the newest event published: a change is published as
        it is made). None while those answers may change without it, e.g. read from the
        cluster rather than from what the scheduler tracks; read caches skip them then."""
        ...

    def events(self, after: int | None = None) -> AsyncIterator[SchedulerEvent]:
        """State changes in cursor order: those after `after` still in history, then live."""
        ...

    async def log_tail(
        self,
        job_id: str,
        *,
        instance: int | None = None,
        lines: int = 100,
        stream: LogStream | None = None,
    ) -> list[LogLine]:
        """The newest `lines` lines of one instance or of all, merged in time order, oldest
        first. Output is kept after an instance exits, is replaced or the job is removed,
        so an unknown job or an instance that never ran answers [], never an error."""
        ...

    def log_follow(
        self,
        job_id: str,
        *,
        instance: int | None = None,
        tail: int = 0,
        after: LogPosition | None = None,
    ) -> AsyncIterator[list[LogItem]]:
        """The newest `tail` lines (or, with `after`, the lines after that position), then
        every new line as it is written, across restarts and replacements of the instances,
        until the caller stops iterating; in batches, as they were read. A follower that
        falls behind gets `LogsDropped` where lines are missing."""
        ...

    async def __aenter__(self) -> Scheduler: ...

    async def __aexit__(self, *exc_info: object) -> None: ...
