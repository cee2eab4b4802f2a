"""Apps with everything LAIN's app objects show: procs, running state and related apps.

An app object in LAIN embeds its procs with their running state, the apps whose services it
uses and its resource instances: with auth on, only those the caller may read (LAIN embedded
them for anyone). This module reads all of that for any number of apps in a fixed number
of queries (apps, procs and releases; again for the apps they embed; resource instances;
portal bindings) and a single scheduler read, whatever the number of apps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from lainyaml import LainConfig, parse_resource_instance_name, resource_instance_name
from resolvers.core import access
from resolvers.core.context import OpContext
from resolvers.core.errors import DomainError, NotFound
from resolvers.core.jobs import portal_job_id
from resolvers.procs import get_proc, proc_states
from resolvers.readmodel.from_rows import app_view, proc_views, release_config
from resolvers.readmodel.views import AppType, AppView, Page, ProcState, ProcType, ProcView
from store import queries
from store.models import App, PortalBinding
from store.queries import AppRow

__all__ = [
    "AppOverview",
    "AppPage",
    "Overviews",
    "ProcOverview",
    "app_overview",
    "app_overviews",
    "app_page",
    "overviews_of",
    "proc_overview",
    "proc_overview_of",
    "resource_instance_overviews",
]


@dataclass(frozen=True, slots=True)
class ProcOverview:
    view: ProcView
    # The scheduler's state while it runs the proc; None when it does not (never deployed,
    # undeployed, a portal, a resource template) or when the scheduler could not be read.
    state: ProcState | None
    # A portal runs once per client app that uses it: (client, state) of each running one.
    clients: tuple[tuple[str, ProcState], ...] = ()


@dataclass(frozen=True, slots=True)
class AppOverview:
    app: AppView
    config: LainConfig | None  # the deployed release's lain.yaml
    procs: tuple[ProcOverview, ...]  # lain.yaml order, portals included

    def proc(self, name: str) -> ProcOverview | None:
        return next((p for p in self.procs if p.view.name == name), None)


def _frozen() -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Overviews:
    """The requested apps, in order, and every deployed app their objects embed."""

    requested: tuple[str, ...]
    apps: Mapping[str, AppOverview]
    # A resource's instances (`resource.<r>.<client>`), for the apps that are resources.
    instances: Mapping[str, tuple[str, ...]] = field(default_factory=_frozen)

    @property
    def items(self) -> list[AppOverview]:
        """The requested apps, in the order asked."""
        return [self.apps[name] for name in self.requested]

    def get(self, name: str) -> AppOverview | None:
        return self.apps.get(name)


async def app_overview(ctx: OpContext, *, name: str) -> Overviews:
    """One deployed app. Raises: Unauthenticated, NotFound (unregistered or undeployed),
    Forbidden.
    """
    row = await _deployed(ctx, name)
    async with ctx.sessions() as session:
        stored = await _stored(ctx, session, [row])
    return await _with_running(ctx, [row], stored)


async def app_with_procs(ctx: OpContext, *, name: str) -> AppOverview:
    """One deployed app with its procs and their running state, without the apps its
    object embeds and without its portals' clients: what a proc's object needs.

    Raises: Unauthenticated, NotFound, Forbidden.
    """
    row = await _deployed(ctx, name)
    async with ctx.sessions() as session:
        found = (await _overviews(ctx, session, [row]))[name]
    states = await _states(ctx, [p.view.job_id for p in found.procs if _runs(found, p.view)])
    return _with_states(found, states, {})


async def _deployed(ctx: OpContext, name: str) -> AppRow:
    row = await access.check_app(ctx, name)
    if row.meta_version is None:
        raise NotFound(f"app {name} has not been deployed", field="app")
    return row


async def app_overviews(ctx: OpContext, *, apptype: AppType | None = None) -> Overviews:
    """Every deployed app the caller may read (optionally of one type), by name.

    Raises: Unauthenticated.
    """
    async with ctx.sessions() as session:
        rows = await access.readable_deployed_apps(
            ctx, session, apptype=None if apptype is None else str(apptype)
        )
    return await _load(ctx, rows)


@dataclass(frozen=True, slots=True)
class AppPage:
    """A page of deployed apps with their procs (lain.yaml order, portals included) and
    the scheduler's answer for every job they run: read in bulk, so that nothing is loaded
    per app or per proc afterwards."""

    page: Page[AppOverview]
    # By job id, for every deployed proc that is not a portal (ProcState.missing for a job
    # the scheduler does not know); the scheduler's error when it could not be read.
    states: Mapping[str, ProcState] | DomainError


async def app_page(
    ctx: OpContext,
    *,
    apptype: AppType | None = None,
    first: int | None = None,
    after: str | None = None,
) -> AppPage:
    """A page of the deployed apps the caller may read, by name, as `list_apps` pages them.

    Raises: Unauthenticated, InvalidInput.
    """
    async with ctx.sessions() as session:
        rows_page = await access.readable_deployed_page(
            ctx,
            session,
            apptype=apptype,
            first=first,
            after=after,
        )
        found = await _overviews(ctx, session, rows_page.items)
    # GraphQL asks the scheduler for every deployed proc but a portal (a resource's too).
    job_ids = [
        p.view.job_id
        for o in found.values()
        for p in o.procs
        if p.view.deployed and p.view.type is not ProcType.PORTAL
    ]
    states: Mapping[str, ProcState] | DomainError = MappingProxyType({})
    running: Mapping[str, ProcState] = {}
    if job_ids:
        try:
            read = await proc_states(ctx, job_ids)
        except DomainError as exc:
            states = exc
        else:
            states = MappingProxyType(
                {job_id: read.get(job_id, ProcState.missing(job_id)) for job_id in job_ids}
            )
            running = {job_id: state for job_id, state in read.items() if state.exists}

    def with_own_states(row: AppRow) -> AppOverview:
        overview = found[row.name]
        # The procs' own `state` follows the rule of every overview (see ProcOverview).
        own = [p.view.job_id for p in overview.procs if _runs(overview, p.view)]
        return _with_states(overview, {j: running[j] for j in own if j in running}, {})

    return AppPage(page=rows_page.map(with_own_states), states=states)


async def resource_instance_overviews(ctx: OpContext, *, resource: str) -> Overviews:
    """The deployed instances `resource.<resource>.<client>` of a resource, by name.

    Any registered name may be asked (a non-resource has none), as in LAIN; access is checked
    on the resource. Raises: Unauthenticated, NotFound, Forbidden.
    """
    await access.check_app(ctx, resource)
    async with ctx.sessions() as session:
        names = await _instance_names(session, [resource])
        # An instance the caller may not read is left out; LAIN listed them all.
        rows, _ = await access.readable_apps(ctx, session, names.get(resource, ()))
    return await _load(ctx, [rows[name] for name in sorted(rows)])


async def proc_overview(ctx: OpContext, *, app: str, proc: str) -> ProcOverview:
    """One proc with its running state.

    Raises: Unauthenticated, NotFound (app not deployed, no such proc), Forbidden.
    """
    return await proc_overview_of(ctx, await get_proc(ctx, app=app, proc=proc))


async def proc_overview_of(ctx: OpContext, view: ProcView) -> ProcOverview:
    """A proc a mutation has just returned, with its running state: no read of the database."""
    return ProcOverview(view=view, state=(await _states(ctx, [view.job_id])).get(view.job_id))


@dataclass(frozen=True, slots=True)
class _Stored:
    """What the database says about some apps and every app their objects embed."""

    apps: dict[str, AppOverview]
    instances: dict[str, tuple[str, ...]]
    bindings: dict[tuple[str, str], tuple[tuple[str, str], ...]]


async def _load(ctx: OpContext, rows: Sequence[AppRow]) -> Overviews:
    async with ctx.sessions() as session:
        stored = await _stored(ctx, session, rows)
    return await _with_running(ctx, rows, stored)


async def _stored(ctx: OpContext, session: AsyncSession, rows: Sequence[AppRow]) -> _Stored:
    apps = await _overviews(ctx, session, rows)
    related: set[str] = set()
    for overview in apps.values():
        related.update(_related(overview))
    resources = [o.app.name for o in apps.values() if o.app.apptype is AppType.RESOURCE]
    instances = await _instance_names(session, resources)
    for names in instances.values():
        related.update(names)
    missing = sorted(related - set(apps))
    if missing:
        # An embedded app the caller may not read is left out, so its place in the object
        # is empty as for an app that does not exist: using a service or a resource is
        # not permission to read its procs and env.
        found, _ = await access.readable_apps(ctx, session, missing)
        apps.update(await _overviews(ctx, session, list(found.values())))
    # Only a service (an app with portals) has clients bound to it.
    services = [
        name for name, o in apps.items() if any(p.view.type is ProcType.PORTAL for p in o.procs)
    ]
    bindings = await _bindings(session, services)
    return _Stored(apps=apps, instances=instances, bindings=bindings)


async def _with_running(ctx: OpContext, rows: Sequence[AppRow], stored: _Stored) -> Overviews:
    """The overviews with the scheduler's state, read once the session is closed."""
    apps, bindings = stored.apps, stored.bindings
    job_ids = [p.view.job_id for o in apps.values() for p in o.procs if _runs(o, p.view)]
    job_ids += [job_id for pairs in bindings.values() for _, job_id in pairs]
    states = await _states(ctx, job_ids)
    with_states = {name: _with_states(o, states, bindings) for name, o in apps.items()}
    return Overviews(
        requested=tuple(row.name for row in rows),
        apps=MappingProxyType(with_states),
        instances=MappingProxyType(stored.instances),
    )


def _with_states(
    overview: AppOverview,
    states: Mapping[str, ProcState],
    bindings: Mapping[tuple[str, str], tuple[tuple[str, str], ...]],
) -> AppOverview:
    name = overview.app.name
    procs = []
    for proc in overview.procs:
        clients = tuple(
            (client, states[job_id])
            for client, job_id in bindings.get((name, proc.view.name), ())
            if job_id in states
        )
        procs.append(ProcOverview(proc.view, states.get(proc.view.job_id), clients))
    return AppOverview(app=overview.app, config=overview.config, procs=tuple(procs))


def _runs(overview: AppOverview, view: ProcView) -> bool:
    # A resource is a template and a portal runs with its clients: neither is a job of ours.
    return overview.app.apptype is not AppType.RESOURCE and view.type is not ProcType.PORTAL


async def _states(ctx: OpContext, job_ids: Sequence[str]) -> dict[str, ProcState]:
    """The states of the jobs the scheduler runs; none at all when it cannot be read, so
    that reading an app never fails because the scheduler is down (LAIN's objects fall back
    to the lain.yaml values the same way)."""
    if not job_ids:
        return {}
    try:
        found = await proc_states(ctx, job_ids)
    except DomainError:
        return {}
    return {job_id: state for job_id, state in found.items() if state.exists}


async def _bindings(
    session: AsyncSession, services: Sequence[str]
) -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
    """(service, portal) -> (client, job id) of each deployed binding, by client name."""
    if not services:
        return {}
    service, client = aliased(App), aliased(App)
    query = (
        select(service.name, PortalBinding.portal, client.name)
        .join(service, service.id == PortalBinding.service_app_id)
        .join(client, client.id == PortalBinding.client_app_id)
        .where(service.name.in_(services), PortalBinding.deployed.is_(True))
        .order_by(client.name)
    )
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for service_name, portal, client_name in (await session.execute(query)).all():
        job_id = portal_job_id(service_name, portal, client_name)
        found.setdefault((service_name, portal), []).append((client_name, job_id))
    return {key: tuple(pairs) for key, pairs in found.items()}


async def overviews_of(
    ctx: OpContext, session: AsyncSession, rows: Sequence[AppRow]
) -> dict[str, AppOverview]:
    """The deployed apps among `rows`, by name, with their procs (lain.yaml order, portals
    included) and no running state: three queries whatever the count."""
    return await _overviews(ctx, session, rows)


async def _overviews(
    ctx: OpContext, session: AsyncSession, rows: Sequence[AppRow]
) -> dict[str, AppOverview]:
    deployed = {row.id: row for row in rows if row.meta_version is not None}
    procs, releases = await queries.proc_rows_with_releases(session, list(deployed))
    # The app's own release, when none of its procs runs it (usually they all do).
    wanted = {(row.id, row.meta_version or "") for row in deployed.values()}
    missing = sorted(wanted - set(releases))
    if missing:
        releases.update(await queries.release_rows_by_versions(session, missing))
    result: dict[str, AppOverview] = {}
    for app_id, row in deployed.items():
        release = releases.get((app_id, row.meta_version or ""))
        config = release_config(release, ctx.services.domains) if release is not None else None
        views = proc_views(
            row.name,
            app_id,
            procs[app_id],
            releases,
            registry=ctx.services.registry,
            domains=ctx.services.domains,
        )
        order = {spec.name: index for index, spec in enumerate(config.procs)} if config else {}
        views.sort(key=lambda view: order.get(view.name, len(order)))
        result[row.name] = AppOverview(
            app=app_view(row),
            config=config,
            procs=tuple(ProcOverview(view, None) for view in views),
        )
    return result


def _related(overview: AppOverview) -> set[str]:
    """The apps this app's object embeds: the services it uses, its resource instances."""
    if overview.config is None:
        return set()
    names = set(overview.config.use_services)
    names.update(
        resource_instance_name(resource, overview.app.name)
        for resource in overview.config.use_resources
    )
    return names


async def _instance_names(
    session: AsyncSession, resources: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """The deployed `resource.<r>.*` apps of each resource, by name, in one query."""
    if not resources:
        return {}
    query = (
        select(App.name)
        .where(App.name.startswith("resource.", autoescape=True), App.meta_version.is_not(None))
        .order_by(App.name)
    )
    wanted = set(resources)
    result: dict[str, list[str]] = {resource: [] for resource in resources}
    for name in (await session.execute(query)).scalars():
        parsed = parse_resource_instance_name(name)
        if parsed is not None and parsed[0] in wanted:
            result[parsed[0]].append(name)
    return {resource: tuple(names) for resource, names in result.items()}
