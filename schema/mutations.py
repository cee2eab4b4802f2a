"""The Mutation root: `verbNoun(input: VerbNounInput!): VerbNounPayload!`, errors as data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry

from resolvers import apps, canaries, maintainers, procs, releases, repos
from resolvers.core import idempotency
from resolvers.core.errors import DomainError
from resolvers.readmodel.views import Canary, InstanceAction
from schema.errors import UserError, user_errors
from schema.types import App, Maintainer, MaintainerRole, Proc, Release, Repo

__all__ = ["Mutation"]

T = TypeVar("T")
PayloadT = TypeVar("PayloadT")


# Each payload: the changed object (null on failure) and the errors, in that order.


@strawberry.type
class RegisterRepoPayload:
    repo: Repo | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PublishReleasePayload:
    release: Release | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeployAppPayload:
    app: App | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UpdateAppPayload:
    app: App | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UndeployAppPayload:
    app: App | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PromoteAppPayload:
    app: App | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PromoteProcPayload:
    proc: Proc | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeployProcPayload:
    proc: Proc | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UndeployProcPayload:
    proc: Proc | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ScaleProcPayload:
    proc: Proc | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ResizeProcPayload:
    proc: Proc | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RestartProcPayload:
    proc: Proc | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class StopProcPayload:
    proc: Proc | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class StartProcPayload:
    proc: Proc | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AddMaintainerPayload:
    maintainer: Maintainer | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RemoveMaintainerPayload:
    app: App | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class Idempotent:
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Retries with the same key get the first answer instead of a second run.",
    )


@strawberry.input
class AddMaintainerInput(Idempotent):
    app: str
    username: str
    role: MaintainerRole = maintainers.MaintainerRole.NORMAL


@strawberry.input
class RemoveMaintainerInput(Idempotent):
    app: str
    username: str


@strawberry.input
class RegisterRepoInput(Idempotent):
    name: str


@strawberry.input
class PublishReleaseInput(Idempotent):
    app: str
    meta_version: str
    lain_yaml: str
    image: str | None = None


@strawberry.input
class AppInput(Idempotent):
    name: str


@strawberry.input
class DeployAppInput(AppInput):
    meta_version: str | None = strawberry.field(
        default=None, description="The release to deploy; the newest when not given."
    )


@strawberry.input(
    description=(
        "Canaries for the rollout of an update (Nomad backend): each long-running proc whose "
        "instances are replaced first starts `instances` new ones beside the old ones, which "
        "keep running; the rest are replaced once the canaries are promoted."
    )
)
class CanaryInput:
    instances: int = strawberry.field(description="Canaries per proc, at least 1.")
    auto_promote_after: int | None = strawberry.field(
        default=None,
        description=(
            "Promote by itself once every canary has stayed healthy this many seconds "
            "(1-3600; also how long each later instance must stay healthy); null: wait for "
            "promoteApp or promoteProc."
        ),
    )


@strawberry.input
class UpdateAppInput(DeployAppInput):
    canary: CanaryInput | None = strawberry.field(
        default=None,
        description="Roll out with canaries that wait for a promotion; null: replace all.",
    )


@strawberry.input
class PromoteAppInput(AppInput):
    pass


@strawberry.input
class UndeployAppInput(AppInput):
    pass


@strawberry.input
class ProcInput(Idempotent):
    app: str
    proc: str


@strawberry.input
class DeployProcInput(ProcInput):
    pass


@strawberry.input
class UndeployProcInput(ProcInput):
    pass


@strawberry.input
class ScaleProcInput(ProcInput):
    num_instances: int


@strawberry.input
class PromoteProcInput(ProcInput):
    pass


@strawberry.input
class ResizeProcInput(ProcInput):
    cpu: int | None = None
    memory: str | None = strawberry.field(default=None, description='A size such as "128m".')


@strawberry.input
class InstanceInput(ProcInput):
    instance: int | None = strawberry.field(
        default=None, description="One instance, numbered from 1; all when not given."
    )


@strawberry.input
class RestartProcInput(InstanceInput):
    pass


@strawberry.input
class StopProcInput(InstanceInput):
    pass


@strawberry.input
class StartProcInput(InstanceInput):
    pass


async def _attempt(
    info: strawberry.Info,
    input: Idempotent,
    payload: Callable[..., PayloadT],
    field: str,
    call: Callable[[], Awaitable[T]],
    make: Callable[[T], object],
) -> PayloadT:
    """Run the resolver (once per idempotency key) and put its result or errors in `payload`."""
    op = info.context.op
    arguments = {k: v for k, v in vars(input).items() if k != "idempotency_key"}
    identify, refetch = _IDENTITIES[field]
    try:
        result = await idempotency.run_once(
            op,
            input.idempotency_key,
            type(input).__name__,
            arguments,
            call,
            encode=identify,
            decode=lambda identity: refetch(op, str(identity)),
        )
    except DomainError as exc:
        return payload(errors=user_errors(exc))
    return payload(**{field: make(result)})


def _split(identity: str) -> tuple[str, str]:
    first, _, second = identity.partition("/")
    return first, second


# How each kind of result is named for a retry, and read back when the retry comes.
_IDENTITIES: dict[str, tuple[Callable[[Any], str], Callable[[Any, str], Awaitable[Any]]]] = {
    "repo": (lambda v: v.name, lambda op, i: repos.get_repo(op, name=i)),
    "app": (lambda v: v.name, lambda op, i: apps.get_app(op, name=i)),
    "release": (
        lambda v: f"{v.app}/{v.meta_version}",
        lambda op, i: releases.get_release(op, app=_split(i)[0], meta_version=_split(i)[1]),
    ),
    "proc": (
        lambda v: f"{v.app}/{v.name}",
        lambda op, i: procs.get_proc(op, app=_split(i)[0], proc=_split(i)[1]),
    ),
    "maintainer": (
        lambda v: f"{v.app}/{v.username}",
        lambda op, i: maintainers.get_maintainer(op, app=_split(i)[0], username=_split(i)[1]),
    ),
}


def _info_op(info: strawberry.Info) -> Any:
    return info.context.op


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def register_repo(
        self, info: strawberry.Info, input: RegisterRepoInput
    ) -> RegisterRepoPayload:
        def call() -> Awaitable[Any]:
            return repos.register_repo(_info_op(info), name=input.name)

        return await _attempt(info, input, RegisterRepoPayload, "repo", call, Repo.from_view)

    @strawberry.mutation
    async def publish_release(
        self, info: strawberry.Info, input: PublishReleaseInput
    ) -> PublishReleasePayload:
        def call() -> Awaitable[Any]:
            return releases.publish_release(
                _info_op(info),
                app=input.app,
                meta_version=input.meta_version,
                lain_yaml=input.lain_yaml,
                image=input.image,
            )

        return await _attempt(
            info, input, PublishReleasePayload, "release", call, Release.from_view
        )

    @strawberry.mutation
    async def deploy_app(self, info: strawberry.Info, input: DeployAppInput) -> DeployAppPayload:
        def call() -> Awaitable[Any]:
            return apps.deploy_app(_info_op(info), name=input.name, meta_version=input.meta_version)

        return await _attempt(info, input, DeployAppPayload, "app", call, App.from_view)

    @strawberry.mutation
    async def update_app(self, info: strawberry.Info, input: UpdateAppInput) -> UpdateAppPayload:
        def call() -> Awaitable[Any]:
            return apps.update_app(
                _info_op(info),
                name=input.name,
                meta_version=input.meta_version,
                canary=_canary(input.canary),
            )

        return await _attempt(info, input, UpdateAppPayload, "app", call, App.from_view)

    @strawberry.mutation(
        description="Promote the canaries of every proc of the app whose rollout waits for "
        "them; the rest of their instances are then replaced. CONFLICT when none wait or "
        "they are not all healthy yet."
    )
    async def promote_app(self, info: strawberry.Info, input: PromoteAppInput) -> PromoteAppPayload:
        def call() -> Awaitable[Any]:
            return canaries.promote_app(_info_op(info), name=input.name)

        return await _attempt(info, input, PromoteAppPayload, "app", call, App.from_view)

    @strawberry.mutation(description="Promote the canaries of one proc's rollout (see promoteApp).")
    async def promote_proc(
        self, info: strawberry.Info, input: PromoteProcInput
    ) -> PromoteProcPayload:
        def call() -> Awaitable[Any]:
            return procs.promote_proc(_info_op(info), app=input.app, proc=input.proc)

        return await _attempt(info, input, PromoteProcPayload, "proc", call, Proc.from_view)

    @strawberry.mutation
    async def undeploy_app(
        self, info: strawberry.Info, input: UndeployAppInput
    ) -> UndeployAppPayload:
        def call() -> Awaitable[Any]:
            return apps.undeploy_app(_info_op(info), name=input.name)

        return await _attempt(info, input, UndeployAppPayload, "app", call, App.from_view)

    @strawberry.mutation
    async def deploy_proc(self, info: strawberry.Info, input: DeployProcInput) -> DeployProcPayload:
        def call() -> Awaitable[Any]:
            return procs.deploy_proc(_info_op(info), app=input.app, proc=input.proc)

        return await _attempt(info, input, DeployProcPayload, "proc", call, Proc.from_view)

    @strawberry.mutation
    async def undeploy_proc(
        self, info: strawberry.Info, input: UndeployProcInput
    ) -> UndeployProcPayload:
        def call() -> Awaitable[Any]:
            return procs.undeploy_proc(_info_op(info), app=input.app, proc=input.proc)

        return await _attempt(info, input, UndeployProcPayload, "proc", call, Proc.from_view)

    @strawberry.mutation
    async def scale_proc(self, info: strawberry.Info, input: ScaleProcInput) -> ScaleProcPayload:
        def call() -> Awaitable[Any]:
            return procs.scale_proc(
                _info_op(info), app=input.app, proc=input.proc, num_instances=input.num_instances
            )

        return await _attempt(info, input, ScaleProcPayload, "proc", call, Proc.from_view)

    @strawberry.mutation
    async def resize_proc(self, info: strawberry.Info, input: ResizeProcInput) -> ResizeProcPayload:
        def call() -> Awaitable[Any]:
            return procs.resize_proc(
                _info_op(info), app=input.app, proc=input.proc, cpu=input.cpu, memory=input.memory
            )

        return await _attempt(info, input, ResizeProcPayload, "proc", call, Proc.from_view)

    @strawberry.mutation
    async def restart_proc(
        self, info: strawberry.Info, input: RestartProcInput
    ) -> RestartProcPayload:
        return await _control(info, input, InstanceAction.RESTART, RestartProcPayload)

    @strawberry.mutation
    async def stop_proc(self, info: strawberry.Info, input: StopProcInput) -> StopProcPayload:
        return await _control(info, input, InstanceAction.STOP, StopProcPayload)

    @strawberry.mutation
    async def add_maintainer(
        self, info: strawberry.Info, input: AddMaintainerInput
    ) -> AddMaintainerPayload:
        def call() -> Awaitable[Any]:
            return maintainers.add_maintainer(
                _info_op(info), app=input.app, username=input.username, role=input.role
            )

        return await _attempt(
            info, input, AddMaintainerPayload, "maintainer", call, Maintainer.from_view
        )

    @strawberry.mutation
    async def remove_maintainer(
        self, info: strawberry.Info, input: RemoveMaintainerInput
    ) -> RemoveMaintainerPayload:
        def call() -> Awaitable[Any]:
            return _remove_maintainer(_info_op(info), input.app, input.username)

        return await _attempt(info, input, RemoveMaintainerPayload, "app", call, App.from_view)

    @strawberry.mutation
    async def start_proc(self, info: strawberry.Info, input: StartProcInput) -> StartProcPayload:
        return await _control(info, input, InstanceAction.START, StartProcPayload)


def _canary(given: CanaryInput | None) -> Canary | None:
    if given is None:
        return None
    return Canary(instances=given.instances, auto_promote_after=given.auto_promote_after)


async def _remove_maintainer(op: Any, app: str, username: str) -> Any:
    await maintainers.remove_maintainer(op, app=app, username=username)
    return await apps.get_app(op, name=app)


async def _control(
    info: strawberry.Info,
    input: InstanceInput,
    action: InstanceAction,
    payload: Callable[..., PayloadT],
) -> PayloadT:
    def call() -> Awaitable[Any]:
        return procs.control_proc(
            _info_op(info), app=input.app, proc=input.proc, action=action, instance=input.instance
        )

    return await _attempt(info, input, payload, "proc", call, Proc.from_view)
