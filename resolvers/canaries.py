"""Canary rollouts: checking how an update asks for them, and promoting them.

An update with canaries (`update_app(canary=...)`) registers each service proc whose spec
changes so that the scheduler first starts `canary.instances` new instances beside the old
ones and waits. `promote_app` here and `procs.promote_proc` let the rest of the rollout go
on, or the scheduler promotes by itself once the canaries stayed healthy
`auto_promote_after` seconds. While it waits the rollout is under way: other operations on
the proc are refused as during any rollout and the reconciler leaves it alone; a
promotion, an undeploy, and an update (which replaces canaries not yet promoted: how they
are dropped) get through.
"""

from __future__ import annotations

import dataclasses

from backends.errors import SchedulerError
from backends.types import Canary, ProcJob
from resolvers.core import access, audit
from resolvers.core.backend import ensure_available, scheduler_errors, translate
from resolvers.core.context import OpContext
from resolvers.core.errors import Conflict, InvalidInput, NotFound
from resolvers.core.outcomes import mutation
from resolvers.readmodel.from_rows import app_view
from resolvers.readmodel.views import AppView, ProcType
from resolvers.releases import require_app
from store import queries
from store.models import AppStatus

__all__ = [
    "MAX_AUTO_PROMOTE_AFTER",
    "MAX_CANARIES",
    "check_canary",
    "promote_app",
    "require_canary_deploys",
    "with_canary",
]

MAX_CANARIES = 1000  # as many as a proc may have instances
MAX_AUTO_PROMOTE_AFTER = 3600  # seconds; Nomad's healthy deadline is 5 minutes beyond it


def check_canary(ctx: OpContext, canary: Canary | None) -> None:
    """Refuse, before anything is stored, canaries that are out of range or that this
    console's scheduler cannot run.

    Raises:
        InvalidInput
    """
    if canary is None:
        return
    instances = canary.instances
    if isinstance(instances, bool) or not isinstance(instances, int):
        raise InvalidInput("canary.instances must be an integer", field="canary.instances")
    if not 1 <= instances <= MAX_CANARIES:
        raise InvalidInput(
            f"canary.instances must be between 1 and {MAX_CANARIES}, got {instances}",
            field="canary.instances",
        )
    after = canary.auto_promote_after
    if after is not None and (
        isinstance(after, bool)
        or not isinstance(after, int)
        or not 1 <= after <= MAX_AUTO_PROMOTE_AFTER
    ):
        raise InvalidInput(
            f"canary.autoPromoteAfter must be a number of seconds between 1 and "
            f"{MAX_AUTO_PROMOTE_AFTER}, got {after!r}",
            field="canary.autoPromoteAfter",
        )
    require_canary_deploys(ctx, "canary")


def with_canary(app: str, jobs: tuple[ProcJob, ...], canary: Canary | None) -> tuple[ProcJob, ...]:
    """The app's own long-running procs roll out with `canary`; oneshots have no rollout
    and portals run for client apps, so they are applied as they are."""
    if canary is None:
        return jobs
    return tuple(
        dataclasses.replace(job, canary=canary)
        if job.app == app and job.is_service and job.proc_type != ProcType.PORTAL
        else job
        for job in jobs
    )


@mutation("promoteApp")
async def promote_app(ctx: OpContext, *, name: str) -> AppView:
    """Promote the canaries of every proc of the app whose rollout waits for them.

    Raises:
        NotFound: no such app, or it is not deployed. Conflict: no canaries await a
        promotion, they are not all healthy yet, or the app is busy. InvalidInput: the
        scheduler has no canaries. Forbidden. BackendUnavailable.
    """
    await access.check_app(ctx, name)
    require_canary_deploys(ctx, "name")
    await ensure_available(ctx)
    async with ctx.services.guard.app(name, "a promotion"):
        async with ctx.sessions() as session:
            row = await require_app(session, name)
            if row.meta_version is None:
                raise NotFound(f"app {name} has not been deployed", field="name")
            if row.status is AppStatus.DEPLOYING:
                raise Conflict(f"app {name} is being deployed; try again when it has finished")
            procs = {
                f"{name}.{proc.proc_type}.{proc.name}": proc.name
                for proc in await queries.procs_of(session, row.id)
                if proc.deployed and proc.proc_type != ProcType.PORTAL
            }
        with scheduler_errors():
            states = await ctx.scheduler.states(list(procs)) if procs else {}
        waiting = [
            job_id
            for job_id, state in states.items()
            if state.canary is not None and not state.canary.promoted
        ]
        if not waiting:
            raise Conflict(
                f"app {name} has no canaries to promote: no rollout with canaries is under way",
                field="name",
            )
        async with ctx.sessions.begin() as session:
            audit.record(
                session,
                ctx.principal,
                "PROMOTE",
                name,
                meta_version=row.meta_version,
                message=" ".join(procs[job_id] for job_id in waiting),
            )
        errors: dict[str, SchedulerError] = {}
        for job_id in waiting:
            try:
                await ctx.scheduler.promote(job_id)
            except SchedulerError as exc:
                errors[job_id] = exc
    if errors:
        summary = "; ".join(f"{job_id}: {error}" for job_id, error in errors.items())
        kind = type(translate(next(iter(errors.values()))))
        raise kind(f"promotion of {name} failed: {summary}")
    return app_view(row)


def require_canary_deploys(ctx: OpContext, field: str) -> None:
    """Raises InvalidInput, naming `field`, when the scheduler has no canaries."""
    if not ctx.scheduler.canary_deploys:
        raise InvalidInput(
            "canary deploys need the Nomad backend (LAIN_CONSOLE_BACKEND=nomad); this "
            "console's scheduler replaces instances one at a time and has no canaries",
            field=field,
        )
