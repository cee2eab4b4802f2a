"""Reading what Nomad runs for a set of jobs in few calls: the jobs (in parallel), then
their allocations and deployments in one filtered list call each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from backends.errors import SchedulerError
from backends.nomad.allocs import (
    JobView,
    deployment_canary,
    deployment_error,
    deployment_rollout,
    placement,
    proc_state,
    reverted_version,
)
from backends.nomad.client import NomadClient
from backends.nomad.jobs import META_SPEC_HASH
from backends.types import ProcState

__all__ = ["JobRead", "Snapshot", "read_jobs"]


@dataclass(frozen=True, slots=True)
class JobRead:
    """One job as read, with the allocations and deployments of its incarnation."""

    job: dict[str, Any]
    view: JobView
    allocs: tuple[dict[str, Any], ...]
    deployments: tuple[dict[str, Any], ...]
    # The lain spec hash of earlier versions, read only when a rollback needs naming.
    version_hashes: dict[int, str] = field(default_factory=dict)

    @property
    def last_error(self) -> str:
        return deployment_error(self.deployments)

    def proc_state(
        self,
        *,
        checks: dict[str, bool] | None = None,
        releases: Mapping[int, str] | None = None,
    ) -> ProcState:
        found = placement(self.view, self.allocs, checks=checks, releases=releases)
        reverted = reverted_version(self.deployments)
        return proc_state(
            self.view,
            found.instances,
            last_error=self.last_error,
            rollout=deployment_rollout(self.deployments),
            reverted_spec_hash="" if reverted is None else self.version_hashes.get(reverted, ""),
            canary=deployment_canary(self.deployments),
            shadowed=found.shadowed_releases,
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Jobs keyed by ID (None: no such job) and the lowest X-Nomad-Index of the lists read
    (0 when nothing was listed): every change at or below it is in this read."""

    jobs: dict[str, JobRead | None]
    index: int


async def read_jobs(client: NomadClient, job_ids: Sequence[str]) -> Snapshot:
    """Read the jobs, their allocations and deployments. Raises SchedulerUnavailable."""
    unique = list(dict.fromkeys(job_ids))
    raw: dict[str, dict[str, Any] | None] = {}
    failures: list[SchedulerError] = []

    async def read_one(job_id: str) -> None:
        try:
            raw[job_id] = await client.read_job(job_id)
        except SchedulerError as exc:
            failures.append(exc)  # raised below as itself, not inside an ExceptionGroup

    # The client's limiter bounds how many of these run at once.
    async with anyio.create_task_group() as group:
        for job_id in unique:
            group.start_soon(read_one, job_id)
    if failures:
        raise failures[0]
    present = [job_id for job_id in unique if raw[job_id] is not None]
    allocs, alloc_index = await client.list_allocations(present) if present else ([], 0)
    deployments, deploy_index = await client.list_deployments(present) if present else ([], 0)

    allocs_by_job: dict[str, list[dict[str, Any]]] = {}
    for alloc in allocs:
        allocs_by_job.setdefault(str(alloc.get("JobID")), []).append(alloc)
    reads: dict[str, JobRead | None] = {}
    for job_id in unique:
        job = raw[job_id]
        if job is None:
            reads[job_id] = None
            continue
        view = JobView.from_job(job)
        mine = incarnation_deployments(view, deployments)
        reads[job_id] = JobRead(
            job=job,
            view=view,
            allocs=tuple(allocs_by_job.get(job_id, ())),
            deployments=mine,
            # Rare (a release Nomad rolled back): one more call, for that job only.
            version_hashes=(
                await version_hashes(client, job_id) if reverted_version(mine) is not None else {}
            ),
        )
    indexes = [index for index in (alloc_index, deploy_index) if index]
    return Snapshot(jobs=reads, index=min(indexes, default=0))


async def version_hashes(client: NomadClient, job_id: str) -> dict[int, str]:
    """The lain spec hash of each version Nomad keeps of the job."""
    return {
        int(version.get("Version") or 0): str((version.get("Meta") or {}).get(META_SPEC_HASH, ""))
        for version in await client.job_versions(job_id)
    }


def incarnation_deployments(
    view: JobView, deployments: list[dict[str, Any]]
) -> tuple[dict[str, Any], ...]:
    """The deployments of this incarnation of the job (not of an earlier one with the
    same ID)."""
    return tuple(
        deployment
        for deployment in deployments
        if deployment.get("JobID") == view.job_id
        and int(deployment.get("JobCreateIndex") or 0) == view.create_index
    )
