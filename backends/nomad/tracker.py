"""What the event feed last said about each lain-console job, and the changes to publish.

The tracker holds, per job, the Nomad job, its allocations and its latest deployment, and
the ProcState / InstanceStates last published. Every update recomputes the job's
instances with the same mapping `state()` uses and publishes only what differs, so a
replayed or duplicated Nomad event publishes nothing. Objects carry Nomad's
ModifyIndex; an update older than what is held is dropped, so a replay can never move
a job back in time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from backends.feed import EventFeed
from backends.nomad.allocs import (
    JobView,
    alloc_index,
    deployment_canary,
    deployment_error,
    deployment_rollout,
    is_live,
    placement,
    proc_state,
    reverted_version,
)
from backends.nomad.jobs import is_managed
from backends.nomad.reads import JobRead
from backends.types import EventKind, InstanceState, InstanceStatus, ProcState

__all__ = ["Tracker"]

_STOPPED = (InstanceStatus.EXITED, InstanceStatus.FAILED, InstanceStatus.COMPLETE)
_ENV_VERSIONS = 10  # versions whose env a job keeps, for allocations not yet replaced


@dataclass(slots=True)
class _Job:
    view: JobView
    allocs: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    proc: ProcState | None = None  # last published, without instances
    instances: dict[int, InstanceState] = field(default_factory=dict)
    # The env of each version seen. Events leave the job out of an allocation, so one
    # updated in place (a count-only change) keeps the version it was placed with here;
    # an in-place update never changes the env, so that version's env is still right
    # (reporting none made every scale republish the instances that kept running).
    envs: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # The meta version of each version seen, for allocations a rollout has not replaced.
    releases: dict[int, str] = field(default_factory=dict)
    # The lain spec hash of each version seen, to name a release Nomad rolled back.
    hashes: dict[int, str] = field(default_factory=dict)
    # Alloc ID -> the live verdict of its checks, when last read.
    checks: dict[str, bool] = field(default_factory=dict)

    def see(self, view: JobView) -> None:
        self.view = view
        self.envs[view.version] = view.env
        self.releases[view.version] = view.meta_version
        self.hashes[view.version] = view.spec_hash
        for version in sorted(self.envs)[:-_ENV_VERSIONS]:
            del self.envs[version]
            self.releases.pop(version, None)
        for version in sorted(self.hashes)[:-_ENV_VERSIONS]:
            del self.hashes[version]


class Tracker:
    """Turns Nomad objects into SchedulerEvents on `feed`, deduplicated."""

    def __init__(self, feed: EventFeed) -> None:
        self._feed = feed
        self._jobs: dict[str, _Job] = {}

    def tracks(self, job_id: str) -> bool:
        return job_id in self._jobs

    def view(self, job_id: str) -> JobView | None:
        job = self._jobs.get(job_id)
        return job.view if job else None

    def releases(self, job_id: str) -> Mapping[int, str]:
        """The meta version of each version of the job seen (empty for an unknown job)."""
        job = self._jobs.get(job_id)
        return dict(job.releases) if job else {}

    def reset(self, reads: Mapping[str, JobRead]) -> None:
        """Replace everything with a fresh read of all our jobs (a reconcile)."""
        for job_id in [job_id for job_id in self._jobs if job_id not in reads]:
            self.job_removed(job_id)
        for job_id, read in reads.items():
            job = self._jobs.get(job_id)
            if job is None:
                job = self._jobs[job_id] = _Job(view=read.view)
            elif read.view.create_index != job.view.create_index:
                job.envs.clear()  # another incarnation: its versions start again
                job.releases.clear()
                job.hashes.clear()
            job.hashes.update(read.version_hashes)
            job.see(read.view)
            job.allocs = {str(alloc["ID"]): alloc for alloc in read.allocs if "ID" in alloc}
            job.deployments = {str(d.get("ID")): d for d in read.deployments}
            self._refresh(job)

    def job_changed(self, payload: Mapping[str, Any]) -> None:
        """A job was registered, scaled or stopped (a Job event, or a re-read)."""
        view = JobView.from_job(payload)
        job = self._jobs.get(view.job_id)
        if job is None:
            if not is_managed(payload.get("Meta")):
                return
            job = self._jobs[view.job_id] = _Job(view=view)
        elif view.create_index < job.view.create_index:
            return  # an event of an earlier job with the same ID
        elif view.create_index == job.view.create_index and (
            view.modify_index < job.view.modify_index
        ):
            return
        elif view.create_index > job.view.create_index:
            # Purged and registered again: nothing of the old incarnation applies.
            job.allocs.clear()
            job.deployments.clear()
            job.envs.clear()
            job.releases.clear()
            job.hashes.clear()
        job.see(view)
        self._refresh(job)

    def job_removed(self, job_id: str) -> None:
        """The job is gone from Nomad (purged)."""
        if self._jobs.pop(job_id, None) is not None:
            self._feed.publish(EventKind.PROC_REMOVED, job_id)

    def alloc_changed(self, alloc: Mapping[str, Any]) -> None:
        job = self._jobs.get(str(alloc.get("JobID")))
        alloc_id = alloc.get("ID")
        if job is None or not isinstance(alloc_id, str):
            return
        held = job.allocs.get(alloc_id)
        modify_index = int(alloc.get("ModifyIndex") or 0)
        if held is not None and modify_index <= int(held.get("ModifyIndex") or 0):
            return
        record = dict(alloc)
        if "JobVersion" not in record:
            # Event payloads leave the job out; a new allocation runs the job's current
            # version, a known one keeps the version its list stub reported.
            record["JobVersion"] = held.get("JobVersion") if held else job.view.version
        job.allocs[alloc_id] = record
        _prune(job.allocs)
        self._refresh(job)

    def deployment_changed(self, deployment: Mapping[str, Any]) -> None:
        job = self._jobs.get(str(deployment.get("JobID")))
        if job is None or int(deployment.get("JobCreateIndex") or 0) != job.view.create_index:
            return
        deployment_id = str(deployment.get("ID"))
        held = job.deployments.get(deployment_id)
        modify_index = int(deployment.get("ModifyIndex") or 0)
        if held is not None and modify_index <= int(held.get("ModifyIndex") or 0):
            return
        job.deployments[deployment_id] = dict(deployment)
        # Only the newest two matter for the proc's error (see deployment_error).
        newest = sorted(
            job.deployments.values(), key=lambda d: int(d.get("CreateIndex") or 0), reverse=True
        )
        job.deployments = {str(d.get("ID")): d for d in newest[:2]}
        self._refresh(job)

    def state(self, job_id: str) -> ProcState:
        """The job as the events left it (missing when it is not one of ours)."""
        job = self._jobs.get(job_id)
        if job is None:
            return ProcState.missing(job_id)
        return self._proc_state(job)

    def checked_allocs(self) -> list[str]:
        """The running allocations whose health comes from checks."""
        return [
            alloc_id
            for job in self._jobs.values()
            if job.view.has_check
            for alloc_id, alloc in job.allocs.items()
            if is_live(alloc) and alloc.get("ClientStatus") == "running"
        ]

    def verdicts(self) -> dict[str, bool]:
        """Every live check verdict held (alloc ID -> healthy)."""
        return {a: v for job in self._jobs.values() for a, v in job.checks.items()}

    def checks_seen(self, verdicts: Mapping[str, bool]) -> None:
        """Live check results (alloc ID -> healthy) read from Nomad."""
        for job in self._jobs.values():
            mine = {a: v for a, v in verdicts.items() if a in job.allocs}
            if any(job.checks.get(a) != v for a, v in mine.items()):
                job.checks.update(mine)
                self._refresh(job)

    def _proc_state(self, job: _Job) -> ProcState:
        found = placement(
            job.view,
            job.allocs.values(),
            envs=job.envs,
            releases=job.releases,
            checks=job.checks,
        )
        reverted = reverted_version(job.deployments.values())
        return proc_state(
            job.view,
            found.instances,
            last_error=deployment_error(job.deployments.values()),
            rollout=deployment_rollout(job.deployments.values()),
            reverted_spec_hash="" if reverted is None else job.hashes.get(reverted, ""),
            canary=deployment_canary(job.deployments.values()),
            shadowed=found.shadowed_releases,
        )

    def _refresh(self, job: _Job) -> None:
        job.checks = {a: v for a, v in job.checks.items() if a in job.allocs}
        proc = self._proc_state(job)
        current = proc.instances
        bare = dataclasses.replace(proc, instances=())
        if bare != job.proc:
            job.proc = bare
            self._feed.publish(EventKind.PROC, job.view.job_id, proc=proc)
        by_number = {instance.number: instance for instance in current}
        for number in sorted(job.instances.keys() - by_number.keys()):
            # Scaled away: say once that it stopped, then forget it.
            last = job.instances.pop(number)
            if last.status not in _STOPPED:
                final = dataclasses.replace(last, status=InstanceStatus.EXITED)
                self._feed.publish(EventKind.INSTANCE, job.view.job_id, instance=final)
        for number, instance in sorted(by_number.items()):
            if job.instances.get(number) != instance:
                job.instances[number] = instance
                self._feed.publish(EventKind.INSTANCE, job.view.job_id, instance=instance)


def _prune(allocs: dict[str, dict[str, Any]]) -> None:
    """Keep, per index, the live allocations and the newest finished one; the others can
    never be an instance again and would only grow the map."""
    newest_done: dict[int | None, tuple[int, str]] = {}
    for alloc_id, alloc in allocs.items():
        if is_live(alloc):
            continue
        key = alloc_index(alloc)
        created = int(alloc.get("CreateIndex") or 0)
        if key not in newest_done or created > newest_done[key][0]:
            newest_done[key] = (created, alloc_id)
    keep = {alloc_id for _, alloc_id in newest_done.values()}
    for alloc_id in [a for a, alloc in allocs.items() if not is_live(alloc) and a not in keep]:
        del allocs[alloc_id]
