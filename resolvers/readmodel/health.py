"""What the running state means: errors and health roll-ups, the same on both doors.

The front doors never judge running state themselves: REST's `lasterror`/`deployerror` and
GraphQL's `lastError`/`deployError`/`health` come from these functions.

A proc's health, the first rule that applies:

| health   | when                                                                          |
|----------|-------------------------------------------------------------------------------|
| STOPPED  | not deployed, 0 instances wanted, or every instance stopped on request        |
| ROLLING  | a rollout (rolling update or restart) is replacing instances now              |
| FAILING  | no instance serves, and one has failed (or the scheduler has no such job)      |
| ROLLING  | no instance serves yet, and none has failed: they are starting                |
| DEGRADED | an instance failed, the last rollout stopped, an instance runs another        |
|          | release than the proc's, or the last operation on the proc failed            |
| ROLLING  | fewer instances serve than wanted, the others starting or not placed yet      |
| HEALTHY  | every wanted instance serves the proc's release                               |

An instance serves when it runs and its health check (if any) passes; a oneshot that
completed counts as serving. An app rolls up its procs (portals left out): STOPPED when
every proc is; else ROLLING while a deploy is being applied; FAILING when every running
proc fails (an app whose instances all failed is never healthy); DEGRADED when some proc
fails; ROLLING when some proc rolls; DEGRADED when some proc is degraded or the app's last
operation failed; else HEALTHY. It is unknown (None) when the scheduler cannot be read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

from backends.types import InstanceState, InstanceStatus, ProcState, RolloutStatus
from resolvers.readmodel.views import AppStatus, AppType, AppView, ProcType, ProcView

__all__ = [
    "Health",
    "ProcRead",
    "app_health",
    "deploy_error",
    "proc_error",
    "proc_health",
    "running_job_ids",
    "running_releases",
]

ProcRead = tuple[ProcView, ProcState | None]  # None: the scheduler could not be read


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILING = "failing"
    ROLLING = "rolling"
    STOPPED = "stopped"


def running_job_ids(app: AppView, procs: Iterable[ProcView]) -> list[str]:
    """The jobs the scheduler runs for the app's own procs (a resource is a template and a
    portal runs per client: neither is one)."""
    if app.apptype is AppType.RESOURCE:
        return []
    return [p.job_id for p in procs if p.deployed and p.type is not ProcType.PORTAL]


def proc_error(view: ProcView, state: ProcState | None) -> str:
    """The scheduler's error for the proc (a rollout that stopped, the instance that failed
    last), else the one the last operation on it recorded."""
    if state is not None and state.exists and state.last_error:
        return state.last_error
    return view.last_error


def deploy_error(app: AppView, procs: Sequence[ProcRead]) -> str:
    """The app's last operation's error, else, as LAIN did, the error of the last proc
    (lain.yaml order, portals left out) that has one."""
    if app.last_error:
        return app.last_error
    errors = [proc_error(view, state) for view, state in procs if view.type is not ProcType.PORTAL]
    return next((error for error in reversed(errors) if error), "")


def running_releases(state: ProcState | None) -> list[str]:
    """The releases the proc's live instances were started with, oldest first."""
    if state is None:
        return []
    live = (InstanceStatus.PENDING, InstanceStatus.RUNNING, InstanceStatus.FAILED)
    shown = {i.release for i in state.instances if i.status in live and i.release}
    return sorted(shown | set(state.shadowed_releases))


def _serves(instance: InstanceState) -> bool:
    if instance.status is InstanceStatus.COMPLETE:
        return True
    return instance.status is InstanceStatus.RUNNING and instance.healthy is not False


def _starting(instance: InstanceState) -> bool:
    return instance.status is InstanceStatus.PENDING and not instance.last_error


def proc_health(view: ProcView, state: ProcState | None) -> Health | None:
    """The proc's health (see the module's table); None when its state is unknown."""
    if not view.deployed or view.num_instances == 0 or view.type is ProcType.PORTAL:
        return Health.STOPPED
    if state is None:
        return None
    if not state.exists:
        return Health.FAILING
    if state.rollout is RolloutStatus.RUNNING:
        return Health.ROLLING
    active = [i for i in state.instances if i.status is not InstanceStatus.EXITED]
    if state.instances and not active:
        return Health.STOPPED
    serving = [i for i in active if _serves(i)]
    failed = [i for i in active if not _serves(i) and not _starting(i)]
    if not serving:
        return Health.FAILING if failed else Health.ROLLING
    others = [release for release in running_releases(state) if release != view.meta_version]
    if failed or state.rollout is RolloutStatus.STOPPED or others or view.last_error:
        return Health.DEGRADED
    if len(serving) < view.num_instances:
        return Health.ROLLING  # the rest are starting or not placed yet
    return Health.HEALTHY


def app_health(app: AppView, procs: Sequence[ProcRead]) -> Health | None:
    """The app's roll-up of its procs' health (see the module's text)."""
    if app.meta_version is None:
        return Health.STOPPED
    healths = [proc_health(view, state) for view, state in procs]
    if any(health is None for health in healths):
        return None
    active = [health for health in healths if health is not Health.STOPPED]
    if not active and app.status is not AppStatus.DEPLOYING:
        return Health.STOPPED
    if app.status is AppStatus.DEPLOYING:
        return Health.ROLLING
    if all(health is Health.FAILING for health in active):
        return Health.FAILING
    if Health.FAILING in active:
        return Health.DEGRADED
    if Health.ROLLING in active:
        return Health.ROLLING
    if Health.DEGRADED in active or app.last_error:
        return Health.DEGRADED
    return Health.HEALTHY
