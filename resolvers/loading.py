"""Batched reads for the front doors' loaders: one query per kind, whatever the count."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from resolvers.context import OpContext
from resolvers.procs import proc_states
from resolvers.rows import app_view, proc_views, release_view
from resolvers.views import AppView, ProcView, ReleaseView
from store import queries
from store.models import App, Release

__all__ = ["apps_by_name", "proc_states", "procs_by_app", "releases_by_key"]


async def apps_by_name(ctx: OpContext, names: Sequence[str]) -> dict[str, AppView]:
    async with ctx.sessions() as session:
        apps = await queries.apps_by_names(session, list(set(names)))
    return {name: app_view(app) for name, app in apps.items()}


async def procs_by_app(ctx: OpContext, names: Sequence[str]) -> dict[str, list[ProcView]]:
    """Every proc of many deployed apps: two queries in all (procs, then their releases)."""
    async with ctx.sessions() as session:
        apps = await queries.apps_by_names(session, list(set(names)))
        by_id = {app.id: app for app in apps.values() if app.meta_version is not None}
        procs = await queries.procs_of_apps(session, list(by_id))
        keys = sorted({(p.app_id, p.meta_version) for rows in procs.values() for p in rows})
        releases = await queries.releases_by_versions(session, keys)
    result: dict[str, list[ProcView]] = {}
    for app_id, rows in procs.items():
        app = by_id[app_id]
        result[app.name] = proc_views(
            app.name,
            app_id,
            rows,
            releases,
            registry=ctx.services.registry,
            domains=ctx.services.domains,
        )
    return result


async def releases_by_key(
    ctx: OpContext, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], ReleaseView]:
    """Releases by (app name, meta_version) in one query."""
    if not keys:
        return {}
    names = {app for app, _ in keys}
    versions = {version for _, version in keys}
    query = (
        select(App.name, Release)
        .join(Release, Release.app_id == App.id)
        .where(App.name.in_(names), Release.meta_version.in_(versions))
    )
    async with ctx.sessions() as session:
        rows = (await session.execute(query)).all()
    wanted = set(keys)
    return {
        (name, release.meta_version): release_view(name, release, ctx.services.domains)
        for name, release in rows
        if (name, release.meta_version) in wanted
    }
