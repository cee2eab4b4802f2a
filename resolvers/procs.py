"""Procs: read them with their running state; scale, resize, start/stop/restart, (un)deploy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backends.errors import JobNotFound, SchedulerConflict, SchedulerError
from backends.types import InstanceAction
from lainyaml import InvalidSize, parse_memory
from resolvers.canaries import require_canary_deploys
from resolvers.core import access, audit
from resolvers.core.backend import (
    ensure_available,
    refuse_while_rolling,
    scheduler_errors,
    translate,
)
from resolvers.core.context import OpContext
from resolvers.core.errors import Conflict, InvalidInput, NotFound
from resolvers.core.jobs import build_job
from resolvers.core.outcomes import mutation
from resolvers.core.removals import remove_job
from resolvers.readmodel.from_rows import clear_overrides, proc_views
from resolvers.readmodel.views import ProcState, ProcType, ProcView
from resolvers.releases import require_app
from store import queries
from store.models import App, AppStatus, Proc, Release

__all__ = [
    "MAX_INSTANCES",
    "control_proc",
    "deploy_proc",
    "get_proc",
    "list_procs",
    "proc_states",
    "promote_proc",
    "resize_proc",
    "scale_proc",
    "undeploy_proc",
]

MAX_INSTANCES = 1000
MAX_CPU = 8  # deployd caps LAIN's CPU level at 8
MAX_MEMORY_BYTES = 1024**4  # 1 TB: anything above is a typo

# What may run while a rollout is under way: undeploying stops it, promoting its canaries
# is what it waits for.
_DURING_ROLLOUTS = frozenset({"UNDEPLOY_PROC", "PROMOTE"})

# A proc mutation in two parts: the change to the stored row (returning the audit message),
# then the scheduler call made with the new desired state.
_Change = Callable[[Proc, ProcView], Awaitable[str]]
_Run = Callable[[ProcView], Awaitable[None]]


async def list_procs(ctx: OpContext, *, app: str) -> list[ProcView]:
    """Every proc of a deployed app, portals included, in lain.yaml order. Raises: NotFound."""
    async with ctx.sessions() as session:
        await access.check_app(ctx, app, session=session)
        row = await _deployed(session, app)
        return await _views(ctx, session, row, await queries.procs_of(session, row.id))


async def get_proc(ctx: OpContext, *, app: str, proc: str) -> ProcView:
    """Raises: NotFound (app not deployed, or no such proc)."""
    async with ctx.sessions() as session:
        await access.check_app(ctx, app, session=session)
        row = await _deployed(session, app)
        _, view = await _proc(ctx, session, row, proc)
    return view


async def proc_states(ctx: OpContext, job_ids: Sequence[str]) -> dict[str, ProcState]:
    """Running state of many procs in one scheduler read. Raises: BackendUnavailable."""
    with scheduler_errors():
        return await ctx.scheduler.states(list(job_ids))


@mutation("scaleProc")
async def scale_proc(ctx: OpContext, *, app: str, proc: str, num_instances: int) -> ProcView:
    """Run exactly `num_instances` instances of a proc (0 stops them all).

    Raises:
        InvalidInput: not an integer in 0..1000, or a portal. NotFound. Conflict.
        BackendUnavailable.
    """
    if isinstance(num_instances, bool) or not isinstance(num_instances, int):
        raise InvalidInput("numInstances must be an integer", field="numInstances")
    if not 0 <= num_instances <= MAX_INSTANCES:
        raise InvalidInput(
            f"numInstances must be between 0 and {MAX_INSTANCES}, got {num_instances}",
            field="numInstances",
        )

    previous: list[int | None] = []

    async def change(row: Proc, current: ProcView) -> str:
        previous.append(row.num_instances)
        row.num_instances = num_instances
        return f"num_instances={num_instances}"

    async def run(view: ProcView) -> None:
        await ctx.scheduler.scale(view.job_id, num_instances)

    def undo(row: Proc) -> None:
        # Nomad refused (a deployment is running): nothing changed there, so nothing
        # changes here either; the answer (CONFLICT) and the stored count agree, and the
        # reconciler has nothing to apply later behind the user's back.
        row.num_instances = previous[0]

    return await _operate(ctx, app, proc, "SCALE", change, run, undo_on_conflict=undo)


@mutation("resizeProc")
async def resize_proc(
    ctx: OpContext, *, app: str, proc: str, cpu: int | None = None, memory: str | None = None
) -> ProcView:
    """Change a proc's cpu and/or memory; its instances are replaced one at a time.

    Raises:
        InvalidInput: neither given, cpu not in 0..8, memory not a size. NotFound. Conflict.
        BackendUnavailable.
    """
    if cpu is None and memory is None:
        raise InvalidInput("give cpu, memory or both", field="cpu")
    if cpu is not None and (
        isinstance(cpu, bool) or not isinstance(cpu, int) or not 0 <= cpu <= MAX_CPU
    ):
        raise InvalidInput(f"cpu must be an integer between 0 and {MAX_CPU}", field="cpu")
    if memory is not None:
        try:
            size = parse_memory(memory)
        except InvalidSize as exc:
            raise InvalidInput(f"memory: {exc}", field="memory") from None
        if size > MAX_MEMORY_BYTES:
            raise InvalidInput("memory must be at most 1 TB", field="memory")

    async def change(row: Proc, current: ProcView) -> str:
        if cpu is not None:
            row.cpu = cpu
        if memory is not None:
            row.memory = memory
        return f"cpu={cpu} memory={memory}"

    async def run(view: ProcView) -> None:
        await ctx.scheduler.resize(view.job_id, cpu=view.cpu, memory_bytes=view.memory_bytes)

    return await _operate(ctx, app, proc, "RESIZE", change, run)


def _control_kind(arguments: Mapping[str, Any]) -> str:
    return f"{InstanceAction(arguments['action']).value}Proc"  # restartProc, stopProc, startProc


@mutation(_control_kind)
async def control_proc(
    ctx: OpContext, *, app: str, proc: str, action: InstanceAction, instance: int | None = None
) -> ProcView:
    """Start, stop or restart one instance (numbered from 1) or, without one, all of them.

    Raises:
        InvalidInput: no such instance number. NotFound. Conflict. BackendUnavailable.
    """
    if instance is not None and (
        isinstance(instance, bool) or not isinstance(instance, int) or instance < 1
    ):
        raise InvalidInput("instance must be a positive integer", field="instance")

    async def change(row: Proc, current: ProcView) -> str:
        if instance is None:
            return "all instances"
        if instance > current.num_instances:
            raise InvalidInput(
                f"proc {proc} has {current.num_instances} instances; "
                f"there is no instance {instance}",
                field="instance",
            )
        # The job names the instance's container in LAIN's oplog (rest_compat.oplog).
        return f"instance={instance} of {current.job_id}"

    async def run(view: ProcView) -> None:
        await ctx.scheduler.control(view.job_id, action, instance)

    return await _operate(ctx, app, proc, str(action).upper(), change, run)


@mutation("promoteProc")
async def promote_proc(ctx: OpContext, *, app: str, proc: str) -> ProcView:
    """Promote the canaries of the proc's rollout: the rest of its instances are replaced.

    Raises:
        NotFound. Conflict: no canaries await a promotion, they are not all healthy yet, or
        the proc is busy. InvalidInput: a portal, or the scheduler has no canaries.
        Forbidden. BackendUnavailable.
    """
    await access.check_app(ctx, app)
    require_canary_deploys(ctx, "proc")

    async def change(row: Proc, current: ProcView) -> str:
        return ""

    async def run(view: ProcView) -> None:
        await ctx.scheduler.promote(view.job_id)

    def unchanged(row: Proc) -> None:
        # Nothing to promote (or not yet) changed nothing: the proc's error stays as it was.
        return None

    return await _operate(ctx, app, proc, "PROMOTE", change, run, undo_on_conflict=unchanged)


@mutation("undeployProc")
async def undeploy_proc(ctx: OpContext, *, app: str, proc: str) -> ProcView:
    """Stop and remove one proc; it stays in the release and comes back with the next update.

    Raises: NotFound. Conflict. BackendUnavailable.
    """

    async def change(row: Proc, current: ProcView) -> str:
        row.deployed = False
        return ""

    async def run(view: ProcView) -> None:
        failure = await remove_job(ctx, view.job_id)
        if failure is not None:
            raise failure

    return await _operate(ctx, app, proc, "UNDEPLOY_PROC", change, run, require_deployed=False)


@mutation("deployProc")
async def deploy_proc(ctx: OpContext, *, app: str, proc: str) -> ProcView:
    """Deploy a proc of the current release that is not running (after undeployProc).

    Raises: NotFound. Conflict: already deployed, or busy. InvalidInput: a portal.
    BackendUnavailable.
    """

    async def change(row: Proc, current: ProcView) -> str:
        if row.deployed:
            raise Conflict(f"proc {proc} of app {app} is already deployed", field="proc")
        row.deployed = True
        clear_overrides(row)  # created from the current lain.yaml, as LAIN meant (COMPAT 4.7)
        row.failed_spec_hash = ""
        return ""

    async def run(view: ProcView) -> None:
        await ctx.scheduler.apply(
            build_job(view, domain=ctx.services.domains[0], timezone=ctx.services.timezone)
        )

    return await _operate(ctx, app, proc, "DEPLOY_PROC", change, run, require_deployed=False)


async def _deployed(session: AsyncSession, app: str) -> App:
    row = await require_app(session, app)
    if row.meta_version is None:
        raise NotFound(f"app {app} has not been deployed", field="app")
    return row


async def _views(
    ctx: OpContext, session: AsyncSession, app: App, procs: Sequence[Proc]
) -> list[ProcView]:
    versions = {(app.id, proc.meta_version) for proc in procs}
    return _views_of(ctx, app, procs, await queries.releases_by_versions(session, sorted(versions)))


async def _proc(
    ctx: OpContext, session: AsyncSession, app: App, name: str
) -> tuple[Proc, ProcView]:
    row, view, _ = await _proc_with_release(ctx, session, app, name)
    return row, view


async def _proc_with_release(
    ctx: OpContext, session: AsyncSession, app: App, name: str
) -> tuple[Proc, ProcView, Mapping[tuple[int, str], Release]]:
    """The proc's row and view, and its release (to view the row again after a change)."""
    row = await queries.proc_by_name(session, app.id, name)
    releases = (
        await queries.releases_by_versions(session, [(app.id, row.meta_version)])
        if row is not None
        else {}
    )
    views = _views_of(ctx, app, [row], releases) if row is not None else []
    if row is None or not views:
        raise NotFound(f"app {app.name} has no proc {name}", field="proc")
    return row, views[0], releases


def _views_of(
    ctx: OpContext, app: App, procs: Sequence[Proc], releases: Mapping[tuple[int, str], Release]
) -> list[ProcView]:
    return proc_views(
        app.name,
        app.id,
        procs,
        releases,
        registry=ctx.services.registry,
        domains=ctx.services.domains,
    )


async def _operate(
    ctx: OpContext,
    app: str,
    proc: str,
    operation: str,
    change: _Change,
    run: _Run,
    *,
    require_deployed: bool = True,
    undo_on_conflict: Callable[[Proc], None] | None = None,
) -> ProcView:
    """The shape of every proc mutation.

    Check the scheduler, then in one transaction apply `change` to the row and write the audit
    entry; commit; call `run` with the new desired state; record its outcome on the proc.
    When the scheduler refuses with a conflict and `undo_on_conflict` is given, the row is
    put back instead (the refused request changed nothing).

    Every read comes before the first write, so the transaction holds the database's write
    lock only for its two writes; the outcome is written only when it changes the row.
    """
    await access.check_app(ctx, app)
    await ensure_available(ctx)
    async with ctx.services.guard.proc(app, proc, operation.lower()):
        async with ctx.sessions.begin() as session:
            app_row = await _deployed(session, app)
            if app_row.status is AppStatus.DEPLOYING:
                raise Conflict(f"app {app} is being deployed; try again when it has finished")
            row, current, releases = await _proc_with_release(ctx, session, app_row, proc)
            if row.proc_type == ProcType.PORTAL:
                raise InvalidInput(
                    f"{proc} is a portal: it runs per client app and is managed through them",
                    field="proc",
                )
            if require_deployed and not row.deployed:
                raise NotFound(f"proc {proc} of app {app} is not deployed", field="proc")
            if operation not in _DURING_ROLLOUTS:
                refuse_while_rolling(ctx, [current.job_id], f"proc {proc}")
            message = await change(row, current)
            (view,) = _views_of(ctx, app_row, [row], releases)
            audit.record(
                session,
                ctx.principal,
                operation,
                app,
                meta_version=view.meta_version,
                message=f"{proc} {message}".strip(),
            )
        error: SchedulerError | None = None
        try:
            await run(view)
        except JobNotFound:
            # The scheduler lost the job (removed behind our back): the desired state wins.
            try:
                await ctx.scheduler.apply(
                    build_job(view, domain=ctx.services.domains[0], timezone=ctx.services.timezone)
                )
            except SchedulerError as exc:
                error = exc
        except SchedulerError as exc:
            error = exc
        if error is not None or view.last_error:
            view = await _record_outcome(ctx, app, proc, error, undo_on_conflict)
        if error is not None:
            raise translate(error) from error
        return view


async def _record_outcome(
    ctx: OpContext,
    app: str,
    proc: str,
    error: SchedulerError | None,
    undo_on_conflict: Callable[[Proc], None] | None,
) -> ProcView:
    """Write down what the scheduler said (or put the row back); the proc as now stored."""
    async with ctx.sessions.begin() as session:
        app_row = await require_app(session, app)
        row, view, releases = await _proc_with_release(ctx, session, app_row, proc)
        if isinstance(error, SchedulerConflict) and undo_on_conflict is not None:
            undo_on_conflict(row)
        else:
            row.last_error = "" if error is None else str(error)
        (view,) = _views_of(ctx, app_row, [row], releases)
    return view
