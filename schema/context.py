"""The GraphQL context: services, the caller, and DataLoaders scoped to one operation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from resolvers.core import loading
from resolvers.core.context import OpContext, Principal, Services
from resolvers.core.errors import DomainError
from resolvers.readmodel.views import AppView, ProcState, ProcView, ReleaseView
from resolvers.watch import Credentials
from schema.errors import coded

__all__ = ["GraphQLContext", "Loaders"]

T = TypeVar("T")


class Loaders:
    """One batched read per kind of object and per event-loop tick.

    Over HTTP a context (and its caches) lives for one request. A websocket keeps one context
    for the whole connection, so there the loaders batch but do not cache: a subscription must
    never serve an hour-old snapshot.

    An object the caller may not read loads as a coded error (FORBIDDEN): the field asking
    for it becomes null, with the error at its path.
    """

    def __init__(self, op: OpContext, *, cache: bool) -> None:
        async def apps(names: Sequence[str]) -> list[AppView | BaseException | None]:
            found = await loading.apps_by_name(op, names)
            return [_as_result(found.get(name)) for name in names]

        async def procs(names: Sequence[str]) -> list[list[ProcView] | BaseException]:
            found = await loading.procs_by_app(op, names)
            return [_as_result(found.get(name, [])) for name in names]

        async def states(job_ids: Sequence[str]) -> list[ProcState | BaseException]:
            try:
                found = await loading.proc_states(op, job_ids)
            except DomainError as exc:
                return [exc for _ in job_ids]
            return [found.get(job_id, ProcState.missing(job_id)) for job_id in job_ids]

        async def releases(
            keys: Sequence[tuple[str, str]],
        ) -> list[ReleaseView | BaseException | None]:
            found = await loading.releases_by_key(op, keys)
            return [_as_result(found.get(key)) for key in keys]

        self.app = DataLoader(apps, cache=cache)
        self.procs = DataLoader(procs, cache=cache)
        self.state = DataLoader(states, cache=cache)
        self.release = DataLoader(releases, cache=cache)


def _as_result(value: T | DomainError) -> T | BaseException:
    """A DataLoader result: a refusal becomes the coded error that loading it raises."""
    return coded(value) if isinstance(value, DomainError) else value


@dataclass
class GraphQLContext:
    services: Services
    principal: Principal
    websocket: bool = False
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    # A websocket's credentials, asked again by its subscriptions, and how often.
    credentials: Credentials | None = None
    recheck_seconds: float = 30.0
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.op, cache=not self.websocket)

    def set_principal(self, principal: Principal) -> None:
        """A websocket learns its caller at `connection_init`, after the context exists."""
        self.principal = principal
        self.loaders = Loaders(self.op, cache=False)

    @property
    def op(self) -> OpContext:
        return OpContext(services=self.services, principal=self.principal)
