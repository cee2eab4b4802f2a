"""Reusable reads. Every function takes the session first; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import App, AppStatus, AuditEntry, Maintainer, Proc, Release

__all__ = [
    "AppRow",
    "ProcRow",
    "ReleaseRow",
    "app_by_name",
    "app_rows_by_names",
    "app_rows_page",
    "apps_by_names",
    "apps_page",
    "audit_page",
    "has_audit_entry",
    "latest_release",
    "maintainers_of",
    "proc_by_name",
    "proc_rows_of_apps",
    "proc_rows_with_releases",
    "procs_of",
    "procs_of_apps",
    "release",
    "release_rows_by_versions",
    "releases_by_versions",
    "releases_page",
]


# Read paths select these columns as Core rows: no identity map, no instrumented attributes,
# no entity per row (bench/RESULTS.md: ORM entities were a fifth of a list request). An ORM
# entity has the same attributes, so code that builds views takes either.
class AppRow(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def giturl(self) -> str: ...
    @property
    def apptype(self) -> str: ...
    @property
    def meta_version(self) -> str | None: ...
    @property
    def status(self) -> AppStatus: ...
    @property
    def last_error(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


class ProcRow(Protocol):
    @property
    def app_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def proc_type(self) -> str: ...
    @property
    def meta_version(self) -> str: ...
    @property
    def num_instances(self) -> int | None: ...
    @property
    def cpu(self) -> int | None: ...
    @property
    def memory(self) -> str | None: ...
    @property
    def deployed(self) -> bool: ...
    @property
    def last_error(self) -> str: ...


class ReleaseRow(Protocol):
    @property
    def app_id(self) -> int: ...
    @property
    def meta_version(self) -> str: ...
    @property
    def lain_yaml(self) -> str: ...
    @property
    def image(self) -> str: ...


_APP_COLUMNS = (
    App.id,
    App.name,
    App.giturl,
    App.apptype,
    App.meta_version,
    App.status,
    App.last_error,
    App.created_at,
    App.updated_at,
)
_PROC_COLUMNS = (
    Proc.app_id,
    Proc.name,
    Proc.proc_type,
    Proc.meta_version,
    Proc.num_instances,
    Proc.cpu,
    Proc.memory,
    Proc.deployed,
    Proc.last_error,
)
_RELEASE_COLUMNS = (Release.app_id, Release.meta_version, Release.lain_yaml, Release.image)


async def app_rows_page(
    session: AsyncSession,
    *,
    after: str | None = None,
    limit: int | None = None,
    apptype: str | None = None,
    deployed_only: bool = False,
    among: Select[int] | None = None,
) -> list[AppRow]:
    """Apps ordered by name, as rows: after `after`, at most `limit` (None: all), of one
    `apptype`, deployed ones only, among the ids the subquery `among` selects."""
    query = select(*_APP_COLUMNS).order_by(App.name)
    if limit is not None:
        query = query.limit(limit)
    if among is not None:
        query = query.where(App.id.in_(among))
    if after is not None:
        query = query.where(App.name > after)
    if apptype is not None:
        query = query.where(App.apptype == apptype)
    if deployed_only:
        query = query.where(App.meta_version.is_not(None))
    return list((await session.execute(query)).all())


async def app_rows_by_names(session: AsyncSession, names: Sequence[str]) -> dict[str, AppRow]:
    if not names:
        return {}
    rows = await session.execute(select(*_APP_COLUMNS).where(App.name.in_(names)))
    return {row.name: row for row in rows.all()}


async def proc_rows_of_apps(
    session: AsyncSession, app_ids: Sequence[int]
) -> dict[int, list[ProcRow]]:
    """`procs_of_apps` as rows: every proc of many apps in one query, in creation order."""
    grouped: dict[int, list[ProcRow]] = {app_id: [] for app_id in app_ids}
    if not app_ids:
        return grouped
    query = select(*_PROC_COLUMNS).where(Proc.app_id.in_(app_ids)).order_by(Proc.id)
    for row in (await session.execute(query)).all():
        grouped[row.app_id].append(row)
    return grouped


async def proc_rows_with_releases(
    session: AsyncSession, app_ids: Sequence[int]
) -> tuple[dict[int, list[ProcRow]], dict[tuple[int, str], ReleaseRow]]:
    """Every proc of many apps (creation order) and the release each runs, in one query:
    a proc's row is also its release's (same app_id and meta_version, plus the release's
    lain_yaml and image). A release that no longer exists is missing from the second."""
    grouped: dict[int, list[ProcRow]] = {app_id: [] for app_id in app_ids}
    releases: dict[tuple[int, str], ReleaseRow] = {}
    if not app_ids:
        return grouped, releases
    query = (
        select(*_PROC_COLUMNS, Release.lain_yaml, Release.image)
        .outerjoin(
            Release,
            (Release.app_id == Proc.app_id) & (Release.meta_version == Proc.meta_version),
        )
        .where(Proc.app_id.in_(app_ids))
        .order_by(Proc.id)
    )
    for row in (await session.execute(query)).all():
        grouped[row.app_id].append(row)
        if row.lain_yaml is not None:
            releases[(row.app_id, row.meta_version)] = row
    return grouped, releases


async def release_rows_by_versions(
    session: AsyncSession, keys: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], ReleaseRow]:
    """`releases_by_versions` as rows, with only what a view needs (not the timestamps)."""
    if not keys:
        return {}
    app_ids = {app_id for app_id, _ in keys}
    versions = {version for _, version in keys}
    query = select(*_RELEASE_COLUMNS).where(
        Release.app_id.in_(app_ids), Release.meta_version.in_(versions)
    )
    wanted = set(keys)
    found: dict[tuple[int, str], ReleaseRow] = {}
    for row in (await session.execute(query)).all():
        key = (row.app_id, row.meta_version)
        if key in wanted:
            found[key] = row
    return found


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


async def proc_by_name(session: AsyncSession, app_id: int, name: str) -> Proc | None:
    query = select(Proc).where(Proc.app_id == app_id, Proc.name == name)
    return (await session.execute(query)).scalar_one_or_none()


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
