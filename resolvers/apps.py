"""Apps: deploy a release, update to another, undeploy; read apps."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from backends.errors import SchedulerError
from backends.types import Canary, ProcJob
from lainyaml import LainConfig, app_type_of, parse_meta_version, resource_instance_name
from resolvers.canaries import check_canary, with_canary
from resolvers.core import access, audit, bindings
from resolvers.core.backend import ensure_available, refuse_while_rolling, translate
from resolvers.core.context import OpContext
from resolvers.core.errors import (
    BackendUnavailable,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
)
from resolvers.core.jobs import BoundPortal, build_job, build_portal_job, portal_job_id
from resolvers.core.outcomes import mutation
from resolvers.core.removals import remove_job
from resolvers.readmodel.from_rows import (
    app_view,
    clear_overrides,
    default_image,
    proc_view,
    release_config,
)
from resolvers.readmodel.views import AppType, AppView, Page
from resolvers.releases import require_app
from resolvers.repos import REGISTRATION
from store import queries
from store.models import App, AppStatus, Maintainer, MaintainerRole, Proc, Release

__all__ = ["deploy_app", "get_app", "list_apps", "undeploy_app", "update_app"]


@dataclass(frozen=True, slots=True)
class _Plan:
    app: AppView
    jobs: tuple[ProcJob, ...]  # to apply, in lain.yaml order
    removed: tuple[str, ...]  # job ids to remove
    first_deploy: bool


@mutation("deployApp")
async def deploy_app(ctx: OpContext, *, name: str, meta_version: str | None = None) -> AppView:
    """Deploy an app that is not deployed: the given release, or the newest one.

    A first deploy that the scheduler refuses is undone: nothing stays half-deployed, the app
    is undeployed again and its `last_error` says why.

    Raises:
        NotFound: no such app or release. Conflict: deployed already, or busy.
        InvalidInput: the release cannot be deployed. Forbidden. BackendUnavailable.
    """
    await access.check_app(ctx, name)
    await ensure_available(ctx)
    async with ctx.services.guard.app(name, "a deploy"):
        return await _deploy(ctx, name, meta_version, update=False)


@mutation("updateApp")
async def update_app(
    ctx: OpContext,
    *,
    name: str,
    meta_version: str | None = None,
    canary: Canary | None = None,
) -> AppView:
    """Move a deployed app to a release (the newest when not given); may re-apply the same.

    Procs the release adds are created from lain.yaml; procs it drops are removed; procs that
    stay keep their instance count, cpu and memory, as LAIN does. With `canary`, each of the
    app's long-running procs whose instances are replaced starts `canary.instances` new ones
    beside the old ones first, and the rest wait for a promotion (see `resolvers.canaries`).

    Raises:
        NotFound: no such app or release; the app is not deployed.
        Conflict: busy. InvalidInput: canaries out of range or not supported. Forbidden.
        BackendUnavailable.
    """
    await access.check_app(ctx, name)
    check_canary(ctx, canary)
    await ensure_available(ctx)
    async with ctx.services.guard.app(name, "an update"):
        return await _deploy(ctx, name, meta_version, update=True, canary=canary)


@mutation("undeployApp")
async def undeploy_app(ctx: OpContext, *, name: str) -> AppView:
    """Stop and remove every proc; the registration and the releases stay.

    Raises:
        NotFound: no such app, or it is not deployed. Forbidden: a resource.
        Conflict: busy. BackendUnavailable.
    """
    await access.check_app(ctx, name)
    await ensure_available(ctx)
    async with ctx.services.guard.app(name, "an undeploy"):
        return await _undeploy(ctx, name)


async def _undeploy(ctx: OpContext, name: str) -> AppView:
    """Remove the app's jobs, its portals' jobs and its resource instances; keep the rest."""
    async with ctx.sessions.begin() as session:
        app = await _deployed_app(session, name)
        if app.apptype == AppType.RESOURCE:
            raise Forbidden("Not allow to delete resource app.")
        release = await queries.release(session, app.id, app.meta_version or "")
        config = release_config(release, ctx.services.domains) if release else None
        instances = [
            resource_instance_name(resource, name)
            for resource in (config.use_resources if config is not None else {})
        ]
        procs = await queries.procs_of(session, app.id)
        job_ids = [f"{name}.{p.proc_type}.{p.name}" for p in procs if p.deployed]
        job_ids += await bindings.drop_client_bindings(session, app)
        for binding, client in await bindings.bindings_of_service(session, app):
            job_ids.append(portal_job_id(name, binding.portal, client))
            binding.deployed = False
            binding.last_error = f"service app {name} was undeployed"
        audit.record(session, ctx.principal, "DELETE", name, meta_version=app.meta_version)
        for proc in procs:
            await session.delete(proc)
        app.meta_version = None
        app.status = AppStatus.UNDEPLOYED
        app.apptype = AppType.APP
        app.last_error = ""
        app.revision += 1
    errors = []
    for job_id in job_ids:
        failure = await remove_job(ctx, job_id)
        if failure is not None:
            errors.append(f"{job_id}: {failure}")
    for instance in instances:
        try:
            await _undeploy(ctx, instance)
        except NotFound:
            continue  # never deployed, or undeployed directly
        except DomainError as exc:
            errors.append(f"{instance}: {exc.message}")
    view = await _record_error(ctx, name, "; ".join(errors))
    ctx.services.bus.publish_app(view)
    if errors:
        raise BackendUnavailable(f"undeploy of {name} incomplete: {'; '.join(errors)}")
    return view


async def get_app(ctx: OpContext, *, name: str) -> AppView:
    """A registered app, deployed or not. Raises: Unauthenticated, NotFound, Forbidden."""
    return app_view(await access.check_app(ctx, name))


async def list_apps(
    ctx: OpContext,
    *,
    apptype: AppType | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[AppView]:
    """Deployed apps (those with a meta_version) the caller may read, by name.

    Raises: Unauthenticated, InvalidInput.
    """
    async with ctx.sessions() as session:
        rows = await access.readable_deployed_page(
            ctx,
            session,
            apptype=apptype,
            first=first,
            after=after,
        )
    return rows.map(app_view)


async def _deployed_app(session: AsyncSession, name: str) -> App:
    app = await require_app(session, name, for_update=True)
    if app.status is AppStatus.DEPLOYING:
        raise Conflict(f"app {name} is being deployed; try again when it has finished")
    if app.meta_version is None:
        raise NotFound(f"app {name} has not been deployed", field="name")
    return app


async def _choose_release(session: AsyncSession, app: App, meta_version: str | None) -> Release:
    if meta_version is None:
        release = await queries.latest_release(session, app.id)
        if release is None:
            raise NotFound(f"app {app.name} has no release to deploy", field="metaVersion")
        return release
    release = await queries.release(session, app.id, meta_version)
    if release is None:
        raise NotFound(f"app {app.name} has no release {meta_version}", field="metaVersion")
    return release


def _config(ctx: OpContext, release: Release) -> LainConfig:
    config = release_config(release, ctx.services.domains)
    if config is None:  # releases are validated when published; this is a stored-data fault
        raise InvalidInput(f"release {release.meta_version} has an invalid lain.yaml")
    return config


async def _deploy(
    ctx: OpContext,
    name: str,
    meta_version: str | None,
    *,
    update: bool,
    canary: Canary | None = None,
) -> AppView:
    """Deploy or update an app with what it uses: its resource instances first."""
    async with ctx.sessions() as session:
        app = await (_deployed_app(session, name) if update else require_app(session, name))
        running = [
            f"{name}.{p.proc_type}.{p.name}"
            for p in await queries.procs_of(session, app.id)
            if p.deployed and p.proc_type != "portal"
        ]
        release = await _choose_release(session, app, meta_version)
        deps = await bindings.resolve(
            session,
            name,
            _config(ctx, release),
            registry=ctx.services.registry,
            domains=ctx.services.domains,
        )
    # An update may replace canaries that wait for a promotion: that is how they are dropped.
    refuse_while_rolling(ctx, running, f"app {name}", unless_canaries_wait=update)
    created: list[str] = []
    try:
        for instance in deps.instances:
            if await _ensure_instance(ctx, instance):
                created.append(instance.name)
        async with ctx.sessions.begin() as session:
            planner = _plan_update if update else _plan_deploy
            plan = await planner(ctx, session, name, release.meta_version, deps)
        plan = dataclasses.replace(plan, jobs=with_canary(name, plan.jobs, canary))
        return await _carry_out(ctx, plan, "update" if update else "deploy")
    except DomainError:
        for instance_name in created:  # nothing this deploy created stays half-done
            with contextlib.suppress(DomainError):
                await _undeploy(ctx, instance_name)
        raise


async def _ensure_instance(ctx: OpContext, plan: bindings.InstancePlan) -> bool:
    """Create or refresh a resource instance and deploy it; True if it is new."""
    async with ctx.sessions.begin() as session:
        app = await queries.app_by_name(session, plan.name)
        if app is None:
            app = App(name=plan.name)
            session.add(app)
            await session.flush()
            await _grant_instance(ctx, session, app, plan.resource)
        elif ctx.services.auth_enabled and await queries.has_audit_entry(
            session, plan.name, REGISTRATION
        ):
            # Someone registered the name (before names of this form were reserved, or while
            # auth was off): adopting it would hand the client's resource parameters to that
            # app's maintainers. Without auth there are no tenants, and LAIN adopted it.
            raise Conflict(
                f"{plan.name} was registered by a user, not created by the console as an "
                f"instance of {plan.resource}, so it cannot become that instance",
                field="name",
            )
        release = await queries.release(session, app.id, plan.meta_version)
        if release is None:
            session.add(
                Release(
                    app_id=app.id,
                    meta_version=plan.meta_version,
                    meta_timestamp=parse_meta_version(plan.meta_version).timestamp,
                    lain_yaml=plan.lain_yaml,
                    image=plan.image,
                )
            )
        # An instance's release is derived, not published: a changed context re-renders it.
        changed = release is None or release.lain_yaml != plan.lain_yaml
        if release is not None and changed:
            release.lain_yaml, release.image = plan.lain_yaml, plan.image
        first = app.meta_version is None
        changed = changed or app.meta_version != plan.meta_version
    if first:
        await _deploy(ctx, plan.name, plan.meta_version, update=False)
    elif changed:
        await _deploy(ctx, plan.name, plan.meta_version, update=True)
    return first


async def _grant_instance(ctx: OpContext, session: AsyncSession, app: App, resource: str) -> None:
    """An instance's maintainers: the resource's, plus the client's deployer (COMPAT 6.3)."""
    source = await queries.app_by_name(session, resource)
    roles = {}
    if source is not None:
        roles = {m.username: m.role for m in await queries.maintainers_of(session, source.id)}
    if ctx.principal.authenticated:
        roles[ctx.principal.name] = MaintainerRole.ADMIN
    for username, role in roles.items():
        session.add(Maintainer(app_id=app.id, username=username, role=role))


async def _plan_deploy(
    ctx: OpContext,
    session: AsyncSession,
    name: str,
    meta_version: str | None,
    deps: bindings.Dependencies,
) -> _Plan:
    app = await require_app(session, name, for_update=True)
    if app.status is AppStatus.DEPLOYING:
        raise Conflict(f"app {name} is being deployed; try again when it has finished")
    if app.meta_version is not None:
        raise Conflict(f"app {name} is already deployed; update it instead", field="name")
    release = await _choose_release(session, app, meta_version)
    config = _config(ctx, release)
    procs = [
        Proc(app_id=app.id, name=spec.name, proc_type=str(spec.type), meta_version="")
        for spec in config.procs
    ]
    return await _stage(ctx, session, app, release, config, procs, deps, removed=(), first=True)


async def _plan_update(
    ctx: OpContext,
    session: AsyncSession,
    name: str,
    meta_version: str | None,
    deps: bindings.Dependencies,
) -> _Plan:
    app = await _deployed_app(session, name)
    release = await _choose_release(session, app, meta_version)
    config = _config(ctx, release)
    old = {proc.name: proc for proc in await queries.procs_of(session, app.id)}
    old_release = await queries.release(session, app.id, app.meta_version or "")
    procs: list[Proc] = []
    for spec in config.procs:
        proc = old.pop(spec.name, None)
        if proc is not None and proc.proc_type != str(spec.type):
            # A proc that changes type is another job; the old one goes.
            old[spec.name] = proc
            proc = None
        if proc is None:
            proc = Proc(app_id=app.id, name=spec.name, proc_type=str(spec.type), meta_version="")
        elif not proc.deployed:
            clear_overrides(proc)
        elif old_release is not None:
            _freeze_running_values(ctx, name, proc, old_release)
        procs.append(proc)
    removed = tuple(f"{name}.{p.proc_type}.{p.name}" for p in old.values() if p.deployed)
    for proc in old.values():
        await session.delete(proc)
    return await _stage(
        ctx, session, app, release, config, procs, deps, removed=removed, first=False
    )


def _freeze_running_values(ctx: OpContext, app: str, proc: Proc, release: Release) -> None:
    """Keep what the proc runs with now: LAIN's update never re-sends count, cpu or memory."""
    current = proc_view(
        app, proc, release, registry=ctx.services.registry, domains=ctx.services.domains
    )
    if current is None or current.spec.templated:
        return  # a resource template's procs never run: there is nothing to keep
    proc.num_instances = current.num_instances
    proc.cpu = current.cpu
    proc.memory = current.memory


async def _stage(
    ctx: OpContext,
    session: AsyncSession,
    app: App,
    release: Release,
    config: LainConfig,
    procs: list[Proc],
    deps: bindings.Dependencies,
    *,
    removed: tuple[str, ...],
    first: bool,
) -> _Plan:
    """Write the desired state and its audit entry; the caller's transaction commits them."""
    apptype = app_type_of(app.name, config)
    runs_procs = apptype is not AppType.RESOURCE  # a resource is a template, never run
    jobs: list[ProcJob] = []
    for proc in procs:
        proc.meta_version = release.meta_version
        proc.last_error = ""
        proc.failed_spec_hash = ""  # deploying again is the retry of a rolled back release
        if proc.id is None:
            session.add(proc)
        view = proc_view(
            app.name, proc, release, registry=ctx.services.registry, domains=ctx.services.domains
        )
        # Portals run per client app (see the resources and services issue), not here.
        if runs_procs and view is not None and proc.proc_type != "portal":
            proc.deployed = True
            jobs.append(
                build_job(view, domain=ctx.services.domains[0], timezone=ctx.services.timezone)
            )
    if runs_procs:
        portal_jobs, unbound = await bindings.stage_client_bindings(
            session, app, deps, domain=ctx.services.domains[0], timezone=ctx.services.timezone
        )
        jobs += portal_jobs
        removed = (*removed, *unbound)
        served, dropped = await _restage_service_bindings(ctx, session, app, release, config)
        jobs += served
        removed = (*removed, *dropped)
    app.meta_version = release.meta_version
    app.apptype = str(apptype)
    app.status = AppStatus.DEPLOYING if jobs or removed else AppStatus.DEPLOYED
    app.last_error = ""
    app.revision += 1
    audit.record(
        session,
        ctx.principal,
        "DEPLOY" if first else "UPDATE",
        app.name,
        meta_version=release.meta_version,
    )
    await session.flush()
    return _Plan(app=app_view(app), jobs=tuple(jobs), removed=removed, first_deploy=first)


async def _restage_service_bindings(
    ctx: OpContext, session: AsyncSession, app: App, release: Release, config: LainConfig
) -> tuple[list[ProcJob], list[str]]:
    """A service's new release reaches the portals it runs for its clients."""
    jobs: list[ProcJob] = []
    dropped: list[str] = []
    image = release.image or default_image(ctx.services.registry, app.name, release.meta_version)
    for binding, client in await bindings.bindings_of_service(session, app):
        portal = config.portal_for_service(binding.service_name)
        if portal is None or portal.name != binding.portal:
            dropped.append(portal_job_id(app.name, binding.portal, client))
            binding.deployed = False
            binding.last_error = f"{app.name} {release.meta_version} no longer exports it"
            continue
        use = BoundPortal(app.name, binding.service_name, portal, release.meta_version, image)
        jobs.append(
            build_portal_job(
                use, client=client, domain=ctx.services.domains[0], timezone=ctx.services.timezone
            )
        )
        binding.deployed = True
    return jobs, dropped


async def _carry_out(ctx: OpContext, plan: _Plan, verb: str) -> AppView:
    """Apply the plan to the scheduler (no transaction open), then record the outcome."""
    name = plan.app.name
    ctx.services.bus.publish_app(plan.app)
    errors: dict[str, SchedulerError] = {}
    applied: list[str] = []
    for job_id in plan.removed:
        failure = await remove_job(ctx, job_id)
        if failure is not None:
            errors[job_id] = failure
    for job in plan.jobs:
        try:
            await ctx.scheduler.apply(job)
            applied.append(job.job_id)
        except SchedulerError as exc:
            errors[job.job_id] = exc
            if plan.first_deploy:
                break
    if errors and plan.first_deploy:
        for job_id in applied:
            failure = await remove_job(ctx, job_id)
            if failure is not None:
                errors.setdefault(job_id, failure)
    summary = "; ".join(f"{job_id}: {error}" for job_id, error in errors.items())
    view = await _record_outcome(ctx, plan, errors, summary)
    ctx.services.bus.publish_app(view)
    if errors:
        # The first failure decides the kind of error (unavailable, conflict, rejected).
        kind = type(translate(next(iter(errors.values()))))
        raise kind(f"{verb} of {name} failed: {summary}")
    return view


async def _record_outcome(
    ctx: OpContext, plan: _Plan, errors: dict[str, SchedulerError], summary: str
) -> AppView:
    async with ctx.sessions.begin() as session:
        app = await require_app(session, plan.app.name)
        procs = await queries.procs_of(session, app.id)
        if errors and plan.first_deploy:
            for proc in procs:
                await session.delete(proc)
            app.meta_version = None
            app.apptype = AppType.APP
            app.status = AppStatus.UNDEPLOYED
        else:
            app.status = AppStatus.DEPLOYED
            for proc in procs:
                error = errors.get(f"{app.name}.{proc.proc_type}.{proc.name}")
                proc.last_error = "" if error is None else str(error)
        app.last_error = summary
    return app_view(app)


async def _record_error(ctx: OpContext, name: str, error: str) -> AppView:
    async with ctx.sessions.begin() as session:
        app = await require_app(session, name)
        app.last_error = error
    return app_view(app)
