"""Batched reads for the front doors' loaders: one query per kind, whatever the count.

Each filters by what the caller may read: an app it may not read comes back as the error
check_app would raise (Forbidden, or Unauthenticated), never as its contents. Loaders are how
one app's fields reach another app, so this is where those paths are closed.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.core import access
from resolvers.core.context import OpContext
from resolvers.core.errors import DomainError
from resolvers.lain import overview
from resolvers.procs import proc_states
from resolvers.readmodel.from_rows import app_view, release_view
from resolvers.readmodel.views import AppView, ProcView, ReleaseView
from store.models import App, Release
from store.queries import AppRow

__all__ = ["apps_and_procs", "apps_by_name", "proc_states", "procs_by_app", "releases_by_key"]


async def _readable_apps(
    ctx: OpContext, session: AsyncSession, names: Sequence[str]
) -> tuple[dict[str, AppRow], dict[str, DomainError]]:
    apps, refused = await access.readable_apps(ctx, session, names)
    return apps, {name: access.refusal(ctx, name) for name in refused}


async def apps_by_name(ctx: OpContext, names: Sequence[str]) -> dict[str, AppView | DomainError]:
    """The apps that exist, by name; a refusal for those the caller may not read."""
    async with ctx.sessions() as session:
        apps, refused = await _readable_apps(ctx, session, names)
    return {**{name: app_view(app) for name, app in apps.items()}, **refused}


async def procs_by_app(
    ctx: OpContext, names: Sequence[str]
) -> dict[str, list[ProcView] | DomainError]:
    """Every proc of many deployed apps, in lain.yaml order as every read shows them: three
    queries in all (apps, procs, their releases)."""
    _, procs = await apps_and_procs(ctx, names, with_procs=names)
    return procs


async def apps_and_procs(
    ctx: OpContext, names: Sequence[str], *, with_procs: Sequence[str]
) -> tuple[dict[str, AppView | DomainError], dict[str, list[ProcView] | DomainError]]:
    """`apps_by_name(names)` and `procs_by_app(with_procs)` (a subset of `names`) in one
    session, each app read once."""
    wanted = set(with_procs)
    async with ctx.sessions() as session:
        apps, refused = await _readable_apps(ctx, session, names)
        rows = [row for name, row in apps.items() if name in wanted]
        found = await overview.overviews_of(ctx, session, rows) if rows else {}
    views: dict[str, AppView | DomainError] = {
        **{name: app_view(app) for name, app in apps.items()},
        **refused,
    }
    procs: dict[str, list[ProcView] | DomainError] = {
        name: error for name, error in refused.items() if name in wanted
    }
    for name, item in found.items():
        procs[name] = [proc.view for proc in item.procs]
    return views, procs


async def releases_by_key(
    ctx: OpContext, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], ReleaseView | DomainError]:
    """Releases by (app name, meta_version) in two queries (the apps, then the releases)."""
    if not keys:
        return {}
    versions = {version for _, version in keys}
    async with ctx.sessions() as session:
        apps, refused = await _readable_apps(ctx, session, [app for app, _ in keys])
        query = select(App.name, Release).join(Release, Release.app_id == App.id)
        query = query.where(
            App.id.in_([app.id for app in apps.values()]), Release.meta_version.in_(versions)
        )
        rows = (await session.execute(query)).all()
    wanted = set(keys)
    found: dict[tuple[str, str], ReleaseView | DomainError] = {
        key: refused[key[0]] for key in wanted if key[0] in refused
    }
    for name, release in rows:
        if (name, release.meta_version) in wanted:
            found[(name, release.meta_version)] = release_view(name, release, ctx.services.domains)
    return found
