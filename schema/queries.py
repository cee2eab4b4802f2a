"""The Query root."""

from __future__ import annotations

import strawberry

from resolvers import apps, procs, releases, repos
from resolvers.errors import NotFound
from resolvers.views import AppType
from schema.connections import Connection, connection
from schema.errors import raise_as_graphql
from schema.types import App, Node, Proc, Release, Repo, parse_global_id

__all__ = ["Query", "Viewer"]


@strawberry.type
class Viewer:
    name: str
    is_admin: bool


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
        try:
            return Repo.from_view(await repos.get_repo(info.context.op, name=name))
        except NotFound:
            return None

    @strawberry.field(description="Deployed apps, by name, optionally of one type.")
    async def apps(
        self,
        info: strawberry.Info,
        apptype: AppType | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[App]:
        with raise_as_graphql():
            page = await apps.list_apps(info.context.op, apptype=apptype, first=first, after=after)
        return connection(page, App.from_view)

    @strawberry.field(description="A registered app, deployed or not.")
    async def app(self, info: strawberry.Info, name: str) -> App | None:
        try:
            return App.from_view(await apps.get_app(info.context.op, name=name))
        except NotFound:
            return None

    @strawberry.field(description="Any object by its global id.")
    async def node(self, info: strawberry.Info, id: strawberry.ID) -> Node | None:
        parsed = parse_global_id(id)
        if parsed is None:
            return None
        kind, key = parsed
        op = info.context.op
        try:
            if kind == "Repo":
                return Repo.from_view(await repos.get_repo(op, name=key))
            if kind == "App":
                return App.from_view(await apps.get_app(op, name=key))
            if kind == "Release":
                app, _, version = key.partition("/")
                return Release.from_view(
                    await releases.get_release(op, app=app, meta_version=version)
                )
            if kind == "Proc":
                app, _, proc = key.partition("/")
                return Proc.from_view(await procs.get_proc(op, app=app, proc=proc))
        except NotFound:
            return None
        return None

    @strawberry.field(description="The caller.")
    def viewer(self, info: strawberry.Info) -> Viewer:
        principal = info.context.principal
        return Viewer(name=principal.name, is_admin=principal.is_admin)
