"""One job as the local scheduler holds it: desired spec, wishes, and its instance slots."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from backends.local.instance import InstanceSupervisor
from backends.local.store import JobFile
from backends.types import ProcJob, ProcState, RolloutStatus

__all__ = ["JobEntry"]


@dataclass(eq=False)
class JobEntry:
    """The job, the instances stopped on request and one supervisor per instance number.

    A slot normally holds one supervisor; during a rolling update the incoming one runs
    beside it until it is ready, and only then takes the slot.
    """

    job: ProcJob
    stopped: set[int] = field(default_factory=set)
    slots: dict[int, InstanceSupervisor] = field(default_factory=dict)
    error: str = ""  # the last job-level error (a rolling update that stopped)
    error_at: float = 0.0
    removed: bool = False  # its job file is gone; nothing may write it again
    # The background task replacing or restarting instances one at a time, while it runs.
    rollout: asyncio.Task[None] | None = None
    # Saves run in worker threads; one at a time, so the newest content is written last.
    save_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def stale(self) -> list[int]:
        """Instance numbers whose process runs another spec than the job's, ascending."""
        spec_hash = self.job.spec_hash()
        return [n for n, sup in sorted(self.slots.items()) if sup.spec_hash != spec_hash]

    @property
    def rolling(self) -> bool:
        return self.rollout is not None and not self.rollout.done()

    def rollout_status(self) -> RolloutStatus:
        if self.rolling:
            return RolloutStatus.RUNNING
        return RolloutStatus.STOPPED if self.stale() else RolloutStatus.NONE

    def note_error(self, error: str) -> None:
        self.error = error
        self.error_at = asyncio.get_running_loop().time()

    def to_file(self) -> JobFile:
        return JobFile(
            job=self.job,
            stopped=frozenset(self.stopped),
            finished={
                number: sup.finished_run
                for number, sup in self.slots.items()
                if sup.finished_run is not None
            },
        )

    def proc_state(self) -> ProcState:
        job = self.job
        supervisors = [sup for _, sup in sorted(self.slots.items())]
        instances = tuple(sup.snapshot() for sup in supervisors)
        # As LAIN does for a pod group: the error of whatever failed last.
        errors = [(self.error_at, self.error)]
        errors += [(s.error_at, i.last_error) for s, i in zip(supervisors, instances, strict=True)]
        last_error = max(((at, error) for at, error in errors if error), default=(0.0, ""))[1]
        return ProcState(
            job_id=job.job_id,
            exists=True,
            num_instances=job.num_instances,
            cpu=job.cpu,
            memory_bytes=job.memory_bytes,
            image=job.image,
            meta_version=job.meta_version,
            spec_hash=job.spec_hash(),
            instances=instances,
            last_error=last_error,
            rollout=self.rollout_status(),
        )
