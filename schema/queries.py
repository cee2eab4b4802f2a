"""The Query root."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import strawberry

from resolvers import apps, procs, releases, repos
from resolvers.core.errors import NotFound
from resolvers.lain import overview
from resolvers.readmodel.views import AppType
from schema.connections import Connection, connection
from schema.errors import raise_as_graphql
from schema.types import App, Node, Proc, Release, Repo, parse_global_id

__all__ = ["Query", "Viewer"]

T = TypeVar("T")


async def _or_none(call: Awaitable[T]) -> T | None:
    """The object, None when it does not exist, a coded error for anything else."""
    with raise_as_graphql():
        try:
            return await call
        except NotFound:
            return None


@strawberry.type
class Viewer:
    name: str
    is_admin: bool

    @strawberry.field(description="The deployed apps the caller may operate.")
    async def apps(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[App]:
        with raise_as_graphql():
            found = await overview.app_page(info.context.op, first=first, after=after)
        return connection(found.page, lambda item: App.from_overview(item, found.states))


@strawberry.type
class Query:
    @strawberry.field(description="Registered apps, by name.")
    async def repos(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[Repo]:
        with raise_as_graphql():
            page = await repos.list_repos(info.context.op, first=first, after=after)
        return connection(page, Repo.from_view)

    @strawberry.field
    async def repo(self, info: strawberry.Info, name: str) -> Repo | None:
        view = await _or_none(repos.get_repo(info.context.op, name=name))
        return Repo.from_view(view) if view is not None else None

    @strawberry.field(description="Deployed apps, by name, optionally of one type.")
    async def apps(
        self,
        info: strawberry.Info,
        apptype: AppType | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[App]:
        with raise_as_graphql():
            found = await overview.app_page(
                info.context.op, apptype=apptype, first=first, after=after
            )
        # Procs and running state come with the page: no field below loads per app or proc.
        return connection(found.page, lambda item: App.from_overview(item, found.states))

    @strawberry.field(description="A registered app, deployed or not.")
    async def app(self, info: strawberry.Info, name: str) -> App | None:
        view = await _or_none(apps.get_app(info.context.op, name=name))
        return App.from_view(view) if view is not None else None

    @strawberry.field(description="Any object by its global id.")
    async def node(self, info: strawberry.Info, id: strawberry.ID) -> Node | None:
        parsed = parse_global_id(id)
        if parsed is None:
            return None
        kind, key = parsed
        op = info.context.op
        first, _, second = key.partition("/")
        if kind == "Repo":
            repo = await _or_none(repos.get_repo(op, name=key))
            return Repo.from_view(repo) if repo is not None else None
        if kind == "App":
            app = await _or_none(apps.get_app(op, name=key))
            return App.from_view(app) if app is not None else None
        if kind == "Release":
            release = await _or_none(releases.get_release(op, app=first, meta_version=second))
            return Release.from_view(release) if release is not None else None
        if kind == "Proc":
            proc = await _or_none(procs.get_proc(op, app=first, proc=second))
            return Proc.from_view(proc) if proc is not None else None
        return None

    @strawberry.field(description="The caller.")
    def viewer(self, info: strawberry.Info) -> Viewer:
        principal = info.context.principal
        return Viewer(name=principal.name, is_admin=principal.is_admin)
