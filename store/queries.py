"""Reusable reads. Every function takes the session first; none commits."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import App, AuditEntry, Maintainer, Proc, Release

__all__ = [
    "app_by_name",
    "apps_by_names",
    "apps_page",
    "audit_page",
    "has_audit_entry",
    "latest_release",
    "maintainers_of",
    "procs_of",
    "procs_of_apps",
    "release",
    "releases_by_versions",
    "releases_page",
]


async def app_by_name(session: AsyncSession, name: str, *, for_update: bool = False) -> App | None:
    query = select(App).where(App.name == name)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def apps_by_names(session: AsyncSession, names: Sequence[str]) -> dict[str, App]:
    if not names:
        return {}
    rows = await session.execute(select(App).where(App.name.in_(names)))
    return {app.name: app for app in rows.scalars()}


async def apps_page(
    session: AsyncSession,
    *,
    after: str | None,
    limit: int,
    apptype: str | None = None,
    reachable_only: bool = False,
    among: Select[int] | None = None,
) -> list[App]:
    """Apps ordered by name, starting after `after`; `limit` rows at most; `among` restricts
    them to the ids that subquery selects."""
    query = select(App).order_by(App.name).limit(limit)
    if among is not None:
        query = query.where(App.id.in_(among))
    if after is not None:
        query = query.where(App.name > after)
    if apptype is not None:
        query = query.where(App.apptype == apptype)
    if reachable_only:
        query = query.where(App.meta_version.is_not(None))
    return list((await session.execute(query)).scalars())


async def release(session: AsyncSession, app_id: int, meta_version: str) -> Release | None:
    query = select(Release).where(Release.app_id == app_id, Release.meta_version == meta_version)
    return (await session.execute(query)).scalar_one_or_none()


async def releases_by_versions(
    session: AsyncSession, keys: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], Release]:
    """Releases for many (app id, meta_version) pairs in one query."""
    if not keys:
        return {}
    app_ids = {app_id for app_id, _ in keys}
    versions = {version for _, version in keys}
    query = select(Release).where(Release.app_id.in_(app_ids), Release.meta_version.in_(versions))
    wanted = set(keys)
    found: dict[tuple[int, str], Release] = {}
    for row in (await session.execute(query)).scalars():
        key = (row.app_id, row.meta_version)
        if key in wanted:
            found[key] = row
    return found


async def latest_release(session: AsyncSession, app_id: int) -> Release | None:
    query = (
        select(Release)
        .where(Release.app_id == app_id)
        .order_by(Release.meta_timestamp.desc(), Release.meta_version.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def releases_page(
    session: AsyncSession, app_id: int, *, after: Release | None, limit: int
) -> list[Release]:
    """An app's releases, newest first; `after` is the last release of the previous page."""
    query = (
        select(Release)
        .where(Release.app_id == app_id)
        .order_by(Release.meta_timestamp.desc(), Release.meta_version.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            (Release.meta_timestamp < after.meta_timestamp)
            | (
                (Release.meta_timestamp == after.meta_timestamp)
                & (Release.meta_version < after.meta_version)
            )
        )
    return list((await session.execute(query)).scalars())


async def procs_of(session: AsyncSession, app_id: int) -> list[Proc]:
    query = select(Proc).where(Proc.app_id == app_id).order_by(Proc.id)
    return list((await session.execute(query)).scalars())


async def procs_of_apps(session: AsyncSession, app_ids: Sequence[int]) -> dict[int, list[Proc]]:
    """Every proc of many apps in one query, in creation (lain.yaml) order."""
    grouped: dict[int, list[Proc]] = {app_id: [] for app_id in app_ids}
    if not app_ids:
        return grouped
    query = select(Proc).where(Proc.app_id.in_(app_ids)).order_by(Proc.id)
    for proc in (await session.execute(query)).scalars():
        grouped[proc.app_id].append(proc)
    return grouped


async def maintainers_of(session: AsyncSession, app_id: int) -> list[Maintainer]:
    query = select(Maintainer).where(Maintainer.app_id == app_id).order_by(Maintainer.username)
    return list((await session.execute(query)).scalars())


async def audit_page(
    session: AsyncSession,
    app: str,
    *,
    before_id: int | None,
    limit: int,
    excluding: Sequence[str] = (),
) -> list[AuditEntry]:
    """An app's audit entries, newest first, leaving out the operations in `excluding`."""
    query = select(AuditEntry).where(AuditEntry.app == app).order_by(AuditEntry.id.desc())
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if excluding:
        query = query.where(AuditEntry.operation.not_in(excluding))
    return list((await session.execute(query.limit(limit))).scalars())


async def has_audit_entry(session: AsyncSession, app: str, operation: str) -> bool:
    """Whether the app's audit log holds any entry of `operation`."""
    query = select(AuditEntry.id).where(AuditEntry.app == app, AuditEntry.operation == operation)
    return (await session.execute(query.limit(1))).first() is not None
