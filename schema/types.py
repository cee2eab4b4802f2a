"""The object types. Thin: built from resolver views; relations come through loaders."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import strawberry
from strawberry import Private

from resolvers import maintainers
from resolvers.core.audit import AuditView, list_audit
from resolvers.core.errors import DomainError
from resolvers.lain.overview import AppOverview
from resolvers.logs import names_of_job
from resolvers.maintainers import MaintainerView
from resolvers.readmodel import health as readmodel
from resolvers.readmodel import links
from resolvers.readmodel.views import (
    AppStatus,
    AppType,
    AppView,
    CanaryState,
    InstanceState,
    InstanceStatus,
    ProcSpec,
    ProcState,
    ProcType,
    ProcView,
    ReleaseView,
    RepoView,
    RolloutStatus,
)
from resolvers.releases import list_releases
from schema.connections import Connection, connection
from schema.errors import CodedError, coded, raise_as_graphql
from schema.logs import LogLine, LogStream, instance_logs

__all__ = [
    "App",
    "AppStatus",
    "AppType",
    "AuditEntry",
    "Canary",
    "Health",
    "Instance",
    "InstanceStatus",
    "Maintainer",
    "MaintainerRole",
    "Node",
    "Port",
    "Proc",
    "ProcType",
    "Release",
    "ReleaseProc",
    "Repo",
    "global_id",
    "parse_global_id",
]

# The domain enums are the GraphQL enums: values pass through without conversion.
strawberry.enum(AppType, name="AppType")
strawberry.enum(AppStatus, name="AppStatus")
strawberry.enum(ProcType, name="ProcType")
strawberry.enum(InstanceStatus, name="InstanceStatus")
strawberry.enum(
    RolloutStatus,
    name="RolloutStatus",
    description="Where the replacement of a proc's instances by its current spec stands.",
)
Health = readmodel.Health
MaintainerRole = maintainers.MaintainerRole
strawberry.enum(MaintainerRole, name="MaintainerRole")
strawberry.enum(
    Health,
    name="Health",
    description=(
        "A roll-up of running state a frontend can show as is. A proc is STOPPED when not "
        "deployed, scaled to 0 or every instance is stopped on request; ROLLING while a "
        "rollout replaces or restarts its instances, or while its first instances start; "
        "FAILING when no instance serves and one has failed; DEGRADED when an instance "
        "failed, the last rollout stopped, an instance runs another release or the last "
        "operation failed; ROLLING while fewer instances serve than wanted and the others "
        "start; else HEALTHY. An app is STOPPED when every proc is, "
        "ROLLING while a deploy is applied, FAILING when every running proc fails, DEGRADED "
        "when some proc fails, ROLLING when some proc rolls, DEGRADED when some proc is "
        "degraded or its last operation failed, else HEALTHY."
    ),
)


def global_id(kind: str, key: str) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode())


def parse_global_id(value: str) -> tuple[str, str] | None:
    try:
        kind, _, key = base64.urlsafe_b64decode(value.encode()).decode().partition(":")
    except (ValueError, UnicodeError):
        return None
    return (kind, key) if key else None


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type
class Port:
    number: int
    protocol: str


@strawberry.type(
    description="The canaries of a proc's rollout under way (an update with `canary`)."
)
class Canary:
    desired: int
    placed: int = strawberry.field(description="Canaries started so far.")
    healthy: int = strawberry.field(description="Of them, those judged healthy.")
    promoted: bool = strawberry.field(
        description="Promoted: the proc's other instances are being replaced."
    )
    auto_promote: bool = strawberry.field(
        description="The scheduler promotes them itself once every one is healthy."
    )
    awaiting_promotion: bool = strawberry.field(
        description="Every canary runs and is healthy, and only promoteApp or promoteProc "
        "lets the rollout go on."
    )

    @classmethod
    def from_state(cls, state: CanaryState) -> Canary:
        return cls(
            desired=state.desired,
            placed=state.placed,
            healthy=state.healthy,
            promoted=state.promoted,
            auto_promote=state.auto_promote,
            awaiting_promotion=state.awaiting_promotion,
        )


@strawberry.type
class Instance:
    number: int
    status: InstanceStatus
    healthy: bool | None
    ip: str | None
    port: int | None
    node: str | None
    started_at: datetime | None
    restarts: int
    last_error: str
    exit_code: int | None
    release: str = strawberry.field(
        description="The meta version the instance was started with; empty when unknown."
    )
    job_id: Private[str] = ""

    @strawberry.field(
        description="The newest lines it printed, oldest first; kept after it is gone."
    )
    async def logs(
        self, info: strawberry.Info, tail: int = 100, stream: LogStream = LogStream.BOTH
    ) -> list[LogLine]:
        app, proc = names_of_job(self.job_id)
        return await instance_logs(info, app, proc, self.number, tail, stream)

    @classmethod
    def from_state(cls, state: InstanceState) -> Instance:
        return cls(
            job_id=state.job_id,
            number=state.number,
            status=state.status,
            healthy=state.healthy,
            ip=state.ip,
            port=state.port,
            node=state.node,
            started_at=state.started_at,
            restarts=state.restarts,
            last_error=state.last_error,
            exit_code=state.exit_code,
            release=state.release,
        )


T = TypeVar("T")


def _instances(state: ProcState | None) -> list[Instance]:
    return [Instance.from_state(instance) for instance in state.instances] if state else []


def _ports(spec: ProcSpec) -> list[Port]:
    if spec.port is None:
        return []
    return [Port(number=spec.port.number, protocol=str(spec.port.protocol))]


@strawberry.type
class ReleaseProc:
    """A proc as a release's lain.yaml defines it, before any override."""

    name: str
    type: ProcType
    num_instances: int
    cpu: int
    memory: str
    cmd: list[str] | None
    env: list[str]
    ports: list[Port]
    healthcheck: str

    @classmethod
    def from_spec(cls, spec: ProcSpec) -> ReleaseProc:
        return cls(
            name=spec.name,
            type=spec.type,
            num_instances=spec.num_instances,
            cpu=spec.cpu,
            memory=spec.memory,
            cmd=list(spec.cmd) if spec.cmd is not None else None,
            env=list(spec.env),
            ports=_ports(spec),
            healthcheck=spec.healthcheck,
        )


@strawberry.type
class Release(Node):
    meta_version: str
    created_at: datetime
    image: str
    lain_yaml: str
    procs: list[ReleaseProc]

    @classmethod
    def from_view(cls, view: ReleaseView) -> Release:
        return cls(
            id=global_id("Release", f"{view.app}/{view.meta_version}"),
            meta_version=view.meta_version,
            created_at=view.created_at,
            image=view.image,
            lain_yaml=view.lain_yaml,
            procs=[ReleaseProc.from_spec(spec) for spec in view.config.procs],
        )


@strawberry.type
class Proc(Node):
    name: str
    type: ProcType
    image: str
    num_instances: int
    cpu: int
    memory: str
    ports: list[Port]
    env: list[str]
    cmd: list[str] | None
    healthcheck: str
    deployed: bool
    meta_version: str = strawberry.field(description="The release the proc is meant to run.")
    view: Private[ProcView]
    job_id: Private[str]
    # Set when the running state arrived with the object (subscription events, a page of
    # apps read in bulk); then no field below loads anything.
    known_state: Private[ProcState | None] = None
    # Set instead when the scheduler was asked with the object and could not be read.
    state_error: Private[DomainError | None] = None

    @classmethod
    def from_view(
        cls,
        view: ProcView,
        state: ProcState | None = None,
        *,
        state_error: DomainError | None = None,
    ) -> Proc:
        spec = view.spec
        return cls(
            id=global_id("Proc", f"{view.app}/{view.name}"),
            name=view.name,
            type=view.type,
            image=view.image,
            num_instances=view.num_instances,
            cpu=view.cpu,
            memory=view.memory,
            ports=_ports(spec),
            env=list(spec.env),
            cmd=list(spec.cmd) if spec.cmd is not None else None,
            healthcheck=spec.healthcheck,
            deployed=view.deployed,
            meta_version=view.meta_version,
            view=view,
            job_id=view.job_id,
            known_state=state,
            state_error=state_error,
        )

    # The fields below are plain functions: with the state at hand they answer at once,
    # else they return an awaitable that loads it. graphql-core completes an awaitable
    # through a slower path (about 9x for a leaf, STACK-NOTES 4.11), on every list item.

    @strawberry.field(
        description=(
            "Running instances as the scheduler reports them; null (with the scheduler's "
            "error, path and code BACKEND_UNAVAILABLE) when it cannot be asked, so the rest "
            "of the app, as stored, still reads."
        ),
        graphql_type=list[Instance] | None,
    )
    def instances(self, info: strawberry.Info) -> list[Instance] | Awaitable[list[Instance] | None]:
        return self._answer(info, _instances)

    @strawberry.field(
        description=(
            "Why the proc is not as it should be: the scheduler's error (a rollout that "
            "stopped, the instance that failed last), else the last operation's. The same "
            "text REST shows as `lasterror`."
        ),
        graphql_type=str,
    )
    def last_error(self, info: strawberry.Info) -> str | Awaitable[str]:
        return self._answer(
            info,
            lambda state: readmodel.proc_error(self.view, state),
            # The scheduler is away: what the last operation recorded.
            unreadable=lambda: self.view.last_error,
        )

    @strawberry.field(
        description="The releases the live instances run, oldest first; more than one while "
        "a rollout is under way or after one stopped half-way. Null, with the error, when "
        "the scheduler cannot be asked.",
        graphql_type=list[str] | None,
    )
    def running_releases(self, info: strawberry.Info) -> list[str] | Awaitable[list[str]]:
        return self._answer(info, readmodel.running_releases)

    @strawberry.field(
        description="Whether instances are being replaced, or the last rollout stopped. "
        "Null, with the error, when the scheduler cannot be asked.",
        graphql_type=RolloutStatus | None,
    )
    def rollout(self, info: strawberry.Info) -> RolloutStatus | Awaitable[RolloutStatus]:
        return self._answer(
            info, lambda state: state.rollout if state is not None else RolloutStatus.NONE
        )

    @strawberry.field(
        description="The canaries of the rollout under way (`rollout` RUNNING, health "
        "ROLLING); null when it has none. Null, with the error, when the scheduler cannot "
        "be asked.",
        graphql_type=Canary | None,
    )
    def canary(self, info: strawberry.Info) -> Canary | Awaitable[Canary | None] | None:
        return self._answer(
            info,
            lambda state: Canary.from_state(state.canary) if state and state.canary else None,
        )

    @strawberry.field(
        description="The proc's health roll-up (see the `Health` enum).",
        graphql_type=Health | None,
    )
    def health(
        self, info: strawberry.Info
    ) -> readmodel.Health | Awaitable[readmodel.Health | None] | None:
        return self._answer(info, lambda state: readmodel.proc_health(self.view, state))

    def _answer(
        self,
        info: strawberry.Info,
        answer: Callable[[ProcState | None], T],
        *,
        unreadable: Callable[[], T] | None = None,
    ) -> T | Awaitable[T]:
        """`answer(state)` now when the state is at hand (None: the proc does not run),
        else once it is loaded. When the scheduler cannot be read: `unreadable()`, or
        without it the scheduler's error, raised as a coded error."""
        if not self.deployed or self.type is ProcType.PORTAL:
            return answer(None)
        if self.state_error is not None:
            if unreadable is not None:
                return unreadable()
            raise coded(self.state_error) from self.state_error
        if self.known_state is not None:
            return answer(self.known_state)
        return self._answer_later(info, answer, unreadable)

    async def _answer_later(
        self,
        info: strawberry.Info,
        answer: Callable[[ProcState | None], T],
        unreadable: Callable[[], T] | None,
    ) -> T:
        try:
            state: ProcState = await info.context.loaders.state.load(self.job_id)
        except DomainError as exc:
            if unreadable is not None:
                return unreadable()
            raise coded(exc) from exc
        return answer(state)


@strawberry.type
class Maintainer:
    username: str
    role: MaintainerRole

    @classmethod
    def from_view(cls, view: MaintainerView) -> Maintainer:
        return cls(username=view.username, role=view.role)


@strawberry.type
class AuditEntry:
    at: datetime
    user: str
    operation: str
    meta_version: str
    message: str

    @classmethod
    def from_view(cls, view: AuditView) -> AuditEntry:
        return cls(
            at=view.at,
            user=view.username,
            operation=view.operation,
            meta_version=view.meta_version,
            message=view.message,
        )


@strawberry.type(description="Services of another app that this app uses.")
class ServiceUse:
    app: str
    services: list[str]

    @strawberry.field(
        description="The service app, if it exists; null with FORBIDDEN unless the caller may "
        "read it (using a service is not permission to read it)."
    )
    async def service(self, info: strawberry.Info) -> App | None:
        return await _app(info, self.app)


@strawberry.type(description="A resource this app uses, through its own instance app.")
class ResourceUse:
    resource: str
    services: list[str]
    instance_name: str

    @strawberry.field(
        description="The instance app `resource.<resource>.<client>`; null with FORBIDDEN "
        "unless the caller may read it."
    )
    async def instance(self, info: strawberry.Info) -> App | None:
        return await _app(info, self.instance_name)


async def _app(info: strawberry.Info, name: str) -> App | None:
    """An app through the loader: None if it does not exist; the loader's coded error
    (FORBIDDEN) if the caller may not read it."""
    view = await info.context.loaders.app.load(name)
    return App.from_view(view) if view is not None else None


async def _apps(info: strawberry.Info, names: list[str]) -> list[App | None]:
    """Apps through the loader, each on its own: one the caller may not read is null in the
    list, with its FORBIDDEN error at that item's path."""
    loaded = await asyncio.gather(
        *(info.context.loaders.app.load(name) for name in names), return_exceptions=True
    )
    apps: list[App | None] = []
    for view in loaded:
        if isinstance(view, CodedError):
            apps.append(view)  # type: ignore[arg-type]  # graphql-core raises it at the item
        elif isinstance(view, BaseException):
            raise view
        else:
            apps.append(App.from_view(view) if view is not None else None)
    return apps


@dataclass(frozen=True, slots=True)
class _Loaded:
    """An app's procs with their running state, as `_procs_with_states` would load them."""

    procs: tuple[Proc, ...]  # portals included
    reads: list[readmodel.ProcRead] | None  # None: the scheduler could not be read
    error: DomainError | None

    @classmethod
    def of(cls, overview: AppOverview, states: Mapping[str, ProcState] | DomainError) -> _Loaded:
        views = [proc.view for proc in overview.procs]
        running = set(readmodel.running_job_ids(overview.app, views))
        if isinstance(states, DomainError):
            procs = tuple(Proc.from_view(view, state_error=states) for view in views)
            if not running:  # nothing of the app's own was asked for
                return cls(procs=procs, reads=[(view, None) for view in views], error=None)
            return cls(procs=procs, reads=None, error=states)
        procs = tuple(Proc.from_view(view, states.get(view.job_id)) for view in views)
        reads = [
            (view, states.get(view.job_id) if view.job_id in running else None) for view in views
        ]
        return cls(procs=procs, reads=reads, error=None)


@strawberry.type
class App(Node):
    name: str
    apptype: AppType
    meta_version: str | None
    status: AppStatus
    updated_at: datetime
    created_at: datetime
    view: Private[AppView]

    # Set when the app was read with its procs and their running state (a page of apps):
    # then `procs`, `portals`, `health` and `deployError` load nothing.
    loaded: Private[_Loaded | None] = None

    @classmethod
    def from_view(cls, view: AppView) -> App:
        return cls(
            id=global_id("App", view.name),
            name=view.name,
            apptype=view.apptype,
            meta_version=view.meta_version,
            status=view.status,
            updated_at=view.updated_at,
            created_at=view.created_at,
            view=view,
        )

    @classmethod
    def from_overview(
        cls, overview: AppOverview, states: Mapping[str, ProcState] | DomainError
    ) -> App:
        """An app read in bulk (`resolvers.lain.overview.app_page`) with the scheduler's answer."""
        app = cls.from_view(overview.app)
        app.loaded = _Loaded.of(overview, states)
        return app

    @strawberry.field(
        description=(
            "Why the app is not as it should be: its last operation's error, else the error "
            "of the last proc that has one. The same text REST shows as `deployerror`."
        ),
        graphql_type=str,
    )
    def deploy_error(self, info: strawberry.Info) -> str | Awaitable[str]:
        if self.loaded is None:
            return self._deploy_error_later(info)
        if self.loaded.reads is None:
            return self.view.last_error  # the scheduler is away
        return readmodel.deploy_error(self.view, self.loaded.reads)

    async def _deploy_error_later(self, info: strawberry.Info) -> str:
        try:
            procs = await self._procs_with_states(info)
        except CodedError:
            return self.view.last_error  # the scheduler is away
        return readmodel.deploy_error(self.view, procs)

    @strawberry.field(
        description="The app's health roll-up (see the `Health` enum).",
        graphql_type=Health | None,
    )
    def health(
        self, info: strawberry.Info
    ) -> readmodel.Health | Awaitable[readmodel.Health | None] | None:
        if self.loaded is None:
            return self._health_later(info)
        if self.loaded.reads is None:
            raise coded(self.loaded.error) from self.loaded.error  # type: ignore[arg-type]
        return readmodel.app_health(self.view, self.loaded.reads)

    async def _health_later(self, info: strawberry.Info) -> readmodel.Health | None:
        return readmodel.app_health(self.view, await self._procs_with_states(info))

    async def _procs_with_states(self, info: strawberry.Info) -> list[readmodel.ProcRead]:
        if self.meta_version is None:
            return []
        views = await info.context.loaders.procs.load(self.name)
        job_ids = readmodel.running_job_ids(self.view, views)
        with raise_as_graphql():
            found = await info.context.loaders.state.load_many(job_ids)
        states: dict[str, ProcState] = dict(zip(job_ids, found, strict=True))
        return [(view, states.get(view.job_id)) for view in views]

    @strawberry.field(description="The deployed release.")
    async def release(self, info: strawberry.Info) -> Release | None:
        if self.meta_version is None:
            return None
        view = await info.context.loaders.release.load((self.name, self.meta_version))
        return Release.from_view(view) if view is not None else None

    @strawberry.field(
        description="The app's procs, portals excepted, in lain.yaml order.",
        graphql_type=list[Proc],
    )
    def procs(self, info: strawberry.Info) -> list[Proc] | Awaitable[list[Proc]]:
        if self.loaded is not None:
            return [p for p in self.loaded.procs if p.type is not ProcType.PORTAL]
        return self._procs_later(info, portals=False)

    @strawberry.field(
        description="The portals this app exports to its client apps.",
        graphql_type=list[Proc],
    )
    def portals(self, info: strawberry.Info) -> list[Proc] | Awaitable[list[Proc]]:
        if self.loaded is not None:
            return [p for p in self.loaded.procs if p.type is ProcType.PORTAL]
        return self._procs_later(info, portals=True)

    async def _procs_later(self, info: strawberry.Info, *, portals: bool) -> list[Proc]:
        views = await info.context.loaders.procs.load(self.name)
        return [Proc.from_view(v) for v in views if (v.type is ProcType.PORTAL) is portals]

    @strawberry.field(description="The services this app uses (lain.yaml use_services).")
    async def uses_services(self, info: strawberry.Info) -> list[ServiceUse]:
        with raise_as_graphql():
            uses = await links.app_uses(info.context.op, name=self.name)
        return [ServiceUse(app=u.app, services=list(u.services)) for u in uses.services]

    @strawberry.field(description="The resources this app uses (lain.yaml use_resources).")
    async def uses_resources(self, info: strawberry.Info) -> list[ResourceUse]:
        with raise_as_graphql():
            uses = await links.app_uses(info.context.op, name=self.name)
        return [
            ResourceUse(resource=u.resource, services=list(u.services), instance_name=u.instance)
            for u in uses.resources
        ]

    @strawberry.field(
        description="For a resource: its instances, one per client app. An instance the "
        "caller may not read is null, with FORBIDDEN at its path."
    )
    async def resource_instances(self, info: strawberry.Info) -> list[App | None]:
        with raise_as_graphql():
            names = await links.instances_of(info.context.op, resource=self.name)
        return await _apps(info, names)

    @strawberry.field(
        description="Apps using this service's portals or this resource. A client the "
        "caller may not read is null, with FORBIDDEN at its path."
    )
    async def clients(self, info: strawberry.Info) -> list[App | None]:
        with raise_as_graphql():
            names = await links.clients(info.context.op, name=self.name)
        return await _apps(info, names)

    @strawberry.field(description="Who may operate the app.")
    async def maintainers(self, info: strawberry.Info) -> list[Maintainer]:
        with raise_as_graphql():
            views = await maintainers.list_maintainers(info.context.op, app=self.name)
        return [Maintainer.from_view(view) for view in views]

    @strawberry.field(description="The caller's role on this app; null when it has none.")
    async def viewer_role(self, info: strawberry.Info) -> MaintainerRole | None:
        with raise_as_graphql():
            return await maintainers.viewer_role(info.context.op, app=self.name)

    @strawberry.field(description="Operations on this app, newest first.")
    async def audit_log(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[AuditEntry]:
        with raise_as_graphql():
            page = await list_audit(info.context.op, app=self.name, first=first, after=after)
        return connection(page, AuditEntry.from_view)


@strawberry.type
class Repo(Node):
    name: str
    created_at: datetime

    @classmethod
    def from_view(cls, view: RepoView) -> Repo:
        return cls(id=global_id("Repo", view.name), name=view.name, created_at=view.created_at)

    @strawberry.field(description="Releases, newest first.")
    async def releases(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[Release]:
        with raise_as_graphql():
            page = await list_releases(info.context.op, app=self.name, first=first, after=after)
        return connection(page, Release.from_view)

    @strawberry.field(description="The app, once it has been deployed.")
    async def app(self, info: strawberry.Info) -> App | None:
        app = await _app(info, self.name)
        return app if app is not None and app.meta_version is not None else None
