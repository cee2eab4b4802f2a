"""Nomad jobs, allocations and deployments -> our ProcState and InstanceState. Pure.

An allocation's name is `<job>.<group>[<index>]`; the index is the stable slot Nomad keeps
across replacements, and LAIN's instance number is that index + 1. Several allocations
can share an index (a rolling update, a reschedule, a restart of the whole job): the
instance is the newest live one, else the newest of all.

The same functions serve list stubs (`/v1/allocations`) and the full allocations in event
payloads, which carry the same field names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from backends.nomad.jobs import (
    META_META_VERSION,
    META_SPEC_HASH,
    PORT_LABEL,
    decode_spec,
)
from backends.types import (
    CanaryState,
    InstanceState,
    InstanceStatus,
    ProcJob,
    ProcState,
    RolloutStatus,
)

__all__ = [
    "JobView",
    "Placement",
    "alloc_index",
    "check_verdict",
    "deployment_canary",
    "deployment_error",
    "deployment_rollout",
    "is_live",
    "placement",
    "proc_state",
    "reverted_version",
]

_TERMINAL = frozenset({"complete", "failed", "lost"})
# Task event types that mean something went wrong (client/structs TaskEvent types).
_FAILURE_EVENTS = frozenset(
    {
        "Driver Failure",
        "Setup Failure",
        "Failed Validation",
        "Not Restarting",
        "Task hook failed",
        "Failed Artifact Download",
        "Sibling Task Failed",
        "Alloc Unhealthy",
    }
)
_ZERO_TIME = "0001-01-01T00:00:00Z"
# nomad/deploymentwatcher: "... - rolling back to job version N" on an auto-revert.
_ROLLING_BACK = "rolling back"
# Nomad's defaults (api.Task / api.UpdateStrategy Canonicalize): 5 s and 5 min.
_DEFAULT_KILL_TIMEOUT = 5.0
_DEFAULT_HEALTHY_DEADLINE = 300.0
_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class JobView:
    """What the mapping needs from one Nomad job (from a read, a list or an event)."""

    job_id: str
    group: str
    task: str
    count: int
    version: int
    create_index: int
    modify_index: int
    batch: bool
    stopped: bool
    has_check: bool
    env: tuple[str, ...]
    image: str
    memory_bytes: int
    meta_version: str
    spec_hash: str
    spec: ProcJob | None  # None: a job lain-console did not render
    kill_timeout: float = _DEFAULT_KILL_TIMEOUT  # seconds Nomad waits before SIGKILL
    healthy_deadline: float = _DEFAULT_HEALTHY_DEADLINE  # seconds to become healthy

    @classmethod
    def from_job(cls, job: Mapping[str, Any]) -> JobView:
        groups = job.get("TaskGroups") or [{}]
        meta = job.get("Meta") or {}
        group = groups[0]
        tasks = group.get("Tasks") or [{}]
        task = tasks[0]
        count = int(group.get("Count") or 0)
        spec = decode_spec(meta, num_instances=count, env=task.get("Env"))
        services = [*(group.get("Services") or ()), *(task.get("Services") or ())]
        resources = task.get("Resources") or {}
        config = task.get("Config") or {}
        env = task.get("Env") or {}
        return cls(
            job_id=str(job.get("ID", "")),
            group=str(group.get("Name", "")),
            task=str(task.get("Name", "")),
            count=count,
            version=int(job.get("Version") or 0),
            create_index=int(job.get("CreateIndex") or 0),
            modify_index=int(job.get("ModifyIndex") or 0),
            batch=job.get("Type") == "batch",
            stopped=bool(job.get("Stop")),
            has_check=any(service.get("Checks") for service in services),
            env=tuple(f"{key}={value}" for key, value in env.items()),
            image=spec.image if spec else str(config.get("image", "")),
            memory_bytes=(
                spec.memory_bytes if spec else int(resources.get("MemoryMB") or 0) * _MIB
            ),
            meta_version=str(meta.get(META_META_VERSION, "")),
            spec_hash=str(meta.get(META_SPEC_HASH, "")),
            spec=spec,
            kill_timeout=_seconds(task.get("KillTimeout"), _DEFAULT_KILL_TIMEOUT),
            healthy_deadline=_seconds(
                (job.get("Update") or {}).get("HealthyDeadline"), _DEFAULT_HEALTHY_DEADLINE
            ),
        )


def _seconds(nanoseconds: Any, default: float) -> float:
    return nanoseconds / 1e9 if isinstance(nanoseconds, int) and nanoseconds > 0 else default


def proc_state(
    view: JobView,
    instances: tuple[InstanceState, ...],
    *,
    last_error: str = "",
    rollout: RolloutStatus = RolloutStatus.NONE,
    reverted_spec_hash: str = "",
    canary: CanaryState | None = None,
    shadowed: tuple[str, ...] = (),
) -> ProcState:
    """The proc as Nomad runs it; cpu is the LAIN level from the stored spec (0 if none)."""
    return ProcState(
        job_id=view.job_id,
        exists=True,
        num_instances=view.count,
        cpu=view.spec.cpu if view.spec else 0,
        memory_bytes=view.memory_bytes,
        image=view.image,
        meta_version=view.meta_version,
        spec_hash=view.spec_hash,
        instances=instances,
        last_error=last_error,
        rollout=rollout,
        reverted_spec_hash=reverted_spec_hash,
        canary=canary,
        shadowed_releases=shadowed,
    )


# Deployment statuses (nomad/structs: DeploymentStatus*) of a deployment still under way.
_DEPLOYING = frozenset({"running", "pending", "paused", "blocked", "unblocking", "initializing"})


def deployment_rollout(deployments: Iterable[Mapping[str, Any]]) -> RolloutStatus:
    """RUNNING while the latest deployment is under way, STOPPED when it failed (Nomad
    stopped placing new allocations; with auto-revert the revert is the next one)."""
    latest = max(deployments, key=lambda d: int(d.get("CreateIndex") or 0), default=None)
    if latest is None:
        return RolloutStatus.NONE
    status = latest.get("Status")
    if status in _DEPLOYING:
        return RolloutStatus.RUNNING
    return RolloutStatus.STOPPED if status == "failed" else RolloutStatus.NONE


def deployment_canary(deployments: Iterable[Mapping[str, Any]]) -> CanaryState | None:
    """The canaries of the latest deployment while it is under way; None when it has none.

    From the deployment's TaskGroups (nomad/structs/deployment.go, DeploymentState):
    DesiredCanaries, PlacedCanaries (alloc IDs), Promoted, AutoPromote. Until a promotion
    only canaries are placed in the deployment, so its HealthyAllocs are healthy canaries.
    """
    latest = max(deployments, key=lambda d: int(d.get("CreateIndex") or 0), default=None)
    if latest is None or latest.get("Status") not in _DEPLOYING:
        return None
    groups = [
        group
        for group in (latest.get("TaskGroups") or {}).values()
        if isinstance(group, dict) and int(group.get("DesiredCanaries") or 0) > 0
    ]
    if not groups:
        return None
    placed = [len(group.get("PlacedCanaries") or ()) for group in groups]
    return CanaryState(
        desired=sum(int(group["DesiredCanaries"]) for group in groups),
        placed=sum(placed),
        healthy=sum(
            min(int(group.get("HealthyAllocs") or 0), count)
            for group, count in zip(groups, placed, strict=True)
        ),
        promoted=all(bool(group.get("Promoted")) for group in groups),
        auto_promote=all(bool(group.get("AutoPromote")) for group in groups),
    )


def deployment_error(deployments: Iterable[Mapping[str, Any]]) -> str:
    """The proc-level error a job's deployments leave: the latest one's failure, or the
    failure an auto-revert answered (the latest deployment rolls out the reverted version
    then, and the error must stay visible until a new release is deployed)."""
    failed = _standing_failure(deployments)
    return _failure(failed) if failed is not None else ""


def reverted_version(deployments: Iterable[Mapping[str, Any]]) -> int | None:
    """The job version whose failed deployment Nomad rolled back (Update.AutoRevert), while
    that is still the latest word of the job's deployments; None otherwise."""
    failed = _standing_failure(deployments)
    if failed is None or _ROLLING_BACK not in str(failed.get("StatusDescription", "")):
        return None
    return int(failed.get("JobVersion") or 0)


def _standing_failure(deployments: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    ordered = sorted(deployments, key=lambda d: int(d.get("CreateIndex") or 0), reverse=True)
    if not ordered:
        return None
    latest = ordered[0]
    if latest.get("Status") == "failed":
        return latest
    if len(ordered) > 1:
        previous = ordered[1]
        reverted = _ROLLING_BACK in str(previous.get("StatusDescription", ""))
        next_version = int(previous.get("JobVersion") or 0) + 1
        if (
            previous.get("Status") == "failed"
            and reverted
            and latest.get("JobVersion") == next_version
        ):
            return previous
    return None


def _failure(deployment: Mapping[str, Any]) -> str:
    description = deployment.get("StatusDescription") or "no reason given"
    return f"Nomad deployment {str(deployment.get('ID', ''))[:8]} failed: {description}"


def alloc_index(alloc: Mapping[str, Any]) -> int | None:
    """The index in `<job>.<group>[<index>]`, or None for a name of another shape."""
    name = str(alloc.get("Name", ""))
    head, sep, tail = name.rpartition("[")
    if not sep or not head or not tail.endswith("]"):
        return None
    try:
        return int(tail[:-1])
    except ValueError:
        return None


def is_live(alloc: Mapping[str, Any]) -> bool:
    """Meant to run and not finished: the scheduler still counts it for its index."""
    return alloc.get("DesiredStatus") == "run" and alloc.get("ClientStatus") not in _TERMINAL


class Placement(NamedTuple):
    """A job's instances, and the releases of live allocations they leave out."""

    instances: tuple[InstanceState, ...]
    shadowed_releases: tuple[str, ...]


def placement(
    view: JobView,
    allocs: Iterable[Mapping[str, Any]],
    *,
    checks: Mapping[str, bool] | None = None,
    envs: Mapping[int, tuple[str, ...]] | None = None,
    releases: Mapping[int, str] | None = None,
) -> Placement:
    """The job's instances, numbered from 1, in order; and the releases of the live
    allocations that another one's index hides.

    Allocations of an earlier job with the same ID (created before this one) are ignored.
    An index at or beyond the count shows only while its allocation is still live, i.e.
    until a scale-down has finished stopping it. `checks` maps alloc IDs to the live result
    of their Nomad-native checks, which wins over what a deployment once judged. `envs` and
    `releases` give the env and meta version of earlier versions of the job, for
    allocations that run one of them (a rolling update under way or stopped).

    An index shows one instance, the newest live allocation; during a canary rollout the
    old instances whose slots the canaries took still run and still serve, so their
    releases are shadowed, not gone.
    """
    releases = releases or {}
    found = []
    shadowed: set[str] = set()
    for index, group in sorted(_by_index(view, allocs).items()):
        chosen = _pick(group)
        shadowed.update(
            _release(view, alloc, releases)
            for alloc in group
            if alloc is not chosen and is_live(alloc)
        )
        if index >= view.count and not is_live(chosen):
            continue
        found.append(_instance(view, index + 1, chosen, checks or {}, envs or {}, releases))
    return Placement(tuple(found), tuple(sorted(release for release in shadowed if release)))


def _by_index(
    view: JobView, allocs: Iterable[Mapping[str, Any]]
) -> dict[int, list[Mapping[str, Any]]]:
    """This job's allocations by index (an earlier job with the same ID left out)."""
    by_index: dict[int, list[Mapping[str, Any]]] = {}
    for alloc in allocs:
        index = alloc_index(alloc)
        if index is None or alloc.get("TaskGroup", view.group) != view.group:
            continue
        if int(alloc.get("CreateIndex") or 0) < view.create_index:
            continue
        by_index.setdefault(index, []).append(alloc)
    return by_index


def _version(view: JobView, alloc: Mapping[str, Any]) -> int:
    """The job version the allocation runs (the job's own when the stub leaves it out)."""
    version = alloc.get("JobVersion")
    return view.version if version is None else int(version)


def _release(view: JobView, alloc: Mapping[str, Any], releases: Mapping[int, str]) -> str:
    version = _version(view, alloc)
    return view.meta_version if version == view.version else releases.get(version, "")


def _pick(allocs: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    def newest(alloc: Mapping[str, Any]) -> int:
        return int(alloc.get("CreateIndex") or 0)

    live = [alloc for alloc in allocs if is_live(alloc)]
    return max(live or allocs, key=newest)


def _instance(
    view: JobView,
    number: int,
    alloc: Mapping[str, Any],
    checks: Mapping[str, bool],
    envs: Mapping[int, tuple[str, ...]],
    releases: Mapping[int, str],
) -> InstanceState:
    alloc_id = str(alloc.get("ID", ""))
    task = _task_state(view, alloc)
    events = list(task.get("Events") or ())
    ip, port = _address(alloc)
    version = _version(view, alloc)
    return InstanceState(
        job_id=view.job_id,
        number=number,
        status=_status(view, alloc, events),
        healthy=_healthy(view, alloc, checks.get(alloc_id)),
        instance_id=alloc_id,
        ip=ip,
        port=port,
        node=alloc.get("NodeName") or None,
        started_at=_time(task.get("StartedAt")),
        restarts=sum(int(state.get("Restarts") or 0) for state in _task_states(alloc)),
        last_error=_last_error(alloc, events),
        exit_code=_exit_code(events),
        env=view.env if version == view.version else envs.get(version, ()),
        release=_release(view, alloc, releases),
    )


def _status(view: JobView, alloc: Mapping[str, Any], events: list[Any]) -> InstanceStatus:
    client = alloc.get("ClientStatus")
    desired = alloc.get("DesiredStatus")
    if client == "running":
        return InstanceStatus.RUNNING
    if client == "pending":
        return InstanceStatus.PENDING if desired == "run" else InstanceStatus.EXITED
    if client == "complete":
        # A service only completes when told to stop; a oneshot completes by finishing.
        if view.batch and desired == "run" and _exit_code(events) in (0, None):
            return InstanceStatus.COMPLETE
        return InstanceStatus.EXITED
    # failed, lost (the node went away) and unknown (the node is disconnected).
    return InstanceStatus.FAILED


def check_verdict(results: Mapping[str, Any]) -> bool | None:
    """What `/v1/allocation/:id/checks` says of an allocation: healthy when every check
    passes, None while any is still pending or none has run."""
    statuses = [result.get("Status") for result in results.values() if isinstance(result, dict)]
    if not statuses or "pending" in statuses:
        return None
    return all(status == "success" for status in statuses)


def _healthy(view: JobView, alloc: Mapping[str, Any], checked: bool | None) -> bool | None:
    if not view.has_check:
        return None
    if alloc.get("ClientStatus") == "running" and checked is not None:
        # The live check result wins: Nomad sets DeploymentStatus.Healthy once per
        # deployment and then stops watching (client/allocrunner/health_hook.go).
        return checked
    deployment = alloc.get("DeploymentStatus") or {}
    healthy = deployment.get("Healthy")
    if isinstance(healthy, bool):
        return healthy
    if alloc.get("ClientStatus") != "running":
        return False if alloc.get("ClientStatus") in _TERMINAL else None
    return checked


def _task_states(alloc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((alloc.get("TaskStates") or {}).values())


def _task_state(view: JobView, alloc: Mapping[str, Any]) -> Mapping[str, Any]:
    states = alloc.get("TaskStates") or {}
    state = states.get(view.task)
    if state is None and states:
        state = next(iter(states.values()))
    return state or {}


def _address(alloc: Mapping[str, Any]) -> tuple[str | None, int | None]:
    shared = (alloc.get("AllocatedResources") or {}).get("Shared") or {}
    for port in shared.get("Ports") or ():
        if port.get("Label") == PORT_LABEL:
            return port.get("HostIP") or None, port.get("Value")
    for network in shared.get("Networks") or ():
        for port in [*(network.get("DynamicPorts") or ()), *(network.get("ReservedPorts") or ())]:
            if port.get("Label") == PORT_LABEL:
                return network.get("IP") or None, port.get("Value")
    return None, None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value or value == _ZERO_TIME:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _is_failure(event: Mapping[str, Any]) -> bool:
    kind = event.get("Type")
    if kind == "Terminated":
        return int(event.get("ExitCode") or 0) != 0
    return bool(event.get("FailsTask")) or kind in _FAILURE_EVENTS


def _last_error(alloc: Mapping[str, Any], events: list[Any]) -> str:
    for event in reversed(events):
        if _is_failure(event):
            return str(
                event.get("DisplayMessage")
                or event.get("DriverError")
                or event.get("Message")
                or event.get("Type")
            )
    if alloc.get("ClientStatus") in ("failed", "lost", "unknown"):
        return str(alloc.get("ClientDescription") or alloc.get("ClientStatus"))
    return ""


def _exit_code(events: list[Any]) -> int | None:
    for event in reversed(events):
        if event.get("Type") == "Terminated":
            return int(event.get("ExitCode") or 0)
    return None
